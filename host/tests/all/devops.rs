//! The DevOps plugin end to end over MCP: a real rmcp client, the real `devops.wasm`, a real
//! deploy program (`tests/fixtures/fake-deploy.sh`, which records its argv and fails or hangs
//! on demand) run through a command grant, and a real health endpoint on 127.0.0.1 reached
//! through an HTTP grant.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use rmcp::ServiceExt;
use rmcp::model::{CallToolResult, NumberOrString, ProgressToken, RequestMetaObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::{Client, Recorder, TestServer, call, no_args, plugins_dir, repo_root, text};

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

async fn start() -> Ops {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["state", "out/apps"] {
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
env = {{ PATH = "/usr/bin:/bin", RECORD = "{out}/record.log", APPS_DIR = "{out}/apps" }}
timeout_ms = 1500
writable = ["{out}"]

[[plugins.devops.http]]
url = "http://127.0.0.1:{port}"
allow_ranges = ["127.0.0.0/8"]
"#,
        state = dir.path().join("state").display(),
        out = out.display(),
        script = repo_root().join("tests/fixtures/fake-deploy.sh").display(),
    );
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).expect("write policy");
    let server = TestServer::start_with(plugins_dir(&["devops.wasm"], &[]), |args| {
        args.source.policy = Some(policy_path);
    })
    .await;
    assert!(server.load_errors.is_empty(), "{:?}", server.load_errors);
    Ops { server, dir }
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

#[tokio::test]
async fn deploy_fail_hang_rollback_status_and_history_over_mcp() {
    let ops = start().await;
    let (client, recorder) = connect_as(&ops.server, "ops-agent-1").await;

    let apps = client.call_tool(no_args("devops__list_apps")).await.expect("list_apps");
    let listed = structured(&apps)["apps"].as_array().expect("apps").clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["name"], "web");
    assert_eq!(listed[1]["environments"][0], json!({"name": "staging", "current_version": null}));

    // A deploy, with progress requested.
    let mut request = call("devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.0.0"}));
    request.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::Number(7))));
    let first = client.call_tool(request).await.expect("deploy");
    assert!(!failed(&first), "{}", text(&first));
    assert!(text(&first).contains("deploy #1 of web v1.0.0 to staging succeeded"), "{}", text(&first));
    assert!(text(&first).contains("health check passed: HTTP 200 ok v1.0.0"), "{}", text(&first));
    let record = &structured(&first)["deployment"];
    assert_eq!(record["agent"], "ops-agent-1", "the client's X-Agent-Id is recorded");
    assert_eq!(record["outcome"], "succeeded");
    assert!(record["output_tail"].as_str().is_some_and(|t| t.ends_with("deployed web v1.0.0 to staging")));
    let deadline = Instant::now() + Duration::from_secs(5);
    while recorder.progress.lock().expect("lock").len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let steps: Vec<f64> = recorder.progress.lock().expect("lock").iter().map(|p| p.progress).collect();
    assert_eq!(steps, [0.0, 1.0, 2.0, 3.0], "progress streams through the deploy");

    let second =
        tool(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.1.0"})).await;
    assert!(!failed(&second), "{}", text(&second));

    // A failing deploy is an error, recorded, and leaves the current version alone.
    let broken =
        tool(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.2.0-fail"}))
            .await;
    assert!(failed(&broken));
    let message = text(&broken);
    assert!(message.contains("failed (exit status 3)") && message.contains("crash-looping"), "{message}");
    assert!(message.contains("recorded current version is unchanged"), "{message}");

    // A hanging deploy is stopped at the grant's timeout and recorded as such.
    let started = Instant::now();
    let hung =
        tool(&client, "devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1.3.0-hang"}))
            .await;
    assert!(failed(&hung) && text(&hung).contains("timed out"), "{}", text(&hung));
    assert!(started.elapsed() < Duration::from_secs(10), "stopped by the 1.5 s grant timeout");

    let status = tool(&client, "devops__status", json!({"app": "web", "environment": "staging"})).await;
    assert!(!failed(&status), "{}", text(&status));
    let report = structured(&status);
    assert_eq!(report["current_version"], "v1.1.0");
    assert_eq!(report["last_deployment"]["outcome"], "timed_out");
    assert_eq!(report["health"]["healthy"], true);
    assert_eq!(report["health"]["detail"], "ok v1.1.0", "the live endpoint, not the history");

    // Rollback without a target goes to the previous successful version.
    let rollback = tool(&client, "devops__rollback", json!({"app": "web", "environment": "staging"})).await;
    assert!(!failed(&rollback), "{}", text(&rollback));
    assert!(text(&rollback).starts_with("rollback #5 of web v1.0.0 to staging succeeded"), "{}", text(&rollback));
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
    assert!(records.iter().all(|r| r["agent"] == "ops-agent-1"));
    let on_disk: Value = serde_json::from_slice(&std::fs::read(ops.state_file()).expect("state")).expect("valid JSON");
    assert_eq!(on_disk["deployments"].as_array().map(Vec::len), Some(5));
    assert!(!ops.state_file().with_extension("json.tmp").exists(), "no temporary file left behind");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn unknown_targets_and_hostile_versions_are_refused_before_anything_runs() {
    let ops = start().await;
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
    assert!(ops.deploy_runs().is_empty(), "nothing ran");
    assert!(!ops.state_file().exists(), "nothing was recorded");

    // A configured app whose command the operator never granted: recorded as a failed attempt.
    let denied =
        tool(&client, "devops__deploy", json!({"app": "api", "environment": "staging", "version": "v2"})).await;
    assert!(failed(&denied) && text(&denied).contains("not granted"), "{}", text(&denied));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_damaged_history_is_reported_and_never_overwritten() {
    let ops = start().await;
    let (client, _) = connect_as(&ops.server, "ops-agent-3").await;
    let damaged = b"{\"deployments\": [{\"id\": 1,";
    std::fs::write(ops.state_file(), damaged).expect("write");
    for (name, args) in [
        ("devops__deploy", json!({"app": "web", "environment": "staging", "version": "v1"})),
        ("devops__status", json!({"app": "web", "environment": "staging"})),
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
