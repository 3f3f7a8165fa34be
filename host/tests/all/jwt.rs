//! OAuth resource-server mode: JWT access tokens from a real OpenID provider (oidc-provider on
//! loopback, `support/oidc.rs`) beside static tokens, against the real server on port 0; the
//! refusals (each token breaking one rule, signed with the provider's own key where it must
//! be), the RFC 9728 metadata and the `WWW-Authenticate` challenge, and the cached keys while the
//! provider is down.

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::oidc::{Provider, Started};
use crate::support::{Recorder, TestServer, call, plugins_dir, text};

/// What the provider mints tokens for, and what sanctum expects in `aud`.
const AUDIENCE: &str = "https://mcp.test/mcp";
/// A static token beside the JWTs; its principal `letta` is also a client at the provider.
const STATIC: &str = "letta-static-token-0123456789";

fn auth_toml(provider: &Started, section: &str, resource: Option<&str>) -> String {
    let resource = resource.map(|r| format!("resource = {r:?}\n")).unwrap_or_default();
    format!(
        "[[{section}token]]\nprincipal = \"letta\"\nvalue = {STATIC:?}\n\
         [{section}jwt]\nissuer = {issuer:?}\naudience = {AUDIENCE:?}\njwks_url = {jwks:?}\n\
         jwks_allow_ranges = [\"127.0.0.1/32\"]\njwks_refresh_secs = 1\nleeway_secs = 5\n{resource}",
        issuer = provider.issuer,
        jwks = provider.jwks_uri,
    )
}

/// A server over the echo plugin with the static token and `[auth.jwt]` from the config file's
/// `[auth]` (the same table a tokens file holds at its top level).
async fn server(provider: &Started, resource: Option<&str>) -> TestServer {
    let settings: sanctum::transport::AuthSettings =
        toml::from_str(&auth_toml(provider, "", resource)).expect("valid [auth]");
    TestServer::start_with(plugins_dir(&["echo.wasm"], &[]), move |args| {
        args.front_door.config_auth = Some(settings);
        args.audit = "audit.jsonl".into();
    })
    .await
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
}

/// `POST /mcp` initialize with `token` (if any): the status and the challenge.
async fn initialize(server: &TestServer, token: Option<&str>) -> (u16, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("request");
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_owned());
    (response.status().as_u16(), challenge)
}

