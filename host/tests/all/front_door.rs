//! The front door: bearer tokens on every MCP route, Host/Origin checks, sessions bound to their
//! principal and capped, idle expiry, body caps, the tool-call rate limit, and slow clients.
//! Real server on 127.0.0.1:0, rmcp's client with an auth header, raw HTTP and raw TCP.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use sanctum::config::ServeArgs;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::sse_client::{SseEvent, SseParser};
use crate::support::{Recorder, TestServer, call, plugins_dir, sse_client, text};

const A: &str = "alpha-token-0123456789abcdef";
const B: &str = "bravo-token-0123456789abcdef";
const TOKENS: &str = "[[token]]\nprincipal = \"alpha\"\nvalue = \"alpha-token-0123456789abcdef\"\n\
                      [[token]]\nprincipal = \"bravo\"\nvalue = \"bravo-token-0123456789abcdef\"\n";

/// A server with tokens for `alpha` (A) and `bravo` (B), configured further by `configure`.
async fn server_with(configure: impl FnOnce(&mut ServeArgs)) -> TestServer {
    let dir = plugins_dir(&["echo.wasm"], &[("tokens.toml", TOKENS.as_bytes())]);
    let tokens = dir.path().join("tokens.toml");
    TestServer::start_with(dir, move |args| {
        args.front_door.auth_tokens_file = Some(tokens);
        configure(args);
    })
    .await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
}

/// A raw legacy session: the open `GET /sse` stream and its POST URL.
struct Legacy {
    events: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    pending: Vec<SseEvent>,
    post_url: String,
}

impl Legacy {
    async fn try_open(server: &TestServer, token: &str) -> Result<Self, reqwest::StatusCode> {
        let response = reqwest::Client::new()
            .get(server.url("/sse"))
            .header("authorization", bearer(token))
            .send()
            .await
            .expect("GET /sse");
        if response.status() != 200 {
            return Err(response.status());
        }
        let mut session = Self {
            events: Box::pin(response.bytes_stream()),
            parser: SseParser::default(),
            pending: Vec::new(),
            post_url: String::new(),
        };
        let endpoint = session.next_event().await.expect("the endpoint event");
        assert_eq!(endpoint.event, "endpoint");
        session.post_url = server.url(&endpoint.data);
        Ok(session)
    }

    async fn open(server: &TestServer, token: &str) -> Self {
        Self::try_open(server, token).await.expect("GET /sse is 200")
    }

    /// The next event, or `None` when the stream ends.
    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.remove(0));
            }
            let chunk =
                tokio::time::timeout(Duration::from_secs(20), self.events.next()).await.expect("an event within 20 s");
            match chunk {
                Some(Ok(chunk)) => self.pending.extend(self.parser.push(&chunk)),
                _ => return None,
            }
        }
    }

    async fn post(&self, token: Option<&str>, body: &Value) -> reqwest::StatusCode {
        let mut request = reqwest::Client::new().post(&self.post_url).json(body);
        if let Some(token) = token {
            request = request.header("authorization", bearer(token));
        }
        request.send().await.expect("POST /messages").status()
    }

    async fn initialize(&mut self, token: &str) {
        assert_eq!(self.post(Some(token), &initialize_body()).await, 202);
        let reply = self.next_event().await.expect("initialize reply");
        assert!(reply.data.contains("protocolVersion"), "{}", reply.data);
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(self.post(Some(token), &initialized).await, 202);
    }
}

/// `initialize` over `/mcp` with `token`: the status and the session id, if any.
async fn mcp_initialize(server: &TestServer, token: &str) -> (reqwest::StatusCode, Option<String>) {
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("authorization", bearer(token))
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .expect("POST /mcp");
    let id = response.headers().get("mcp-session-id").map(|v| v.to_str().expect("ascii").to_owned());
    (response.status(), id)
}

/// A `ping` on an `/mcp` session as `token`.
async fn mcp_ping(server: &TestServer, token: &str, session: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("authorization", bearer(token))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "ping"}))
        .send()
        .await
        .expect("POST /mcp")
        .status()
}

async fn mcp_client(server: &TestServer, token: &str) -> crate::support::Client {
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    Recorder::default().serve(transport).await.expect("handshake over /mcp with a token")
}

