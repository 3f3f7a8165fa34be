//! Operations: the config file and its precedence, `/readyz`, `/metrics`, structured logs with
//! request ids (and no argument values at info), and graceful shutdown of the real binary.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::ServiceExt as _;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::running::Running;
use crate::support::{Recorder, TestServer, call, connect, no_args, plugins_dir, text};

const SANCTUM: &str = env!("CARGO_BIN_EXE_sanctum");

/// Variables that would change what the binary under test does.
const SANCTUM_VARS: [&str; 8] = [
    "SANCTUM_CONFIG",
    "SANCTUM_PORT",
    "SANCTUM_HOST",
    "SANCTUM_PLUGINS_DIR",
    "SANCTUM_LOG",
    "SANCTUM_LOG_FORMAT",
    "SANCTUM_AUDIT",
    "SANCTUM_SHUTDOWN_GRACE_MS",
];

fn sanctum(args: &[&str]) -> Command {
    let mut command = Command::new(SANCTUM);
    command.args(args).stderr(Stdio::piped());
    for var in SANCTUM_VARS {
        command.env_remove(var);
    }
    // Tests run in parallel: none may share the default admin socket or jobs directory.
    command.env("SANCTUM_ADMIN_SOCKET", "off").env("SANCTUM_JOBS_DIR", "off");
    command
}

