//! Outgoing HTTP through `wasi:http`: a granted origin works and gets its secret injected
//! (which the plugin never sees); everything else is refused before a connection is made —
//! ungranted origins and ports, names and spellings that lead to loopback, link-local or
//! private addresses, and redirects to them. Real HTTP servers on 127.0.0.1.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sanctum::model::CallFailure;
use sanctum::model::{CallContext, Content};
use sanctum::registry::CallError;
use serde_json::{Value, json};

use crate::support::{TestServer, plugins_dir};

const SECRET: &str = "tok-7c1f9e2a5b8d4e60";

/// A local API: records the Authorization header it receives and reflects it back (the worst
/// case for a secret), redirects to a private address, and serves an oversized body.
async fn start_api() -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let app = Router::new()
        .route(
            "/echo",
            get(move |headers: HeaderMap| {
                let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                record.lock().expect("lock").push(auth.clone());
                async move { format!("you sent: {auth}") }
            }),
        )
        .route(
            "/host",
            get(|headers: HeaderMap| async move {
                headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
            }),
        )
        .route("/redirect", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "http://10.1.2.3/admin")]) }))
        .route("/big", get(|| async { "z".repeat(2 << 20).into_response() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, seen)
}

struct Net {
    server: TestServer,
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    audit_log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Net {
    let (port, seen) = start_api().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("api-token");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write secret");
    let policy = format!(
        r#"
[[plugins.probe.http]]
url = "http://127.0.0.1:{port}"
allow_ranges = ["127.0.0.1/32"]
max_response_kib = 64
secret = {{ name = "api", file = "{secret}", header = "Authorization", value = "Bearer {{secret}}" }}

[[plugins.probe.http]]
url = "http://localhost:{port}"

[[plugins.probe.http]]
url = "http://2852039166"

[[plugins.probe.http]]
url = "http://[::ffff:a9fe:a9fe]"
"#,
        secret = secret_file.display()
    );
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).expect("write policy");
    let audit_log = dir.path().join("audit.jsonl");
    let audit = audit_log.display().to_string();
    let server = TestServer::start_with(plugins_dir(&["probe.wasm"], &[]), |args| {
        args.source.policy = Some(policy_path);
        args.audit = audit;
    })
    .await;
    Net { server, port, seen, audit_log, _dir: dir }
}

async fn fetch(net: &Net, url: &str, headers: Value) -> Result<Value, String> {
    let Value::Object(args) = json!({"url": url, "headers": headers}) else { unreachable!() };
    match net.server.app_registry.call("probe__fetch", Some(args), CallContext::default()).await {
        Ok(done) => match &done.content[..] {
            [Content::Text(text)] => Ok(serde_json::from_str(text).expect("JSON")),
            other => panic!("unexpected content {other:?}"),
        },
        Err(CallError::Failed(CallFailure::Tool(message))) => Err(message),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_granted_origin_gets_its_secret_which_the_plugin_never_sees() {
    let net = start().await;
    let url = format!("http://127.0.0.1:{}/echo", net.port);
    // The plugin even tries to set the header itself; the operator's secret wins.
    let reply = fetch(&net, &url, json!([{"name": "Authorization", "value": "Bearer mine"}])).await.expect("granted");
    assert_eq!(reply["status"], 200);
    assert_eq!(net.seen.lock().expect("lock").as_slice(), [format!("Bearer {SECRET}")], "injected by the host");
    // The API reflected the secret; what reaches the agent is scrubbed.
    assert_eq!(reply["body"], "you sent: Bearer [redacted]");
    let audit = std::fs::read_to_string(&net.audit_log).expect("audit");
    assert!(!audit.contains(SECRET), "no secret in the audit log");
    assert!(audit.contains(r#""kind":"http""#) && audit.contains(r#""status":200"#), "{audit}");
}

#[tokio::test]
async fn everything_not_granted_or_not_public_is_refused_before_connecting() {
    let net = start().await;
    let wrong_port = if net.port == 65535 { 65534 } else { net.port + 1 };
    let cases = [
        format!("http://127.0.0.1:{wrong_port}/echo"), // granted host, ungranted port
        format!("https://127.0.0.1:{}/echo", net.port), // ungranted scheme
        format!("http://localhost:{}/echo", net.port), // granted name that resolves to loopback
        "http://169.254.169.254/latest/meta-data/".to_owned(), // cloud metadata, not granted
        "http://2852039166/".to_owned(),               // decimal 169.254.169.254, granted as text
        "http://[::ffff:a9fe:a9fe]/".to_owned(),       // IPv4-mapped metadata, granted as text
        "http://10.1.2.3/admin".to_owned(),            // private
    ];
    for url in &cases {
        let refused = fetch(&net, url, json!([])).await.expect_err(url);
        assert!(refused.contains("[sanctum: HTTP request to http"), "{url}: names the refusal: {refused}");
    }
    let ungranted = fetch(&net, &cases[0], json!([])).await.expect_err("port");
    assert!(ungranted.contains(&format!("no http grant for http://127.0.0.1:{wrong_port}")), "{ungranted}");
    assert!(net.seen.lock().expect("lock").is_empty(), "no refused request reached the API");
    let audit = std::fs::read_to_string(&net.audit_log).expect("audit");
    assert_eq!(audit.matches(r#""result":"denied""#).count(), cases.len() + 1, "{audit}");
    assert!(audit.contains("resolves to a loopback address"), "{audit}");
    assert!(audit.contains("resolves to a link-local address"), "{audit}");
    assert!(audit.contains("IPv4-mapped"), "{audit}");
    let ok = fetch(&net, &format!("http://127.0.0.1:{}/echo", net.port), json!([])).await.expect("still serving");
    assert_eq!(ok["status"], 200);
}

#[tokio::test]
async fn redirects_are_not_followed_and_following_one_is_vetted_again() {
    let net = start().await;
    let reply = fetch(&net, &format!("http://127.0.0.1:{}/redirect", net.port), json!([])).await.expect("granted");
    assert_eq!(reply["status"], 302, "the host does not follow redirects");
    let location = reply["location"].as_str().expect("location");
    let refused = fetch(&net, location, json!([])).await.expect_err("private target");
    assert!(refused.to_lowercase().contains("denied"), "{refused}");
}

#[tokio::test]
async fn an_oversized_response_is_cut_off_at_the_grant_cap() {
    let net = start().await;
    let refused = fetch(&net, &format!("http://127.0.0.1:{}/big", net.port), json!([])).await.expect_err("too big");
    assert!(refused.contains("unexpected HTTP response"), "{refused}");
    let ok = fetch(&net, &format!("http://127.0.0.1:{}/echo", net.port), json!([])).await.expect("still serving");
    assert_eq!(ok["status"], 200);
}

#[tokio::test]
async fn user_info_in_a_url_is_refused_and_audited_as_written() {
    let net = start().await;
    let sneaky = format!("http://evil.example@127.0.0.1:{}/echo", net.port);
    let refused = fetch(&net, &sneaky, json!([])).await.expect_err("user-info");
    assert!(refused.contains("user-info"), "{refused}");
    assert!(refused.contains(&format!("HTTP request to http://evil.example@127.0.0.1:{}", net.port)), "{refused}");
    assert!(net.seen.lock().expect("lock").is_empty(), "nothing reached the API");
    let audit = std::fs::read_to_string(&net.audit_log).expect("audit");
    let denial = audit.lines().find(|l| l.contains(r#""result":"denied""#)).expect("a denial record");
    assert!(denial.contains(&format!(r#""target":"http://evil.example@127.0.0.1:{}""#, net.port)), "{denial}");

    // What the destination is told it was asked for is the granted authority, however the
    // plugin spelt the port.
    let odd = format!("http://127.0.0.1:0{}/host", net.port);
    let reply = fetch(&net, &odd, json!([])).await.expect("granted");
    assert_eq!(reply["body"], format!("127.0.0.1:{}", net.port));
}
