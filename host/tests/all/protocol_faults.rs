//! Client faults get the answer the protocol owes them, on both transports, and nothing else is
//! disturbed: a request id reused while the first is in flight, `tools/call` arguments that are
//! not an object, an oversized chunked body, a `DELETE` of a session that does not exist, and
//! more requests in flight on one session than it may have. Raw HTTP against the real server.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::raw_mcp::{ACCEPT, McpSession, last_message};
use crate::support::raw_sse::RawSession;

/// A legacy session past its handshake.
async fn legacy(server: &TestServer) -> RawSession {
    let mut session = RawSession::open(server).await;
    session.initialize().await;
    session
}

fn wait_call(id: u64, ms: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "echo__wait", "arguments": {"ms": ms}}})
}

#[tokio::test]
async fn a_request_id_reused_while_in_flight_is_refused_over_mcp_and_the_first_is_answered() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let session = McpSession::open(&server).await;
    let first = {
        let (http, url, id) = (session.http.clone(), session.url.clone(), session.id.clone());
        tokio::spawn(async move {
            let response = http
                .post(url)
                .header("accept", ACCEPT)
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-11-25")
                .json(&wait_call(7, 800))
                .send()
                .await
                .expect("POST");
            last_message(&response.text().await.expect("body"))
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let duplicate = session.ask(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})).await;
    assert_eq!(duplicate["id"], 7);
    assert_eq!(duplicate["error"]["code"], -32600, "{duplicate}");
    assert!(duplicate["error"]["message"].as_str().is_some_and(|m| m.contains("already in flight")));
    let answer = first.await.expect("task");
    assert_eq!(answer["result"]["content"][0]["text"], "waited 800 ms", "the first request got its own answer");
    // Once answered, the id is free again (and other ids never collided).
    let later = session.ask(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})).await;
    assert!(later["result"]["tools"].is_array(), "{later}");
}

#[tokio::test]
async fn call_arguments_that_are_not_an_object_are_invalid_params_on_both_transports() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let bad = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                     "params": {"name": "echo__echo", "arguments": "hello"}});
    let session = McpSession::open(&server).await;
    let answer = session.ask(&bad).await;
    assert_eq!((answer["id"].clone(), answer["error"]["code"].clone()), (json!(3), json!(-32602)), "{answer}");
    // Stateless (2026-07-28) requests get it too.
    let stateless = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", "2026-07-28")
        .json(&bad)
        .send()
        .await
        .expect("POST");
    assert_eq!(last_message(&stateless.text().await.expect("body"))["error"]["code"], -32602);

    let mut legacy = legacy(&server).await;
    assert_eq!(legacy.post(&bad).await, 202);
    let answer = legacy.next_message().await;
    assert_eq!((answer["id"].clone(), answer["error"]["code"].clone()), (json!(3), json!(-32602)), "{answer}");
}

#[tokio::test]
async fn a_request_id_reused_while_in_flight_is_refused_over_legacy_sse() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let mut legacy = legacy(&server).await;
    assert_eq!(legacy.post(&wait_call(9, 600)).await, 202);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(legacy.post(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})).await, 202);
    let refusal = legacy.next_message().await;
    assert_eq!((refusal["id"].clone(), refusal["error"]["code"].clone()), (json!(9), json!(-32600)), "{refusal}");
    let answer = legacy.next_message().await;
    assert_eq!(answer["result"]["content"][0]["text"], "waited 600 ms", "{answer}");
    // Cancelling a request frees its id too.
    assert_eq!(legacy.post(&wait_call(11, 5000)).await, 202);
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11}});
    assert_eq!(legacy.post(&cancel).await, 202);
    assert_eq!(legacy.post(&json!({"jsonrpc": "2.0", "id": 11, "method": "ping"})).await, 202);
    let pong = legacy.next_message().await;
    assert_eq!(pong["id"], 11);
    assert!(pong.get("result").is_some(), "{pong}");
}

#[tokio::test]
async fn an_oversized_chunked_body_gets_413_on_mcp_sessions_too() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let session = McpSession::open(&server).await;
    let chunked = || {
        let chunks = (0..6).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1 << 20]));
        reqwest::Body::wrap_stream(futures::stream::iter(chunks))
    };
    for with_session in [true, false] {
        let mut request = session
            .http
            .post(&session.url)
            .header("accept", ACCEPT)
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25");
        if with_session {
            request = request.header("mcp-session-id", &session.id);
        }
        let response = request.body(chunked()).send().await.expect("POST");
        assert_eq!(response.status(), 413, "with a session: {with_session}");
    }
    let pong = session.ask(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await;
    assert!(pong.get("result").is_some(), "the session still works: {pong}");
}

#[tokio::test]
async fn deleting_a_session_that_does_not_exist_is_404() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let session = McpSession::open(&server).await;
    let delete = |id: String| {
        session.http.delete(&session.url).header("mcp-session-id", id).header("mcp-protocol-version", "2025-11-25")
    };
    assert_eq!(delete(session.id.clone()).send().await.expect("DELETE").status(), 204);
    assert_eq!(delete(session.id.clone()).send().await.expect("DELETE").status(), 404, "already deleted");
    assert_eq!(delete("no-such-session".into()).send().await.expect("DELETE").status(), 404);
}

#[tokio::test]
async fn a_session_may_have_only_so_many_requests_in_flight() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let session = McpSession::open(&server).await;
    let limit = 32;
    // Requests not answered yet (slow calls, queued behind each other): their streams are open.
    let mut held = Vec::new();
    for id in 0..limit {
        let response = session.send(&wait_call(100 + id, 2000)).await;
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    let refused = session.send(&json!({"jsonrpc": "2.0", "id": 999, "method": "ping"})).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.text().await.expect("body").contains("in flight"));
    // Walking away from them (the connections close) releases them.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pong = session.ask(&json!({"jsonrpc": "2.0", "id": 1000, "method": "ping"})).await;
    assert!(pong.get("result").is_some(), "answers read, requests admitted again: {pong}");
}
