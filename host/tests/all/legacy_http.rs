//! The legacy HTTP+SSE wire shape, checked with raw HTTP as a strict client would see it.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::raw_sse::RawSession;

#[tokio::test]
async fn responses_go_only_to_the_session_that_asked() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let mut a = RawSession::open(&server).await;
    let mut b = RawSession::open(&server).await;
    a.initialize().await;
    b.initialize().await;
    let call = |id: u64, text: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "echo__echo", "arguments": {"text": text}}})
    };
    assert_eq!(a.post(&call(7, "for a")).await, 202);
    assert_eq!(b.post(&call(8, "for b")).await, 202);
    let on_b: Value = serde_json::from_str(&b.next_event().await.data).expect("JSON");
    assert_eq!(on_b["id"], 8, "b sees only its own response");
    assert_eq!(on_b["result"]["content"][0]["text"], "for b");
    let on_a: Value = serde_json::from_str(&a.next_event().await.data).expect("JSON");
    assert_eq!(on_a["id"], 7);
}

#[tokio::test]
async fn bad_posts_get_the_status_codes_clients_expect() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let session = RawSession::open(&server).await;
    let http = reqwest::Client::new();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});

    let missing_id = http.post(server.url("/messages")).json(&ping).send().await.expect("POST");
    assert_eq!(missing_id.status(), 400);
    let unknown = http.post(server.url("/messages?sessionId=0123abcd")).json(&ping).send().await.expect("POST");
    assert_eq!(unknown.status(), 404);
    let snake = http.post(server.url("/messages?session_id=0123abcd")).json(&ping).send().await.expect("POST");
    assert_eq!(snake.status(), 404, "session_id is accepted as the parameter name too");
    let wrong_type = http.post(&session.post_url).header("content-type", "text/plain").body(ping.to_string());
    assert_eq!(wrong_type.send().await.expect("POST").status(), 415);
    let bad_json = http.post(&session.post_url).header("content-type", "application/json").body("{not json");
    assert_eq!(bad_json.send().await.expect("POST").status(), 400);
    let not_rpc = http.post(&session.post_url).json(&json!({"hello": "world"}));
    assert_eq!(not_rpc.send().await.expect("POST").status(), 400);
    let too_big = http.post(&session.post_url).header("content-type", "application/json").body(vec![b' '; 5 << 20]);
    assert_eq!(too_big.send().await.expect("POST").status(), 413);

    let post_sse = http.post(server.url("/sse")).json(&ping).send().await.expect("POST /sse");
    assert_eq!(post_sse.status(), 405, "newer clients fall back to GET on a 4xx");
    assert_eq!(session.post(&ping).await, 202, "the session survived the bad requests");
}

#[tokio::test]
async fn a_foreign_host_header_is_refused_on_every_mcp_route() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let http = reqwest::Client::new();
    for (method, path) in [("GET", "/sse"), ("POST", "/messages?sessionId=x"), ("POST", "/mcp")] {
        let request = http
            .request(method.parse().expect("method"), server.url(path))
            .header("host", "evil.example.com")
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
        assert_eq!(request.send().await.expect("request").status(), 403, "{method} {path}");
    }
}

#[tokio::test]
async fn a_closed_stream_ends_its_session() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let session = RawSession::open(&server).await;
    let post_url = session.post_url.clone();
    drop(session);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = reqwest::Client::new().post(&post_url).json(&ping).send().await.expect("POST").status();
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "session still open 10 s after disconnect ({status})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_idle_stream_gets_a_keep_alive_comment_within_15_seconds() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let mut session = RawSession::open(&server).await;
    let started = Instant::now();
    while !session.raw.lines().any(|l| l.starts_with(':')) {
        assert!(started.elapsed() < Duration::from_secs(17), "no keep-alive comment");
        let chunk = tokio::time::timeout(Duration::from_secs(17), session.events.next()).await;
        if let Ok(Some(Ok(bytes))) = chunk {
            session.raw.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
}

#[tokio::test]
async fn healthz_reports_plugins_and_queue() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let report: Value = reqwest::get(server.url("/healthz")).await.expect("GET").json().await.expect("JSON");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["plugins"][0]["name"], "echo");
    assert_eq!(report["queue_depth"], 0);
    assert!(report["tool_count"].as_u64() > Some(1));
}

#[tokio::test]
async fn the_agent_id_header_reaches_the_audit_trail() {
    let dir = crate::support::plugins_dir(&["echo.wasm"], &[]);
    let server = TestServer::start_with(dir, |args| args.audit = "audit.jsonl".into()).await;
    let mut session = RawSession::open(&server).await;
    session.initialize().await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": "echo__echo", "arguments": {"text": "private words"}}});
    assert_eq!(session.post_as("agent-7", &call).await, 202);
    let reply: Value = serde_json::from_str(&session.next_event().await.data).expect("JSON");
    assert_eq!(reply["id"], 9);
    let log = std::fs::read_to_string(server.audit_path()).expect("audit log");
    let record = server.audit_records().into_iter().find(|r| r["event"] == "tool_call").expect("a tool_call record");
    assert_eq!(record["agent_id"], "agent-7");
    assert_eq!(record["plugin"], "echo");
    assert_eq!(record["outcome"], "ok");
    assert!(!log.contains("private words"), "argument values never reach the audit log");
}