async fn legacy_client(server: &TestServer, authorization: &str) -> crate::support::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", authorization.parse().expect("header"));
    let http = reqwest::Client::builder().default_headers(headers).build().expect("client");
    let transport = sse_client::connect_with(&server.url("/sse"), http).await;
    Recorder::default().serve(transport).await.expect("handshake over /sse with a token")
}

#[tokio::test]
async fn every_mcp_route_needs_a_valid_token_and_healthz_stays_open() {
    let server = server_with(|_| {}).await;
    let http = reqwest::Client::new();
    let routes =
        [("GET", "/sse"), ("POST", "/messages?sessionId=x"), ("POST", "/mcp"), ("GET", "/mcp"), ("DELETE", "/mcp")];
    for (method, path) in routes {
        for auth in [None, Some("Bearer wrong-token-0123456789abcdef"), Some("Basic YWxwaGE6YQ=="), Some("Bearer")] {
            let mut request = http
                .request(method.parse().expect("method"), server.url(path))
                .header("accept", "application/json, text/event-stream")
                .json(&initialize_body());
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), 401, "{method} {path} with {auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer", "{method} {path}");
        }
        for query in ["access_token", "token"] {
            let url = if path.contains('?') {
                server.url(&format!("{path}&{query}={A}"))
            } else {
                server.url(&format!("{path}?{query}={A}"))
            };
            let response = http
                .request(method.parse().expect("method"), url)
                .header("authorization", bearer(A))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 400, "{method} {path} with ?{query}= is refused even with a header");
            assert!(response.text().await.expect("body").contains("never accepted in the URL"));
        }
    }
    assert_eq!(http.get(server.url("/healthz")).send().await.expect("GET").status(), 200);
}

#[tokio::test]
async fn valid_tokens_work_over_both_transports_and_the_letta_code_double_header_too() {
    let server = server_with(|_| {}).await;
    let client = mcp_client(&server, A).await;
    let result = client.call_tool(call("echo__echo", json!({"text": "over /mcp"}))).await.expect("call");
    assert_eq!(text(&result), "over /mcp");
    client.cancel().await.expect("close");

    // Letta Code 0.32 over SSE sends `Bearer T, Bearer T`, on the GET and on every POST.
    let client = legacy_client(&server, &format!("Bearer {A}, Bearer {A}")).await;
    let result = client.call_tool(call("echo__echo", json!({"text": "over /sse"}))).await.expect("call");
    assert_eq!(text(&result), "over /sse");
    client.cancel().await.expect("close");

    let mixed = reqwest::Client::new()
        .get(server.url("/sse"))
        .header("authorization", format!("Bearer {A}, Bearer {B}"))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(mixed.status(), 401, "two different tokens in one header are refused");
}

#[tokio::test]
async fn every_legacy_post_is_authenticated_and_bound_to_the_opener() {
    let server = server_with(|_| {}).await;
    let mut session = Legacy::open(&server, A).await;
    session.initialize(A).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(session.post(None, &ping).await, 401, "a POST without a token, on a session opened with one");
    assert_eq!(session.post(Some("wrong-token-0123456789abcdef"), &ping).await, 401);
    assert_eq!(session.post(Some(B), &ping).await, 404, "another principal cannot use the session");
    assert_eq!(session.post(Some(A), &ping).await, 202);
    let reply = session.next_event().await.expect("the ping reply");
    assert!(reply.data.contains("\"id\":1"), "only the owner's ping was delivered: {}", reply.data);
}

#[tokio::test]
async fn an_mcp_session_is_bound_to_the_principal_that_opened_it() {
    let server = server_with(|_| {}).await;
    let (status, session) = mcp_initialize(&server, A).await;
    assert_eq!(status, 200);
    let session = session.expect("a session id");
    assert_eq!(mcp_ping(&server, B, &session).await, 404, "bravo using alpha's session");
    assert_eq!(mcp_ping(&server, A, &session).await, 200);
    let delete = |token: &'static str| {
        reqwest::Client::new()
            .delete(server.url("/mcp"))
            .header("authorization", bearer(token))
            .header("mcp-session-id", session.clone())
            .send()
    };
    assert_eq!(delete(B).await.expect("DELETE").status(), 404, "bravo cannot end alpha's session");
    assert_eq!(delete(A).await.expect("DELETE").status(), 204);
}

