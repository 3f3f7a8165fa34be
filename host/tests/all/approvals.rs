//! Human approval through MCP: a call an access rule marks `approve` waits in the approvals
//! book (never in the worker's queue) and its client is told the request id; approved, it runs
//! once with exactly the approved arguments; denied or expired, the caller gets a tool error
//! with the reason; a client that goes away takes its request with it; a shutdown expires every
//! pending request and nothing runs later. Real server, real echo plugin, rmcp's client.

use std::time::{Duration, Instant};

use rmcp::model::CallToolResult;
use sanctum::approvals::{ApprovalView, Decision};
use serde_json::json;

use crate::support::{ALL_PATHS, Client, Path_, TestServer, call, connect, plugins_dir, text};

const POLICY: &str = r#"
[access]
default = "allow"

[[access.rule]]
name = "loud-needs-approval"
tools = ["echo__echo"]
effect = "approve"
when = [{ pointer = "/uppercase", equals = true }]
"#;

async fn server(timeout_secs: u64) -> TestServer {
    let dir = plugins_dir(&["echo.wasm"], &[("policy.toml", POLICY.as_bytes())]);
    let policy = dir.path().join("policy.toml");
    TestServer::start_with(dir, move |args| {
        args.source.policy = Some(policy);
        args.audit = "audit.jsonl".into();
        args.approvals.approval_timeout_secs = timeout_secs;
    })
    .await
}