async fn echo_as(server: &TestServer, token: &str) -> String {
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(token);
    let client = Recorder::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("handshake over /mcp with a token");
    let result = client.call_tool(call("echo__echo", json!({"text": "through sanctum"}))).await.expect("call");
    client.cancel().await.expect("close");
    text(&result).to_owned()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The claims of a genuine token, as issued.
fn claims_of(token: &str) -> serde_json::Map<String, Value> {
    let payload = token.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

/// A token the provider would never issue, signed with its own key.
fn forge(provider: &Started, kid: &str, claims: &serde_json::Map<String, Value>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &provider.signing_key()).expect("sign")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

#[tokio::test]
async fn tokens_from_a_real_provider_call_tools_and_every_broken_rule_is_refused() {
    let Some(mut provider) = Provider::start(AUDIENCE).await else { return };
    let info = &provider.info;
    assert_eq!(info.alg, "ES256");
    let server = server(info, Some(AUDIENCE)).await;

    // A genuine token, obtained over HTTP from the provider, calls a tool through /mcp.
    let token = provider.token("sanctum-test", AUDIENCE).await;
    assert_eq!(echo_as(&server, &token).await, "through sanctum");
    let record = server.audit_records().into_iter().find(|r| r["event"] == "tool_call").expect("a tool_call record");
    assert_eq!(record["principal"], "sanctum-test", "the audit names the token's subject");
    // The static token works beside it.
    assert_eq!(echo_as(&server, STATIC).await, "through sanctum");

    let metadata = "https://mcp.test/.well-known/oauth-protected-resource/mcp";
    let refused = format!("Bearer resource_metadata=\"{metadata}\", error=\"invalid_token\"");
    // No token: the challenge points to the metadata, without an error code.
    assert_eq!(initialize(&server, None).await, (401, Some(format!("Bearer resource_metadata=\"{metadata}\""))));

    let genuine = claims_of(&token);
    let with = |name: &str, value: Value| {
        let mut claims = genuine.clone();
        claims.insert(name.to_owned(), value);
        claims
    };
    let kid = info.kid.as_str();
    let mut cases: Vec<(&str, String)> = vec![
        ("a genuine token for another service", provider.token("sanctum-test", "https://other.test/api").await),
        ("a genuine token whose sub is a static principal", provider.token("letta", AUDIENCE).await),
        ("expired", forge(info, kid, &with("exp", json!(now() - 60)))),
        ("not yet valid", forge(info, kid, &with("nbf", json!(now() + 600)))),
        ("issued in the future", forge(info, kid, &with("iat", json!(now() + 600)))),
        ("another issuer", forge(info, kid, &with("iss", json!("http://127.0.0.1:1")))),
        ("another audience", forge(info, kid, &with("aud", json!("https://other.test/api")))),
        ("exp as a string", forge(info, kid, &with("exp", json!((now() + 600).to_string())))),
    ];
    // The genuine signature over changed claims.
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered = b64(&serde_json::to_vec(&with("sub", json!("root"))).expect("json"));
    parts[1] = &tampered;
    cases.push(("a bad signature", parts.join(".")));
    // `alg: none`, unsigned.
    let none_header = b64(&serde_json::to_vec(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})).expect("json"));
    cases.push(("alg none", format!("{none_header}.{}.", token.split('.').nth(1).expect("payload"))));
    // HS256 "keyed" with the provider's public key, in the two usual spellings.
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(kid.to_owned());
    for public in [info.public_pem.as_bytes().to_vec(), info.public_pem.trim().as_bytes().to_vec()] {
        let key = EncodingKey::from_secret(&public).expect("hmac key");
        cases.push(("HS256 with the public key", jsonwebtoken::encode(&hs256, &genuine, &key).expect("sign")));
    }
    for (case, bad) in &cases {
        assert_eq!(initialize(&server, Some(bad)).await, (401, Some(refused.clone())), "{case}");
    }

    // The metadata, open without a token.
    let http = reqwest::Client::new();
    for (path, resource) in [("/mcp", AUDIENCE), ("/sse", "https://mcp.test/sse"), ("", AUDIENCE)] {
        let response = http
            .get(server.url(&format!("/.well-known/oauth-protected-resource{path}")))
            .send()
            .await
            .expect("GET metadata");
        assert_eq!(response.status(), 200, "{path}");
        let document: Value = response.json().await.expect("json");
        assert_eq!(
            document,
            json!({"resource": resource, "authorization_servers": [info.issuer], "bearer_methods_supported": ["header"]}),
            "{path}"
        );
    }

    // Without `resource`, from a tokens file's `[jwt]`: the metadata and the challenge name the
    // (allow-listed) Host.
    let tokens = auth_toml(info, "", None);
    let dir = plugins_dir(&["echo.wasm"], &[("tokens.toml", tokens.as_bytes())]);
    let tokens = dir.path().join("tokens.toml");
    let by_host = TestServer::start_with(dir, move |args| args.front_door.auth_tokens_file = Some(tokens)).await;
    let origin = by_host.url("");
    let expected = format!("Bearer resource_metadata=\"{origin}/.well-known/oauth-protected-resource/mcp\"");
    assert_eq!(initialize(&by_host, None).await, (401, Some(expected)));
    let document: Value = http
        .get(by_host.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(document["resource"], format!("{origin}/mcp"));
    let foreign = http
        .get(by_host.url("/.well-known/oauth-protected-resource/mcp"))
        .header("host", "evil.example.com")
        .send()
        .await
        .expect("GET");
    assert_eq!(foreign.status(), 403, "a foreign Host is never echoed into the document");
    assert_eq!(echo_as(&by_host, &token).await, "through sanctum");

    // The provider goes away: cached keys keep working, an unknown kid is refused (after a
    // refresh attempt: the minimum interval is 1 s here).
    let fresh = forge(info, kid, &with("exp", json!(now() + 300)));
    let rotated = forge(info, "a-key-the-jwks-never-listed", &with("exp", json!(now() + 300)));
    provider.stop().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(initialize(&server, Some(&rotated)).await, (401, Some(refused.clone())), "unknown kid, JWKS down");
    assert_eq!(initialize(&server, Some(&fresh)).await.0, 200, "a cached key still verifies");
    assert_eq!(echo_as(&server, &token).await, "through sanctum");
    assert_eq!(echo_as(&server, STATIC).await, "through sanctum");
}

/// Without `[auth.jwt]` the metadata routes do not exist: 404 without authentication, and 401
/// behind static tokens (as for any path the front door does not serve), whose challenge stays
/// the plain `Bearer`.
#[tokio::test]
async fn without_jwt_settings_there_is_no_metadata_and_the_challenge_is_plain() {
    let paths = ["", "/mcp", "/sse"].map(|p| format!("/.well-known/oauth-protected-resource{p}"));
    let open = TestServer::start(&["echo.wasm"]).await;
    for path in &paths {
        assert_eq!(reqwest::get(open.url(path)).await.expect("GET").status(), 404, "{path}");
    }
    let tokens = format!("[[token]]\nprincipal = \"letta\"\nvalue = {STATIC:?}\n");
    let dir = plugins_dir(&["echo.wasm"], &[("tokens.toml", tokens.as_bytes())]);
    let tokens = dir.path().join("tokens.toml");
    let server = TestServer::start_with(dir, move |args| args.front_door.auth_tokens_file = Some(tokens)).await;
    for path in &paths {
        assert_eq!(reqwest::get(server.url(path)).await.expect("GET").status(), 401, "{path}");
    }
    assert_eq!(initialize(&server, Some("eyJhbGciOiJub25lIn0.e30.")).await, (401, Some("Bearer".to_owned())));
}

/// A JWKS endpoint that cannot be reached at start-up stops nothing: the server serves, static
/// tokens work, and JWTs are refused until keys are known.
#[tokio::test]
async fn an_unreachable_jwks_at_start_up_refuses_jwts_but_serves() {
    let settings: sanctum::transport::AuthSettings = toml::from_str(&format!(
        "[[token]]\nprincipal = \"letta\"\nvalue = {STATIC:?}\n\
         [jwt]\nissuer = \"http://127.0.0.1:1\"\naudience = {AUDIENCE:?}\njwks_url = \"http://127.0.0.1:1/jwks\"\n\
         jwks_allow_ranges = [\"127.0.0.1/32\"]\njwks_refresh_secs = 1\n"
    ))
    .expect("valid");
    let server = TestServer::start_with(plugins_dir(&["echo.wasm"], &[]), move |args| {
        args.front_door.config_auth = Some(settings);
    })
    .await;
    assert_eq!(echo_as(&server, STATIC).await, "through sanctum");
    let header = b64(br#"{"alg":"ES256","kid":"k"}"#);
    let (status, challenge) = initialize(&server, Some(&format!("{header}.e30.c2ln"))).await;
    assert_eq!(status, 401);
    assert!(challenge.is_some_and(|c| c.ends_with("error=\"invalid_token\"")));
}