#[tokio::test]
async fn a_non_loopback_bind_without_tokens_is_refused_at_start() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let mut args = ServeArgs::for_plugins(dir.path());
    args.host = "0.0.0.0".parse().expect("address");
    let refused = sanctum::app::build(&args).await.expect_err("no tokens on 0.0.0.0");
    let message = format!("{refused:#}");
    assert!(message.contains("without authentication") && message.contains("--auth-tokens-file"), "{message}");

    args.front_door.auth_token = Some(A.into());
    assert!(sanctum::app::build(&args).await.is_ok(), "with a token");
    args.front_door.auth_token = None;
    args.front_door.allow_unauthenticated = true;
    assert!(sanctum::app::build(&args).await.is_ok(), "explicitly unauthenticated");
}

#[tokio::test]
async fn foreign_hosts_and_origins_are_refused_on_every_route() {
    let server = server_with(|args| args.front_door.allowed_origins = vec!["https://ui.example.com".into()]).await;
    let http = reqwest::Client::new();
    let port = server.addr.port();
    for (method, path) in [("GET", "/sse"), ("POST", "/messages?sessionId=x"), ("POST", "/mcp")] {
        let request = |host: Option<&str>, origin: Option<String>| {
            let mut request = http
                .request(method.parse().expect("method"), server.url(path))
                .header("authorization", bearer(A))
                .header("accept", "application/json, text/event-stream")
                .json(&initialize_body());
            if let Some(host) = host {
                request = request.header("host", host);
            }
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            request.send()
        };
        let status = |r: reqwest::Response| r.status();
        assert_eq!(status(request(Some("evil.example.com"), None).await.expect("req")), 403, "{path}: Host");
        for origin in ["http://evil.example.com", "null", &format!("http://localhost:{}", port + 1)] {
            let refused = request(None, Some(origin.to_owned())).await.expect("req");
            assert_eq!(refused.status(), 403, "{method} {path}: Origin {origin}");
        }
        for (host, origin) in [
            (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}")),
            (format!("localhost:{port}"), format!("http://localhost:{port}")),
            (format!("127.0.0.1:{port}"), "https://ui.example.com".to_owned()),
        ] {
            let allowed = request(Some(&host), Some(origin.clone())).await.expect("req");
            assert_ne!(allowed.status(), 403, "{method} {path}: Origin {origin}");
            assert_ne!(allowed.status(), 401);
        }
    }
}