/// Wait until the book holds `count` pending requests; return them.
async fn pending(server: &TestServer, count: usize) -> Vec<ApprovalView> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Vec<ApprovalView> = server
            .approvals
            .list()
            .into_iter()
            .filter(|v| v.state == sanctum::approvals::ApprovalState::Pending)
            .collect();
        if list.len() == count {
            return list;
        }
        assert!(Instant::now() < deadline, "expected {count} pending, have {}", list.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn loud(text: &str) -> rmcp::model::CallToolRequestParams {
    call("echo__echo", json!({"text": text, "uppercase": true}))
}

async fn held_call(client: &Client, text: &str) -> CallToolResult {
    client.call_tool(loud(text)).await.expect("a tool result")
}

#[tokio::test]
async fn approved_calls_run_once_with_the_approved_arguments_on_every_transport() {
    let server = server(60).await;
    for path in ALL_PATHS {
        let (client, recorder) = connect(&server, path).await;
        let listed = client.list_all_tools().await.expect("list");
        let echo = listed.iter().find(|t| t.name == "echo__echo").expect("listed");
        assert!(echo.description.as_deref().is_some_and(|d| d.contains("operator's approval")), "{path:?}");
        let meta = echo.meta.as_ref().map(|m| m.0.get("sanctum/approval").cloned());
        assert_eq!(meta, Some(Some(json!("conditional"))), "{path:?}");

        let held = {
            let peer = client.peer().clone();
            tokio::spawn(async move { peer.call_tool(loud("ship it")).await })
        };
        let [entry] = &pending(&server, 1).await[..] else { unreachable!() };
        assert_eq!(entry.tool, "echo__echo");
        assert_eq!(entry.rule, "#1 loud-needs-approval");
        assert_eq!(entry.arguments, Some(json!({"text": "ship it", "uppercase": true})));
        // The worker is free while the call waits: another call answers at once. (Without
        // `uppercase` the rule's condition is unknown, so that call would need approval too.)
        let quick =
            client.call_tool(call("echo__echo", json!({"text": "quiet", "uppercase": false}))).await.expect("result");
        assert_eq!(text(&quick), "quiet", "{path:?}");
        server.approvals.decide(&entry.id, Decision::Approve, "test-operator").expect("approved");
        let result = held.await.expect("task").expect("a result");
        assert_eq!((result.is_error, text(&result)), (Some(false), "SHIP IT"), "{path:?}");
        let again = server.approvals.decide(&entry.id, Decision::Approve, "test-operator");
        assert!(again.is_err(), "an approval is used once");
        let _ = recorder;
        client.cancel().await.expect("close");
    }
    let ran: Vec<_> =
        server.audit_records().into_iter().filter(|r| r["event"] == "approval" && r["step"] == "ran").collect();
    assert_eq!(ran.len(), ALL_PATHS.len(), "{ran:?}");
    assert_eq!(ran[0]["outcome"], "ok");
    assert_eq!(ran[0]["by"], "test-operator");
    let decided = server.audit_records();
    let access = decided.iter().find(|r| r["event"] == "access" && r["decision"] == "approve").expect("audited");
    assert_eq!(access["arguments_sha256"], ran[0]["arguments_sha256"], "one digest ties the records of a call");
}

#[tokio::test]
async fn clients_that_ask_for_progress_hear_the_request_id() {
    let server = server(60).await;
    let (client, recorder) = connect(&server, Path_::StreamableHandshake).await;
    let held = {
        let peer = client.peer().clone();
        tokio::spawn(async move {
            let mut request = loud("progress");
            let mut meta = rmcp::model::RequestMetaObject::default();
            meta.set_progress_token(rmcp::model::ProgressToken(rmcp::model::NumberOrString::Number(7)));
            request.meta = Some(meta);
            peer.call_tool(request).await
        })
    };
    let [entry] = &pending(&server, 1).await[..] else { unreachable!() };
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected = format!("waiting for operator approval: request {}", entry.id);
    while !recorder.progress.lock().expect("lock").iter().any(|p| p.message.as_deref() == Some(expected.as_str())) {
        assert!(Instant::now() < deadline, "no progress notification naming {}", entry.id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
        .approvals
        .decide(&entry.id, Decision::Deny { reason: "not during the freeze".into() }, "op")
        .expect("denied");
    let result = held.await.expect("task").expect("result");
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains(&format!("request {} to call echo__echo was denied", entry.id)),
        "{}",
        text(&result)
    );
    assert!(text(&result).contains("not during the freeze"), "{}", text(&result));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn unanswered_requests_expire_and_nothing_runs() {
    let server = server(1).await;
    let (client, _) = connect(&server, Path_::LegacySse).await;
    let started = Instant::now();
    let result = held_call(&client, "too late").await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("was not approved") && text(&result).contains("did not run"), "{}", text(&result));
    assert!(pending(&server, 0).await.is_empty());
    let records = server.audit_records();
    assert!(records.iter().any(|r| r["event"] == "approval" && r["step"] == "expired"));
    assert!(!records.iter().any(|r| r["event"] == "tool_call" && r["tool"] == "echo"), "nothing ran: {records:?}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_request_whose_client_left_cannot_be_approved_and_never_runs() {
    let server = server(60).await;
    let (client, _) = connect(&server, Path_::StreamableHandshake).await;
    let held = {
        let peer = client.peer().clone();
        tokio::spawn(async move { peer.call_tool(loud("abandoned")).await })
    };
    let [entry] = &pending(&server, 1).await[..] else { unreachable!() };
    held.abort();
    client.cancel().await.expect("close");
    // The request leaves the book once the server sees the caller gone.
    pending(&server, 0).await;
    let late = server.approvals.decide(&entry.id, Decision::Approve, "op").expect_err("gone");
    assert!(late.to_string().contains("nothing ran"), "{late}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let records = server.audit_records();
    assert!(records.iter().any(|r| r["event"] == "approval" && r["step"] == "abandoned"), "{records:?}");
    assert!(!records.iter().any(|r| r["event"] == "tool_call" && r["tool"] == "echo"), "nothing ran");
}

#[tokio::test]
async fn twenty_requests_wait_at_once_and_a_shutdown_expires_them_all() {
    let server = server(60).await;
    let (client, _) = connect(&server, Path_::StreamableHandshake).await;
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let peer = client.peer().clone();
            tokio::spawn(async move { peer.call_tool(loud(&format!("call {i}"))).await })
        })
        .collect();
    let entries = pending(&server, 20).await;
    let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20, "every request has its own id");
    // Approve two, deny one; the rest are pending when the server stops.
    for entry in &entries[..2] {
        server.approvals.decide(&entry.id, Decision::Approve, "op").expect("approve");
    }
    server.approvals.decide(&entries[2].id, Decision::Deny { reason: "no".into() }, "op").expect("deny");
    pending(&server, 17).await;
    server.stop();
    let mut outcomes = (0, 0, 0);
    for call in calls {
        match call.await.expect("task") {
            Ok(result) if result.is_error == Some(false) => outcomes.0 += 1,
            Ok(result) if text(&result).contains("denied") => outcomes.1 += 1,
            Ok(result) => {
                assert!(text(&result).contains("shutting down"), "{}", text(&result));
                outcomes.2 += 1;
            }
            // The drain may close the stream before a reply is read; nothing ran either way.
            Err(_) => outcomes.2 += 1,
        }
    }
    assert_eq!(outcomes, (2, 1, 17));
    let after = server.approvals.decide(&entries[5].id, Decision::Approve, "op");
    assert!(after.is_err(), "nothing approved after the shutdown can run");
    let ran = server.audit_records().iter().filter(|r| r["event"] == "tool_call" && r["tool"] == "echo").count();
    assert_eq!(ran, 2, "only the two approved calls ran");
}