async fn client_for(url: String) -> rmcp::service::RunningService<rmcp::RoleClient, Recorder> {
    let transport = StreamableHttpClientTransport::from_uri(url);
    Recorder::default().serve(transport).await.expect("handshake over /mcp")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[tokio::test]
async fn check_refuses_a_bad_config_file_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("[server]\nprot = 8000\n", r#"unknown key "server.prot""#),
        ("[logs]\nformat = \"json\"\n", r#"unknown key "logs""#),
        ("[server]\nport = \"eighty\"\n", r#"invalid value for "server.port""#),
        ("[limits]\nmemory_limit_mib = 100000\n", r#"invalid value for "limits.memory_limit_mib""#),
        ("[log]\nformat = \"xml\"\n", r#"invalid value for "log.format""#),
        ("[server\n", "not valid TOML"),
    ];
    for (text, expected) in cases {
        let path = write(dir.path(), "bad.toml", text);
        let output = sanctum(&["check", "--config", &path]).output().await.expect("run check");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text:?} was accepted");
        assert!(stderr.contains(&format!("config file {path}: {expected}")), "{text:?}: {stderr}");
    }
    // The environment names the file too.
    let path = write(dir.path(), "bad.toml", "[server]\nprot = 1\n");
    let output = sanctum(&["check"]).env("SANCTUM_CONFIG", &path).output().await.expect("run check");
    assert!(String::from_utf8_lossy(&output.stderr).contains(r#"unknown key "server.prot""#));
}

#[tokio::test]
async fn check_accepts_the_example_config_file() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let example = crate::support::repo_root().join("docs/sanctum.example.toml");
    let output =
        sanctum(&["check", "--config", &example.display().to_string(), "--plugins", &dir.path().display().to_string()])
            .output()
            .await
            .expect("run check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("0 problem(s)"), "{stdout}");
}

#[tokio::test]
async fn flags_override_the_environment_which_overrides_the_file() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    // A relative plugins directory is relative to the file: "." is the plugins directory itself.
    let config = write(
        dir.path(),
        "sanctum.toml",
        &format!("[server]\nport = {file_port}\n[plugins]\ndir = \".\"\n[audit]\ntarget = \"off\"\n"),
    );

    let from_file = Running::start(sanctum(&["serve", "--config", &config])).await;
    assert_eq!(from_file.addr.port(), file_port);
    let health: Value = reqwest::get(from_file.url("/healthz")).await.expect("healthz").json().await.expect("json");
    assert_eq!(health["plugins"][0]["name"], "echo", "plugins.dir resolved against the file: {health}");
    drop(from_file);

    let mut command = sanctum(&["serve", "--config", &config]);
    command.env("SANCTUM_PORT", env_port.to_string());
    let from_env = Running::start(command).await;
    assert_eq!(from_env.addr.port(), env_port);
    drop(from_env);

    let mut command = sanctum(&["serve", "--config", &config, "--port", &flag_port.to_string()]);
    command.env("SANCTUM_PORT", env_port.to_string());
    let from_flag = Running::start(command).await;
    assert_eq!(from_flag.addr.port(), flag_port);
}

#[tokio::test]
async fn readyz_is_ready_while_serving_and_not_while_draining_and_healthz_is_liveness() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let args = sanctum::config::ServeArgs::for_plugins(dir.path());
    let app = sanctum::app::build(&args).await.expect("app builds");
    assert!(!app.readiness.is_ready(), "not ready before it serves");
    let (registry, readiness) = (std::sync::Arc::clone(&app.registry), app.readiness.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(sanctum::app::run(listener, app, stop.clone().cancelled_owned()));
    let get = |path: &str| reqwest::get(format!("http://{addr}{path}"));
    assert_eq!(get("/readyz").await.expect("readyz").status(), 200);
    assert_eq!(get("/healthz").await.expect("healthz").status(), 200);

    // A call in flight holds the drain open: meanwhile the server is not ready and takes no
    // new connection, and the call still finishes.
    let call = tokio::spawn({
        let registry = std::sync::Arc::clone(&registry);
        let args = json!({"ms": 1500}).as_object().cloned().unwrap_or_default();
        async move { registry.call("echo__wait", Some(args), sanctum::model::CallContext::default()).await }
    });
    while registry.calls_in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!readiness.is_ready(), "draining");
    assert!(get("/readyz").await.is_err(), "new connections are refused while draining");
    assert!(call.await.expect("call task").is_ok(), "the call in flight finished within the grace period");
    served.await.expect("run task").expect("run returns once drained");
}

#[tokio::test]
async fn metrics_count_calls_outcomes_traps_and_denials() {
    let server = TestServer::start(&["echo.wasm", "hostile.wasm", "probe.wasm"]).await;
    let (client, _) = connect(&server, crate::support::Path_::StreamableHandshake).await;
    let ok = client.call_tool(call("echo__echo", json!({"text": "hi"}))).await.expect("result");
    assert_ne!(ok.is_error, Some(true));
    client.call_tool(call("echo__echo", json!({"text": "hi"}))).await.expect("result");
    let failed = client.call_tool(call("echo__fail", json!({"reason": "disk full"}))).await.expect("result");
    assert_eq!(failed.is_error, Some(true));
    let trapped = client.call_tool(no_args("hostile__trap")).await.expect("result");
    assert_eq!(trapped.is_error, Some(true));
    let invalid = client.call_tool(call("echo__echo", json!({"nope": 1}))).await.expect("result");
    assert_eq!(invalid.is_error, Some(true));
    let denied = client.call_tool(call("probe__run", json!({"command": "echo", "args": []}))).await.expect("result");
    assert_eq!(denied.is_error, Some(true), "{}", text(&denied));

    let response = reqwest::get(server.url("/metrics")).await.expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("application/openmetrics-text"));
    let body = response.text().await.expect("text");
    for expected in [
        r#"sanctum_calls_total{tool="echo__echo",outcome="ok"} 2"#,
        r#"sanctum_calls_total{tool="echo__fail",outcome="tool_error"} 1"#,
        r#"sanctum_calls_total{tool="hostile__trap",outcome="crashed"} 1"#,
        r#"sanctum_calls_total{tool="echo__echo",outcome="invalid_arguments"} 1"#,
        r#"sanctum_sandbox_failures_total{kind="crashed"} 1"#,
        r#"sanctum_capability_denials_total{kind="command"} 1"#,
        r#"sanctum_calls_total{tool="probe__run",outcome="tool_error"} 1"#,
        r#"sanctum_call_duration_seconds_count{tool="echo__echo"} 3"#,
        "# TYPE sanctum_call_duration_seconds histogram",
        "sanctum_queue_depth 0",
        "sanctum_calls_in_flight 0",
        r#"sanctum_open_sessions{transport="streamable_http"} 1"#,
        r#"sanctum_open_sessions{transport="sse"} 0"#,
        // Six calls reached the handler and were queued and validated on the worker; the invalid
        // one stopped at validation, the five others went through every phase (a trap still
        // instantiated and ran the guest).
        r#"sanctum_call_phase_seconds_count{phase="handler"} 6"#,
        r#"sanctum_call_phase_seconds_count{phase="queue"} 6"#,
        r#"sanctum_call_phase_seconds_count{phase="validate"} 6"#,
        r#"sanctum_call_phase_seconds_count{phase="instantiate"} 5"#,
        r#"sanctum_call_phase_seconds_count{phase="guest"} 5"#,
        r#"sanctum_call_phase_seconds_count{phase="finish"} 5"#,
    ] {
        assert!(body.contains(expected), "missing {expected:?} in\n{body}");
    }
    // Each of those five sandboxes is torn down after its answer has gone, so the last one may
    // still be on its way; the invalid call never had one.
    let torn_down = r#"sanctum_call_phase_seconds_count{phase="teardown"} 5"#;
    crate::reload::until("every sandbox is torn down", async || {
        let body = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
        assert!(!body.contains(r#"{phase="teardown"} 6"#), "more teardowns than sandboxes:\n{body}");
        body.contains(torn_down)
    })
    .await;
    client.cancel().await.expect("close client");
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_info_never_shows_argument_values() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let plugins = dir.path().display().to_string();
    let server =
        Running::start(sanctum(&["serve", "--port", "0", "--plugins", &plugins, "--log-format", "json"])).await;

    let response = reqwest::Client::new()
        .get(server.url("/healthz"))
        .header("x-request-id", "ops-test-4711")
        .send()
        .await
        .expect("healthz");
    assert_eq!(response.headers()["x-request-id"], "ops-test-4711", "the client's id is echoed");
    let generated = reqwest::get(server.url("/readyz")).await.expect("readyz");
    assert_eq!(generated.status(), 200, "ready once listening");
    let generated_id = generated.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(generated_id.len(), 36, "a UUID: {generated_id}");

    const CANARY: &str = "canary-argument-value-9f3c1e";
    let client = client_for(server.url("/mcp")).await;
    let result = client.call_tool(call("echo__echo", json!({"text": CANARY}))).await.expect("result");
    assert_eq!(text(&result), CANARY, "the call itself sees the value");
    client.cancel().await.expect("close client");

    server.terminate();
    let (status, stderr) = server.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(!stderr.contains(CANARY), "an argument value reached the info log:\n{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let tagged = |id: &str| lines.iter().any(|line| line["span"]["request_id"] == id);
    assert!(tagged("ops-test-4711"), "no line carries the client's request id:\n{stderr}");
    assert!(tagged(&generated_id), "no line carries the generated request id:\n{stderr}");
}

#[tokio::test]
async fn fresh_sessions_add_no_log_lines_at_info() {
    // Letta opens a session per operation: at the default level a session that lists the tools
    // must not log (rmcp would log four lines each).
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let plugins = dir.path().display().to_string();
    let args = ["serve", "--port", "0", "--plugins", &plugins, "--log-format", "json", "--audit", "off"];
    let server = Running::start(sanctum(&args)).await;
    const SESSIONS: usize = 10;
    for _ in 0..SESSIONS {
        let client = client_for(server.url("/mcp")).await;
        assert!(!client.list_all_tools().await.expect("tools/list").is_empty());
        client.cancel().await.expect("close /mcp client");
        let sse = Recorder::default()
            .serve(crate::support::sse_client::connect(&server.url("/sse")).await)
            .await
            .expect("handshake over /sse");
        assert!(!sse.list_all_tools().await.expect("tools/list").is_empty());
        sse.cancel().await.expect("close SSE client");
    }
    server.terminate();
    let (status, stderr) = server.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}\n{stderr}");
    let lines: Vec<Value> = stderr.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let from_rmcp: Vec<&Value> =
        lines.iter().filter(|l| l["target"].as_str().is_some_and(|t| t.starts_with("rmcp"))).collect();
    assert!(from_rmcp.is_empty(), "rmcp logged at info:\n{stderr}");
    let said = |what: &str| lines.iter().filter(|l| l["fields"]["message"].as_str() == Some(what)).count();
    assert_eq!(said("http request"), 0, "a session's requests are not logged one by one at info:\n{stderr}");
    let ended = said("session closed");
    assert!(
        (SESSIONS..=2 * SESSIONS).contains(&ended),
        "one line per session, {ended} for {}:\n{stderr}",
        2 * SESSIONS
    );
}

#[tokio::test]
async fn sigterm_lets_a_running_call_finish_refuses_new_connections_and_exits_0() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let plugins = dir.path().display().to_string();
    let server = Running::start(sanctum(&["serve", "--port", "0", "--plugins", &plugins, "--audit", "off"])).await;
    let client = client_for(server.url("/mcp")).await;
    let running = tokio::spawn(async move {
        let result = client.call_tool(call("echo__wait", json!({"ms": 1500}))).await;
        let _ = client.cancel().await;
        result
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let signalled = Instant::now();
    server.terminate();

    // New connections are refused from the signal on (allow the signal a moment to land).
    let addr = server.addr;
    let refused = async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(1), refused).await.expect("a new connection is refused after SIGTERM");

    let result = running.await.expect("call task").expect("the running call completes");
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    assert_eq!(text(&result), "waited 1500 ms");
    let (status, stderr) = server.exit_within(Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "exited within the grace");
}

#[tokio::test]
async fn sigterm_cancels_a_call_longer_than_the_grace_and_still_exits_0() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let plugins = dir.path().display().to_string();
    let args = ["serve", "--port", "0", "--plugins", &plugins, "--audit", "off", "--shutdown-grace-ms", "300"];
    let server = Running::start(sanctum(&args)).await;
    let client = client_for(server.url("/mcp")).await;
    let running = tokio::spawn(async move { client.call_tool(call("echo__wait", json!({"ms": 20_000}))).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let signalled = Instant::now();
    server.terminate();

    let (status, stderr) = server.exit_within(Duration::from_secs(8)).await;
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(5), "exited promptly: {:?}", signalled.elapsed());
    assert!(stderr.contains("cancelling the calls still running"), "{stderr}");
    // The call did not succeed: it was cancelled (isError) or its connection closed.
    match tokio::time::timeout(Duration::from_secs(5), running).await {
        Ok(Ok(Ok(result))) => assert_eq!(result.is_error, Some(true), "{}", text(&result)),
        Ok(Ok(Err(_))) | Err(_) => {}
        Ok(Err(panic)) => panic!("call task panicked: {panic}"),
    }
}

#[tokio::test]
async fn the_config_files_auth_section_protects_metrics_but_not_readiness() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    const TOKEN: &str = "operations-test-token-0123456789";
    let config = write(
        dir.path(),
        "sanctum.toml",
        &format!(
            "[plugins]\ndir = \".\"\n[audit]\ntarget = \"off\"\n[[auth.token]]\nprincipal = \"ops\"\nvalue = \"{TOKEN}\"\n"
        ),
    );
    let server = Running::start(sanctum(&["serve", "--port", "0", "--config", &config])).await;
    let http = reqwest::Client::new();
    let anonymous = http.get(server.url("/metrics")).send().await.expect("metrics");
    assert_eq!(anonymous.status(), 401, "/metrics sits behind the auth middleware");
    let authorized = http.get(server.url("/metrics")).bearer_auth(TOKEN).send().await.expect("metrics");
    assert_eq!(authorized.status(), 200);
    assert!(authorized.text().await.expect("text").contains("sanctum_queue_depth 0"));
    assert_eq!(http.get(server.url("/readyz")).send().await.expect("readyz").status(), 200, "probes need no token");
}
