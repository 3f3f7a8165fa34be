//! A plugin is who its file says it is: the `impostor` fixture declares the name `probe` and
//! offers probe's `config` tool, to be served in probe's place with probe's grants. Whatever
//! file it is installed as, at start-up or by hot reload, it is refused naming both names, and
//! the real `probe.wasm` keeps serving with its grants. A policy can pin a plugin to the SHA-256
//! of one file; audit records, `health` and `sanctum plugins list` carry that digest.

use std::path::Path;

use sanctum::digest::ComponentDigest;
use sanctum::model::{CallContext, Content};
use serde_json::{Value, json};

use crate::reload::{install, until};
use crate::support::{TestServer, plugin_file, plugins_dir};

const POLICY: &str = "[plugins.probe]\nconfig = { greeting = \"granted to probe only\" }\n";

fn digest_of(file: &str) -> ComponentDigest {
    ComponentDigest::of(&std::fs::read(plugin_file(file)).expect("fixture"))
}

/// Serve `dir` with `policy` (written next to the plugins), watching for changes.
async fn serve(dir: tempfile::TempDir, policy: &str) -> TestServer {
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).expect("write policy");
    TestServer::start_with(dir, |args| {
        args.source.policy = Some(policy_path);
        args.watch = true;
        args.audit = "audit.jsonl".into();
    })
    .await
}

async fn config_answer(server: &TestServer) -> Option<String> {
    let Value::Object(args) = json!({"key": "greeting"}) else { unreachable!() };
    let done = server.app_registry.call("probe__config", Some(args), CallContext::default()).await.ok()?;
    match done.content.first() {
        Some(Content::Text(text)) => Some(text.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn an_impostor_sorted_first_is_refused_and_the_real_plugin_keeps_its_grants() {
    let dir = plugins_dir(&["probe.wasm"], &[]);
    std::fs::copy(plugin_file("impostor.wasm"), dir.path().join("aaa.wasm")).expect("copy");
    let server = serve(dir, POLICY).await;

    let [error] = &server.load_errors[..] else { panic!("one refusal: {:?}", server.load_errors) };
    assert!(
        error.contains("aaa.wasm") && error.contains("declares the plugin name \"probe\"") && error.contains("\"aaa\""),
        "{error}"
    );
    assert_eq!(config_answer(&server).await.as_deref(), Some("granted to probe only"), "the real probe answered");

    let health = server.app_registry.health();
    let probe = health.plugins.iter().find(|p| p.name == "probe").expect("probe is served");
    assert_eq!((probe.file.as_str(), probe.sha256.clone()), ("probe.wasm", digest_of("probe.wasm").hex()));
    assert_eq!(health.plugins.len(), 1, "{:?}", health.plugins);

    let records = server.audit_records();
    let call = records.iter().find(|r| r["event"] == "tool_call").expect("the call is audited");
    assert_eq!(call["plugin"], "probe");
    assert_eq!(call["plugin_sha256"], digest_of("probe.wasm").hex(), "{call}");
}

#[tokio::test]
async fn an_impostor_dropped_in_at_run_time_is_refused_and_reported() {
    let dir = plugins_dir(&["probe.wasm"], &[]);
    let plugins = dir.path().to_owned();
    let server = serve(dir, POLICY).await;
    install(&plugins.join("aaa.wasm"), &std::fs::read(plugin_file("impostor.wasm")).expect("fixture"));
    until("the impostor is reported", async || !server.app_registry.health().problems.is_empty()).await;
    let problems = server.app_registry.health().problems;
    assert!(problems[0].contains("aaa.wasm") && problems[0].contains("\"probe\""), "{problems:?}");
    assert_eq!(config_answer(&server).await.as_deref(), Some("granted to probe only"));

    // Even in probe's absence, a file that is not probe.wasm never serves as probe.
    std::fs::remove_file(plugins.join("probe.wasm")).expect("remove");
    until("probe is gone", async || !server.app_registry.tools().any(|t| t.name.as_str().starts_with("probe__"))).await;
    assert_eq!(config_answer(&server).await, None);
}

#[tokio::test]
async fn a_digest_pin_admits_only_those_bytes_at_start_up_on_reload_and_on_policy_change() {
    let echo = digest_of("echo.wasm");
    let other = digest_of("probe.wasm");
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let plugins = dir.path().to_owned();
    let server = serve(dir, &format!("[plugins.echo]\nsha256 = \"{echo}\"\n")).await;
    assert!(server.load_errors.is_empty(), "{:?}", server.load_errors);
    let listed = |server: &TestServer| server.app_registry.tools().any(|t| t.name.as_str() == "echo__echo");
    assert!(listed(&server));

    // Other bytes under the pinned name are refused before they are compiled (garbage would
    // otherwise be reported as not being a component), and the pinned version keeps serving.
    install(&plugins.join("echo.wasm"), b"not the approved bytes");
    until("the unapproved file is reported", async || !server.app_registry.health().problems.is_empty()).await;
    let problem = &server.app_registry.health().problems[0];
    assert!(
        problem.contains("plugins.echo.sha256") && problem.contains(&echo.hex()) && problem.contains("keeps serving"),
        "{problem}"
    );
    assert!(listed(&server));

    // A policy that pins other bytes withdraws the version that was admitted.
    install(&plugins.join("echo.wasm"), &std::fs::read(plugin_file("echo.wasm")).expect("fixture"));
    until("the approved file serves again", async || server.app_registry.health().problems.is_empty()).await;
    std::fs::write(plugins.join("policy.toml"), format!("[plugins.echo]\nsha256 = \"{other}\"\n")).expect("write");
    until("echo is withdrawn", async || !listed(&server)).await;
    let problem = server.app_registry.health().problems.join("\n");
    assert!(problem.contains(&other.hex()) && problem.contains("withdrawn"), "{problem}");
}

fn sanctum(args: &[&str], extra: &[&Path]) -> std::process::Output {
    crate::support::sanctum_cli().args(args).args(extra).output().expect("run sanctum")
}

#[test]
fn the_command_line_names_plugins_by_file_and_shows_and_checks_digests() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    std::fs::copy(plugin_file("impostor.wasm"), dir.path().join("aaa.wasm")).expect("copy");
    let listing = sanctum(&["plugins", "list", "--pins", "off", "--cache-dir", "off", "--plugins"], &[dir.path()]);
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.contains(&format!("  sha256: {}", digest_of("echo.wasm"))), "{text}");
    assert!(text.lines().any(|l| l.starts_with("error: ") && l.contains("aaa.wasm")), "{text}");

    let refused = crate::support::sanctum_cli()
        .arg("call")
        .arg(dir.path().join("aaa.wasm"))
        .args(["config", "--args", r#"{"key": "greeting"}"#])
        .output()
        .expect("run sanctum call");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr.contains("declares the plugin name \"probe\""), "{stderr}");

    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, format!("[plugins.echo]\nsha256 = \"{}\"\n", digest_of("probe.wasm"))).expect("write");
    let pinned = crate::support::sanctum_cli()
        .arg("call")
        .arg(dir.path().join("echo.wasm"))
        .args(["echo", "--args", r#"{"text": "hi"}"#, "--policy"])
        .arg(&policy)
        .output()
        .expect("run sanctum call");
    let stderr = String::from_utf8_lossy(&pinned.stderr);
    assert_eq!(pinned.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("plugins.echo.sha256"), "{stderr}");
}
