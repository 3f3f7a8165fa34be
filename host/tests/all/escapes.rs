//! A granted command cannot outlive or outrun its run: descendants that start a new session
//! (`setsid`), are orphaned by a double fork, hold the output pipe open or respawn themselves
//! are all gone when the run ends — on exit, on timeout and on cancellation — and the run ends
//! on time whatever they do with the pipes. Every run leaves an audit record saying how it
//! ended and how many descendants were killed. Checked under each containment mechanism: a PID
//! namespace (as this user, and as an unprivileged user inside a user namespace) and the
//! subreaper fallback, with the real `sanctum` binary and real processes
//! (`tests/fixtures/escape.sh`).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sanctum::model::CallContext;
use sanctum::registry::CallError;
use serde_json::{Value, json};

use crate::support::{TestServer, plugin_file, plugins_dir, repo_root};

/// The command's own time limit in the policy.
const COMMAND_TIMEOUT_MS: u64 = 1500;

fn policy() -> String {
    format!(
        "[plugins.probe.commands.escape]\nprogram = \"/bin/sh\"\nargs = [\"{}\"]\nallowed_args = [\"[a-z-]+\", \
         \"[0-9.]+\"]\ntimeout_ms = {COMMAND_TIMEOUT_MS}\n",
        repo_root().join("tests/fixtures/escape.sh").display()
    )
}

/// A directory any user can read and write (for the unprivileged runs), with the policy.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy()).expect("write policy");
    std::fs::set_permissions(&policy_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    (dir, policy_path)
}

fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).split('\0').any(|arg| arg == marker))
    })
}

/// How a run is started: which containment, as which user.
#[derive(Debug, Clone, Copy)]
enum Mechanism {
    Namespace,
    NamespaceUnprivileged,
    Subreaper,
}

/// Run `escape.sh MODE MARKER` through `sanctum call` under `mechanism`; returns the call's
/// result JSON, how long it took and the command's audit record.
fn run(mechanism: Mechanism, mode: &str, marker: &str) -> (Value, Duration, Value) {
    let (dir, policy) = workdir();
    let audit = dir.path().join("audit.jsonl");
    let args = json!({"command": "escape", "args": [mode, marker]}).to_string();
    let mut command = match mechanism {
        Mechanism::NamespaceUnprivileged => {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(env!("CARGO_BIN_EXE_sanctum"));
            command
        }
        _ => Command::new(env!("CARGO_BIN_EXE_sanctum")),
    };
    command
        .arg("call")
        .arg(plugin_file("probe.wasm"))
        .args(["run", "--args", &args, "--call-timeout-ms", "20000", "--policy"])
        .arg(&policy)
        .arg("--audit")
        .arg(&audit)
        .env("HOME", dir.path())
        .env(
            "SANCTUM_CACHE_DIR",
            match mechanism {
                // The shared cache is this user's; the other user compiles for itself.
                Mechanism::NamespaceUnprivileged => "off".into(),
                _ => crate::support::shared_compile_cache(),
            },
        )
        .env(
            "SANCTUM_PROCESS_CONTAINMENT",
            if matches!(mechanism, Mechanism::Subreaper) { "subreaper" } else { "auto" },
        );
    let started = Instant::now();
    let output = command.output().expect("run sanctum call");
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{mechanism:?} {mode}: {stderr}");
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON result");
    let text = result["content"][0]["text"].as_str().expect("text");
    let record = std::fs::read_to_string(&audit)
        .expect("audit")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["kind"] == "command")
        .expect("the run is audited");
    (serde_json::from_str(text).expect("command output"), elapsed, record)
}

fn unprivileged_user_available() -> bool {
    Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success())
        && Path::new(env!("CARGO_BIN_EXE_sanctum")).metadata().is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

#[test]
fn escaping_descendants_are_killed_when_the_run_ends_under_every_mechanism() {
    let mut mechanisms = vec![Mechanism::Namespace, Mechanism::Subreaper];
    if unprivileged_user_available() {
        mechanisms.push(Mechanism::NamespaceUnprivileged);
    } else {
        eprintln!("setpriv or a world-executable binary missing: the unprivileged run is skipped");
    }
    for (m, mechanism) in mechanisms.into_iter().enumerate() {
        for (c, (mode, ended)) in
            [("setsid-exit", "exited"), ("double-fork", "exited"), ("respawn", "exited"), ("setsid-hang", "timeout")]
                .into_iter()
                .enumerate()
        {
            let marker = format!("47.{m}{c}1");
            let (output, elapsed, record) = run(mechanism, mode, &marker);
            let case = format!("{mechanism:?} {mode}");
            assert!(!running(&marker), "{case}: a descendant outlived the run");
            // The pipe a descendant held open does not hold the run: it ends at once, or at the
            // command's own limit, never at the call's 20 s.
            let run_ms = record["duration_ms"].as_f64().expect("duration");
            assert!(run_ms < (COMMAND_TIMEOUT_MS + 2000) as f64, "{case}: the run took {run_ms} ms");
            assert!(elapsed < Duration::from_secs(15), "{case}: the call took {elapsed:?}");
            assert_eq!(record["ended"], ended, "{case}: {record}");
            assert!(record["descendants_killed"].as_u64().is_some_and(|n| n >= 1), "{case}: {record}");
            assert_eq!(output["stdout"], "started\n", "{case}: {output}");
            if ended == "exited" {
                assert_eq!(record["status"], 0, "{case}: {record}");
            } else {
                assert_eq!(output["timed_out"], true, "{case}: {output}");
            }
        }
    }
}

#[tokio::test]
async fn a_cancelled_run_takes_its_escaped_descendants_with_it() {
    let (dir, policy) = workdir();
    let server = TestServer::start_with(plugins_dir(&["probe.wasm"], &[]), |args| {
        args.source.policy = Some(policy);
        args.audit = dir.path().join("audit.jsonl").display().to_string();
    })
    .await;
    let marker = "47.991";
    let cancel = tokio_util::sync::CancellationToken::new();
    let context = CallContext { cancel: cancel.clone(), ..CallContext::default() };
    let Value::Object(args) = json!({"command": "escape", "args": ["setsid-hang", marker]}) else { unreachable!() };
    let registry = std::sync::Arc::clone(&server.app_registry);
    let call = tokio::spawn(async move { registry.call("probe__run", Some(args), context).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !running(marker) {
        assert!(Instant::now() < deadline, "the escaped descendant never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    let outcome = call.await.expect("task");
    assert!(matches!(outcome, Err(CallError::Failed(_))), "{outcome:?}");
    assert!(!running(marker), "the descendant outlived the cancelled run");
    let records = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("audit");
    let record: Value = records
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|r: &Value| r["kind"] == "command")
        .expect("the run is audited");
    assert!(matches!(record["ended"].as_str(), Some("cancelled")), "{record}");
}
