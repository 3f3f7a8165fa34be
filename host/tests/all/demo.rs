//! The README's run command (`demo/run`) works as promised: it serves the bundled plugins with
//! the demo policy, and a real MCP client can deploy with the DevOps plugin (following the
//! deploy job to its end) and administer the fake bot with the BotFather plugin. Run with the
//! test build of sanctum (`SANCTUM_BIN`) so the test does not rebuild the host, and a one-second
//! demo deploy (`DEMO_DEPLOY_SECONDS`) so it does not wait for the realistic one.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::ContentBlock;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::{Recorder, call, no_args, repo_root};

#[tokio::test]
async fn the_demo_serves_working_devops_and_botfather_plugins() {
    let state = tempfile::tempdir().expect("temp dir");
    let mut demo = Command::new(repo_root().join("demo/run"))
        .args(["--port", "0", "--audit", "off"])
        .env("SANCTUM_BIN", env!("CARGO_BIN_EXE_sanctum"))
        .env("SANCTUM_DEMO_DIR", state.path())
        .env("DEMO_DEPLOY_SECONDS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("demo/run starts");
    let mut group = KillGroupOnDrop(demo.id());
    let stdout = demo.stdout.take().expect("stdout");
    let first = tokio::time::timeout(Duration::from_secs(60), BufReader::new(stdout).lines().next_line())
        .await
        .expect("the demo starts within a minute")
        .expect("read")
        .expect("a first line");
    let url = first.strip_prefix("sanctum listening on ").expect("the listening line").to_owned();

    let transport = StreamableHttpClientTransport::from_uri(format!("{url}/mcp"));
    let client = Recorder::default().serve(transport).await.expect("handshake");
    let text = |result: &rmcp::model::CallToolResult| match result.content.first() {
        Some(ContentBlock::Text(t)) => t.text.clone(),
        other => panic!("{other:?}"),
    };

    let deployed = client
        .call_tool(call("devops__deploy", json!({"app": "web", "environment": "staging", "version": "v2.0.0"})))
        .await
        .expect("deploy");
    assert_ne!(deployed.is_error, Some(true), "{}", text(&deployed));
    assert!(text(&deployed).contains("started as job"), "{}", text(&deployed));
    // The deploy runs as a job: follow it as an agent would.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = client
            .call_tool(call("devops__status", json!({"app": "web", "environment": "staging"})))
            .await
            .expect("status");
        assert_ne!(status.is_error, Some(true), "{}", text(&status));
        let outcome = status.structured_content.as_ref().map(|s| s["last_deployment"]["outcome"].clone());
        if outcome != Some(json!("running")) {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo deploy did not end: {}", text(&status));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(text(&status).contains("(v2.0.0) succeeded at"), "{}", text(&status));
    assert!(text(&status).contains("health: healthy (HTTP 200)"), "{}", text(&status));
    assert_eq!(
        std::fs::read_to_string(state.path().join("apps/web.staging.version")).expect("written").trim(),
        "v2.0.0"
    );
    assert!(state.path().join("jobs").is_dir(), "the demo keeps its jobs with its state");

    let me = client.call_tool(no_args("botfather__get_me")).await.expect("get_me");
    assert_ne!(me.is_error, Some(true), "{}", text(&me));
    let bots = client.call_tool(call("botfather__send_message", json!({"text": "/mybots"}))).await.expect("chat");
    assert!(text(&bots).contains("@demo_sanctum_bot"), "{}", text(&bots));
    client.cancel().await.expect("close");

    // Stopping the demo stops its fake services too.
    let pid = demo.id().expect("running").to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill");
    assert!(killed.success());
    let waited = tokio::time::timeout(Duration::from_secs(10), demo.wait()).await;
    // Reaped: the group id may now belong to someone else, so never signal it again.
    group.0 = None;
    let status = waited.expect("exits").expect("status");
    assert!(!status.success(), "stopped by the signal");
    let fake = reqwest::get(format!("{url}/healthz")).await;
    assert!(fake.is_err(), "sanctum is gone");
}

/// If the test fails midway, take the demo's whole process group (fakes and server) with it.
/// Only while `demo/run` is unreaped: after that its pid, and so the group id, can be reused.
struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = std::process::Command::new("kill").args(["-KILL", &format!("-{group}")]).status();
        }
    }
}