#[tokio::test]
async fn sessions_are_capped_per_principal_and_in_total_across_transports() {
    let server = server_with(|args| {
        args.front_door.max_sessions = 3;
        args.front_door.max_sessions_per_principal = 2;
    })
    .await;
    let _a1 = Legacy::open(&server, A).await;
    let (status, a2) = mcp_initialize(&server, A).await;
    assert_eq!(status, 200);
    assert!(a2.is_some());
    assert_eq!(Legacy::try_open(&server, A).await.err(), Some(reqwest::StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(mcp_initialize(&server, A).await.0, 429, "alpha's third session, over /mcp");
    let _b1 = Legacy::open(&server, B).await;
    assert_eq!(Legacy::try_open(&server, B).await.err(), Some(reqwest::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(mcp_initialize(&server, B).await.0, 503, "the server is full");

    // Ending a session frees its slot.
    let ended = reqwest::Client::new()
        .delete(server.url("/mcp"))
        .header("authorization", bearer(A))
        .header("mcp-session-id", a2.expect("id"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(ended.status(), 204);
    assert_eq!(mcp_initialize(&server, B).await.0, 200);
}

#[tokio::test]
async fn idle_sessions_expire_on_both_transports() {
    let server = server_with(|args| args.front_door.session_idle_secs = 1).await;
    let mut legacy = Legacy::open(&server, A).await;
    legacy.initialize(A).await;
    let (_, session) = mcp_initialize(&server, A).await;
    let session = session.expect("a session id");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(mcp_ping(&server, A, &session).await, 200, "activity keeps a session open");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    assert_eq!(legacy.post(Some(A), &ping).await, 404, "the idle legacy session is gone");
    loop {
        match legacy.next_event().await {
            None => break,
            Some(event) => assert_ne!(event.event, "message", "no message after expiry"),
        }
    }
    assert_eq!(mcp_ping(&server, A, &session).await, 404, "the idle /mcp session is gone");
}

#[tokio::test]
async fn bodies_over_the_cap_get_413_on_every_route() {
    let server = server_with(|_| {}).await;
    let session = Legacy::open(&server, A).await;
    let http = reqwest::Client::new();
    let huge = vec![b' '; 5 << 20];
    for (method, url) in [("POST", server.url("/mcp")), ("POST", session.post_url.clone()), ("GET", server.url("/sse"))]
    {
        let response = http
            .request(method.parse().expect("method"), &url)
            .header("authorization", bearer(A))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(huge.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 413, "{method} {url}");
    }
}

#[tokio::test]
async fn tool_calls_are_rate_limited_per_principal_across_transports() {
    let server = server_with(|args| {
        args.front_door.calls_per_minute = 60;
        args.front_door.call_burst = 3;
    })
    .await;
    let over_mcp = mcp_client(&server, A).await;
    let over_sse = legacy_client(&server, &bearer(A)).await;
    let echo = || call("echo__echo", json!({"text": "hi"}));
    for client in [&over_mcp, &over_sse, &over_mcp] {
        let result = client.call_tool(echo()).await.expect("call");
        assert_ne!(result.is_error, Some(true), "within the burst");
    }
    let limited = over_sse.call_tool(echo()).await.expect("an answer, not a transport error");
    assert_eq!(limited.is_error, Some(true));
    assert_eq!(text(&limited), "rate limited, retry after 1 s");

    let other = mcp_client(&server, B).await;
    assert_ne!(other.call_tool(echo()).await.expect("call").is_error, Some(true), "bravo has its own bucket");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let recovered = over_mcp.call_tool(echo()).await.expect("call");
    assert_ne!(recovered.is_error, Some(true), "a token came back after a second");
}

#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_disconnected_while_others_are_served() {
    let server = server_with(|_| {}).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty").await.expect("half the headers");
    let started = Instant::now();
    let health = reqwest::get(server.url("/healthz")).await.expect("GET /healthz");
    assert_eq!(health.status(), 200, "others are served meanwhile");
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(
        sanctum::transport::HEADER_READ_TIMEOUT + Duration::from_secs(5),
        slow.read_to_end(&mut buffer),
    )
    .await;
    assert!(closed.is_ok(), "still connected {:?} after stalling", started.elapsed());
    assert!(started.elapsed() >= sanctum::transport::HEADER_READ_TIMEOUT - Duration::from_secs(1));
}

#[tokio::test]
async fn a_legacy_reader_that_never_reads_is_dropped_while_others_are_served() {
    let server = server_with(|args| args.front_door.calls_per_minute = 0).await;
    let (stalled, post_path) = crate::support::stalled::stalled_sse_session(server.addr, Some(&bearer(A))).await;
    let post_url = server.url(&post_path);
    let http = reqwest::Client::new();
    let post = |body: Value| http.post(&post_url).header("authorization", bearer(A)).json(&body).send();
    assert_eq!(post(initialize_body()).await.expect("POST").status(), 202);
    assert_eq!(
        post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await.expect("POST").status(),
        202
    );

    // Big answers the reader never takes: the buffers fill, then the session is closed.
    let big = "x".repeat(200 << 10);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = 10;
    loop {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                          "params": {"name": "echo__echo", "arguments": {"text": big}}});
        id += 1;
        let status = post(body).await.expect("POST").status();
        if status == 404 {
            break;
        }
        assert!(matches!(status.as_u16(), 202 | 503), "unexpected {status}");
        assert!(Instant::now() < deadline, "the stalled session is still open after 60 s");
        if status == 503 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The server kept serving everyone else.
    let client = mcp_client(&server, A).await;
    let result = client.call_tool(call("echo__echo", json!({"text": "still here"}))).await.expect("call");
    assert_eq!(text(&result), "still here");
    drop(stalled);
}

#[tokio::test]
async fn the_principal_reaches_the_audit_trail_next_to_the_agent_id() {
    let server = server_with(|args| args.audit = "audit.jsonl".into()).await;
    let mut session = Legacy::open(&server, B).await;
    session.initialize(B).await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": "echo__echo", "arguments": {"text": "x"}}});
    let status = reqwest::Client::new()
        .post(&session.post_url)
        .header("authorization", bearer(B))
        .header("x-agent-id", "agent-7")
        .json(&call)
        .send()
        .await
        .expect("POST")
        .status();
    assert_eq!(status, 202);
    let reply = session.next_event().await.expect("reply");
    assert!(reply.data.contains("\"id\":9"));
    let record = server.audit_records().into_iter().find(|r| r["event"] == "tool_call").expect("a tool_call record");
    assert_eq!(record["principal"], "bravo");
    assert_eq!(record["agent_id"], "agent-7");
}
