//! The policy is hot-reloaded too: a changed grant takes effect without a restart, a policy that
//! no longer grants something denies it at once, and an invalid policy leaves the previous one
//! in force and is reported. Driven with the `probe` fixture's `config` tool.

use sanctum::model::{CallContext, Content};
use serde_json::{Value, json};

use crate::reload::{install, until};
use crate::support::{TestServer, plugins_dir};

fn policy(greeting: Option<&str>) -> String {
    match greeting {
        Some(g) => format!("[plugins.probe]\nconfig = {{ greeting = \"{g}\" }}\n"),
        None => "[plugins.probe]\n".to_owned(),
    }
}

async fn greeting(server: &TestServer) -> String {
    let Value::Object(args) = json!({"key": "greeting"}) else { unreachable!() };
    let done = server.app_registry.call("probe__config", Some(args), CallContext::default()).await.expect("call");
    match &done.content[..] {
        [Content::Text(text)] => text.clone(),
        other => panic!("unexpected content {other:?}"),
    }
}

#[tokio::test]
async fn policy_changes_apply_without_a_restart_and_a_broken_one_keeps_the_last_good() {
    let policy_dir = tempfile::tempdir().expect("temp dir");
    let policy_path = policy_dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy(Some("one"))).expect("write policy");
    let watched = policy_path.clone();
    let server = TestServer::start_with(plugins_dir(&["probe.wasm"], &[]), |args| {
        args.source.policy = Some(watched);
        args.watch = true;
    })
    .await;
    assert_eq!(greeting(&server).await, "one");

    install(&policy_path, policy(Some("two")).as_bytes());
    until("the new grant applies", async || greeting(&server).await == "two").await;

    // Invalid TOML: reported, and the last good policy stays in force.
    install(&policy_path, b"[plugins.probe\nconfig = ");
    until("the broken policy is reported", async || {
        server.app_registry.health().problems.iter().any(|p| p.contains("the previous policy stays in force"))
    })
    .await;
    assert_eq!(greeting(&server).await, "two", "still the last good policy");

    // Taking the grant away denies it without a restart.
    install(&policy_path, policy(None).as_bytes());
    until("the grant is withdrawn", async || greeting(&server).await == "unset").await;
}
