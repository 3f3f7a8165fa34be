//! The DevOps plugin end to end over MCP: a real rmcp client, the real `devops.wasm`, a real
//! deploy program (`tests/fixtures/fake-deploy.sh`, which records its argv and is slow, fails
//! or hangs on demand) run as a host job through a command grant, and a real health endpoint on
//! 127.0.0.1 reached through an HTTP grant. A deploy returns at once; the tests follow it with
//! `devops__status` as an agent would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use rmcp::ServiceExt;
use rmcp::model::CallToolResult;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::{Client, Recorder, TestServer, call, no_args, plugins_dir, repo_root, text};

/// Steps of a `slow` deploy, 0.2 s each: far longer than any test waits for one.
const SLOW_STEPS: u32 = 100;
/// How long a test waits for a deploy to end before it fails.
const SETTLE: Duration = Duration::from_secs(30);

struct Ops {
    server: TestServer,
    dir: tempfile::TempDir,
}

impl Ops {
    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state/web.staging.json")
    }

    /// The argv lines the deploy program recorded, one per run.
    fn deploy_runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("out/record.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stop this server and start another on the same policy, state and jobs directory, as an
    /// operator's restart does.
    async fn restart(self) -> Self {
        let Ops { server, dir } = self;
        server.stop();
        drop(server);
        // The stopping server holds the jobs directory's lock until it has recorded its jobs.
        let lock = std::fs::File::open(dir.path().join("jobs/.lock")).expect("the jobs directory's lock file");
        let deadline = Instant::now() + SETTLE;
        while lock.try_lock().is_err() {
            assert!(Instant::now() < deadline, "the stopped server still holds its jobs directory");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        lock.unlock().expect("unlock");
        Ops { server: serve(dir.path()).await, dir }
    }
}

/// A health endpoint serving the version the fake deploy wrote, 503 before the first deploy.
async fn start_health(apps_dir: PathBuf) -> u16 {
    let app = Router::new().route(
        "/health/{environment}",
        get(move |UrlPath(environment): UrlPath<String>| {
            let file = apps_dir.join(format!("web.{environment}.version"));
            async move {
                match std::fs::read_to_string(file) {
                    Ok(version) => (StatusCode::OK, format!("ok {version}")),
                    Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "down".to_owned()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// Serve devops (and echo) with a policy whose deploy jobs are stopped after `job_timeout_ms`.
async fn start(job_timeout_ms: u64) -> Ops {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["state", "out/apps", "jobs"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    let out = dir.path().join("out");
    let port = start_health(out.join("apps")).await;
    let policy = format!(
        r#"
[plugins.devops]
call_timeout_ms = 20000
directories = [{{ host = "{state}", guest = "/state", writable = true }}]

[plugins.devops.config.apps.web]
description = "The public website"
environments = ["staging", "production"]
deploy_command = "deploy-web"
health_url = "http://127.0.0.1:{port}/health/{{environment}}"

[plugins.devops.config.apps.api]
environments = ["staging"]
deploy_command = "deploy-api"   # configured, but the operator granted no such command

[plugins.devops.commands.deploy-web]
program = "/bin/sh"
args = ["{script}", "web"]
allowed_args = ["staging|production", "[A-Za-z0-9][A-Za-z0-9._+-]{{0,63}}"]
env = {{ PATH = "/usr/bin:/bin", RECORD = "{out}/record.log", APPS_DIR = "{out}/apps", DEPLOY_STEPS = "{SLOW_STEPS}" }}
timeout_ms = 1500
max_jobs = 1
job_timeout_ms = {job_timeout_ms}
job_output_kib = 64
writable = ["{out}"]

[[plugins.devops.http]]
url = "http://127.0.0.1:{port}"
allow_ranges = ["127.0.0.0/8"]
"#,
        state = dir.path().join("state").display(),
        out = out.display(),
        script = repo_root().join("tests/fixtures/fake-deploy.sh").display(),
    );
    std::fs::write(dir.path().join("policy.toml"), policy).expect("write policy");
    let server = serve(dir.path()).await;
    Ops { server, dir }
}

/// A server on `dir`'s policy, keeping its jobs in `dir/jobs` so a restart finds them.
async fn serve(dir: &Path) -> TestServer {
    let (policy, jobs) = (dir.join("policy.toml"), dir.join("jobs"));
    let server = TestServer::start_with(plugins_dir(&["devops.wasm", "echo.wasm"], &[]), |args| {
        args.source.policy = Some(policy);
        args.jobs_dir = Some(jobs.display().to_string());
    })
    .await;
    assert!(server.load_errors.is_empty(), "{:?}", server.load_errors);
    server
}

/// A Streamable HTTP client that identifies its agent, as Letta does.
async fn connect_as(server: &TestServer, agent: &str) -> (Client, Recorder) {
    let headers = HashMap::from([("x-agent-id".parse().expect("name"), agent.parse().expect("value"))]);
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).custom_headers(headers);
    let recorder = Recorder::default();
    let client = recorder.clone().serve(StreamableHttpClientTransport::from_config(config)).await.expect("handshake");
    (client, recorder)
}

async fn tool(client: &Client, name: &str, args: Value) -> CallToolResult {
    client.call_tool(call(name, args)).await.expect("the call gets a result")
}

fn failed(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

fn structured(result: &CallToolResult) -> &Value {
    result.structured_content.as_ref().expect("structured content")
}

fn staging() -> Value {
    json!({"app": "web", "environment": "staging"})
}

/// Start a deploy (or rollback) of web to staging; it must return at once with a running job.
async fn start_deploy(client: &Client, tool_name: &str, args: Value) -> Value {
    let result = tool(client, tool_name, args).await;
    assert!(!failed(&result), "{}", text(&result));
    let record = structured(&result)["deployment"].clone();
    assert_eq!(record["outcome"], "running", "{}", text(&result));
    let job = record["job_id"].as_str().expect("a job id");
    assert!(text(&result).contains(&format!("started as job {job}; call devops__status")), "{}", text(&result));
    record
}

/// Call `devops__status` until `done` holds for its structured report, for at most `SETTLE`.
async fn status_until(client: &Client, what: &str, done: impl Fn(&Value) -> bool) -> CallToolResult {
    let deadline = Instant::now() + SETTLE;
    loop {
        let status = tool(client, "devops__status", staging()).await;
        assert!(!failed(&status), "{}", text(&status));
        if done(structured(&status)) {
            return status;
        }
        assert!(Instant::now() < deadline, "waited {SETTLE:?} for {what}; last status: {}", text(&status));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follow the running deploy until it has an outcome; returns the status that shows it.
async fn settled(client: &Client) -> CallToolResult {
    status_until(client, "the deploy to end", |r| r["last_deployment"]["outcome"] != "running").await
}

#[tokio::test]
async fn deploy_fail_hang_rollback_status_and_history_over_mcp() {
    let ops = start(1500).await;
    let (client, _) = connect_as(&ops.server, "ops-agent-1").await;

    let apps = client.call_tool(no_args("devops__list_apps")).await.expect("list_apps");
    let listed = structured(&apps)["apps"].as_array().expect("apps").clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["name"], "web");
    assert_eq!(listed[1]["environments"][0], json!({"name": "staging", "current_version": null}));

    let first =
        start_deploy(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.0.0"}))
            .await;
    assert_eq!(first["agent"], "ops-agent-1", "the client's X-Agent-Id is recorded");
    assert_eq!(first["id"], 1);
    let done = settled(&client).await;
    let report = structured(&done);
    assert_eq!(report["last_deployment"]["outcome"], "succeeded");
    assert_eq!(report["last_deployment"]["job_id"], first["job_id"]);
    assert!(report["last_deployment"]["finished_at"].is_string());
    let tail = report["last_deployment"]["output_tail"].as_str().unwrap_or_default();
    assert!(tail.ends_with("deployed web v1.0.0 to staging"), "{tail}");
    assert_eq!(report["current_version"], "v1.0.0");
    assert_eq!(report["health"]["detail"], "ok v1.0.0", "status checks health after the deploy");
    assert!(text(&done).contains("last deployment #1 (v1.0.0) succeeded at"), "{}", text(&done));

    start_deploy(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.1.0"})).await;
    assert_eq!(structured(&settled(&client).await)["current_version"], "v1.1.0");

    // A failing deploy is recorded as failed with its output, and leaves the current version alone.
    start_deploy(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.2.0-fail"}))
        .await;
    let broken = settled(&client).await;
    let message = text(&broken);
    assert!(
        message.contains("#3 (v1.2.0-fail) failed (exit status 3)") && message.contains("crash-looping"),
        "{message}"
    );
    assert_eq!(structured(&broken)["current_version"], "v1.1.0");
    assert_eq!(structured(&broken)["last_deployment"]["exit_status"], 3);

    // A hanging deploy is stopped at the grant's job time limit and recorded as such.
    start_deploy(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.3.0-hang"}))
        .await;
    let hung = settled(&client).await;
    assert!(text(&hung).contains("timed out and was stopped"), "{}", text(&hung));
    let report = structured(&hung);
    assert_eq!(report["current_version"], "v1.1.0");
    assert_eq!(report["last_deployment"]["outcome"], "timed_out");
    assert_eq!(report["health"]["healthy"], true);
    assert_eq!(report["health"]["detail"], "ok v1.1.0", "the live endpoint, not the history");

    // Rollback without a target goes to the previous successful version.
    let rollback = start_deploy(&client, "devops__rollback", staging()).await;
    assert_eq!(
        (&rollback["id"], &rollback["action"], &rollback["version"]),
        (&json!(5), &json!("rollback"), &json!("v1.0.0"))
    );
    let rolled_back = settled(&client).await;
    assert_eq!(structured(&rolled_back)["last_deployment"]["outcome"], "succeeded");
    assert_eq!(structured(&rolled_back)["current_version"], "v1.0.0");
    // ...and only to versions that once succeeded here.
    let refused =
        tool(&client, "devops__rollback", json!({"app": "web", "environment": "staging", "to_version": "v1.2.0-fail"}))
            .await;
    assert!(failed(&refused) && text(&refused).contains("never deployed successfully"), "{}", text(&refused));

    assert_eq!(
        ops.deploy_runs(),
        [
            "web staging v1.0.0",
            "web staging v1.1.0",
            "web staging v1.2.0-fail",
            "web staging v1.3.0-hang",
            "web staging v1.0.0"
        ],
        "the deploy program got exactly these argv, one run per deploy"
    );

    let history = tool(&client, "devops__history", json!({"app": "web", "environment": "staging", "limit": 10})).await;
    let records = structured(&history)["deployments"].as_array().expect("deployments").clone();
    let summary: Vec<(u64, &str, &str, &str)> = records
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or("");
            (r["id"].as_u64().unwrap_or(0), field("action"), field("version"), field("outcome"))
        })
        .collect();
    assert_eq!(
        summary,
        [
            (5, "rollback", "v1.0.0", "succeeded"),
            (4, "deploy", "v1.3.0-hang", "timed_out"),
            (3, "deploy", "v1.2.0-fail", "failed"),
            (2, "deploy", "v1.1.0", "succeeded"),
            (1, "deploy", "v1.0.0", "succeeded"),
        ]
    );
    assert!(records.iter().all(|r| r["agent"] == "ops-agent-1" && r["job_id"].is_string()));
    let on_disk: Value = serde_json::from_slice(&std::fs::read(ops.state_file()).expect("state")).expect("valid JSON");
    assert_eq!(on_disk["deployments"].as_array().map(Vec::len), Some(5));
    assert_eq!(on_disk["deployments"][3]["outcome"], "timed_out", "the outcomes are saved, not only shown");
    assert!(!ops.state_file().with_extension("json.tmp").exists(), "no temporary file left behind");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_slow_deploy_is_followed_runs_alone_and_is_cancelled() {
    let ops = start(60_000).await;
    let (client, _) = connect_as(&ops.server, "ops-agent-5").await;
    let slow = start_deploy(
        &client,
        "devops__deploy",
        json!({"app": "web", "environment": "staging", "version": "v2.0.0-slow"}),
    )
    .await;

    // While it runs, status shows how long it has run and the lines printed so far.
    let running = status_until(&client, "two steps of output", |r| {
        r["in_progress"]["last_output"].as_array().is_some_and(|lines| lines.iter().any(|l| l == "step 2/100"))
    })
    .await;
    let report = structured(&running);
    assert_eq!(report["last_deployment"]["outcome"], "running");
    assert_eq!(report["in_progress"]["job_id"], slow["job_id"]);
    assert!(report["in_progress"]["elapsed_ms"].as_u64().is_some_and(|ms| ms > 0), "{report}");
    let shown = text(&running);
    assert!(shown.contains("deploy #1 of web v2.0.0-slow to staging in progress for "), "{shown}");
    assert!(shown.contains("\nlast output:\n") && shown.contains("  step 1/100"), "{shown}");

    // Other calls are served while the deploy runs: it holds no worker.
    let echo = tool(&client, "echo__echo", json!({"text": "still here"})).await;
    assert!(!failed(&echo) && text(&echo).contains("still here"), "{}", text(&echo));
    let after_echo = tool(&client, "devops__status", staging()).await;
    assert_eq!(structured(&after_echo)["in_progress"]["job_id"], slow["job_id"], "the deploy outlived the echo call");

    // A second deploy of the same environment is refused by the plugin; one to another
    // environment through the same command by the grant's max_jobs.
    let second =
        tool(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v2.1.0"})).await;
    assert!(failed(&second), "{}", text(&second));
    assert!(text(&second).contains("deploy #1 of web v2.0.0-slow to staging is still running"), "{}", text(&second));
    assert!(text(&second).contains("devops__cancel"), "{}", text(&second));
    let other =
        tool(&client, "devops__deploy", json!({"app": "web", "environment": "production", "version": "v2.1.0"})).await;
    assert!(failed(&other) && text(&other).contains("was not started"), "{}", text(&other));
    assert_eq!(ops.deploy_runs(), ["web staging v2.0.0-slow"], "neither refused deploy ran");

    let cancelled = tool(&client, "devops__cancel", staging()).await;
    assert!(!failed(&cancelled), "{}", text(&cancelled));
    assert!(
        text(&cancelled).starts_with("deploy #1 of web v2.0.0-slow to staging cancelled after "),
        "{}",
        text(&cancelled)
    );
    let record = &structured(&cancelled)["deployment"];
    assert_eq!(record["outcome"], "cancelled");
    let tail = record["output_tail"].as_str().unwrap_or_default();
    assert!(tail.contains("step 2/100") && tail.ends_with("stopped: cancelled]"), "{tail}");

    let history = tool(&client, "devops__history", staging()).await;
    assert_eq!(structured(&history)["deployments"][0]["outcome"], "cancelled");
    assert!(text(&history).contains("#1 deploy v2.0.0-slow cancelled at"), "{}", text(&history));
    let again = tool(&client, "devops__cancel", staging()).await;
    assert!(failed(&again), "{}", text(&again));
    assert_eq!(
        text(&again),
        "no deploy or rollback of web to staging is running; the last one, #1 (v2.0.0-slow), cancelled"
    );
    assert!(!ops.dir.path().join("out/apps/web.staging.version").exists(), "the cancelled deploy never finished");

    // With nothing running, the next deploy starts.
    start_deploy(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v2.1.0"})).await;
    assert_eq!(structured(&settled(&client).await)["current_version"], "v2.1.0");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_deploy_running_when_the_server_stops_is_recorded_as_interrupted() {
    let ops = start(60_000).await;
    let (client, _) = connect_as(&ops.server, "ops-agent-6").await;
    start_deploy(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v3-slow"}))
        .await;
    drop(client);
    let ops = ops.restart().await;
    let (client, _) = connect_as(&ops.server, "ops-agent-6").await;
    let after = settled(&client).await;
    assert_eq!(structured(&after)["last_deployment"]["outcome"], "interrupted", "{}", text(&after));
    assert!(text(&after).contains("#1 (v3-slow) interrupted (outcome unknown)"), "{}", text(&after));
    assert_eq!(structured(&after)["current_version"], Value::Null, "never counted as a success");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn unknown_targets_and_hostile_versions_are_refused_before_anything_runs() {
    let ops = start(1500).await;
    let (client, _) = connect_as(&ops.server, "ops-agent-2").await;
    let cases = [
        (
            json!({"app": "shop", "environment": "staging", "version": "v1"}),
            "unknown app `shop`; configured apps: api, web",
        ),
        (json!({"app": "web", "environment": "qa", "version": "v1"}), "has no environment `qa`"),
        (json!({"app": "web", "environment": "staging", "version": "--force"}), "is not a valid version"),
        (json!({"app": "web", "environment": "staging", "version": "v1;rm -rf /"}), "is not a valid version"),
        (json!({"app": "web", "environment": "staging"}), "version"),
    ];
    for (args, expected) in cases {
        let result = tool(&client, "devops__deploy", args.clone()).await;
        assert!(failed(&result), "{args}");
        assert!(text(&result).contains(expected), "{args}: {}", text(&result));
    }
    let cancel = tool(&client, "devops__cancel", json!({"app": "shop", "environment": "staging"})).await;
    assert!(failed(&cancel) && text(&cancel).contains("unknown app `shop`"), "{}", text(&cancel));
    assert!(ops.deploy_runs().is_empty(), "nothing ran");
    assert!(!ops.state_file().exists(), "nothing was recorded");

    // A configured app whose command the operator never granted: recorded as a failed attempt.
    let denied =
        tool(&client, "devops__deploy", json!({"app": "api", "environment": "staging", "version": "v2"})).await;
    assert!(failed(&denied) && text(&denied).contains("not granted"), "{}", text(&denied));
    assert!(text(&denied).starts_with("deploy #1 of api v2 to staging failed"), "{}", text(&denied));
    let history = tool(&client, "devops__history", json!({"app": "api", "environment": "staging"})).await;
    assert_eq!(structured(&history)["deployments"][0]["outcome"], "failed");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_damaged_history_is_reported_and_never_overwritten() {
    let ops = start(1500).await;
    let (client, _) = connect_as(&ops.server, "ops-agent-3").await;
    let damaged = b"{\"deployments\": [{\"id\": 1,";
    std::fs::write(ops.state_file(), damaged).expect("write");
    for (name, args) in [
        ("devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1"})),
        ("devops__status", staging()),
        ("devops__cancel", staging()),
    ] {
        let result = tool(&client, name, args).await;
        assert!(failed(&result) && text(&result).contains("is damaged"), "{name}: {}", text(&result));
    }
    assert_eq!(std::fs::read(ops.state_file()).expect("still there"), damaged);
    assert!(ops.deploy_runs().is_empty(), "no deploy ran on top of an unknown history");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn without_a_policy_the_plugin_has_nothing_to_deploy() {
    let server = TestServer::start(&["devops.wasm"]).await;
    let (client, _) = connect_as(&server, "ops-agent-4").await;
    let result = client.call_tool(no_args("devops__list_apps")).await.expect("result");
    assert!(failed(&result) && text(&result).contains("no applications are configured"), "{}", text(&result));
    let result =
        tool(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1"})).await;
    assert!(failed(&result), "{}", text(&result));
    client.cancel().await.expect("close");
}
