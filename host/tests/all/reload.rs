//! Plugins at run time: adding, replacing and removing a `.wasm` while the server runs, with
//! live clients on every transport hearing `notifications/tools/list_changed`; calls in flight
//! finishing on the version they started with; a broken replacement leaving the old version
//! serving and reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::{ClientConfig, Implementation, ProtocolVersion, ServerNotification, SubscriptionFilter};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use sanctum::model::CallContext;
use serde_json::json;

use crate::support::{TestServer, call, plugin_file, plugins_dir, sse_client, text};

/// Long enough for a debounced rescan and a compilation on a slow machine.
pub const RELOAD_WAIT: Duration = Duration::from_secs(20);

/// A client that counts `tools/list_changed` notifications.
#[derive(Debug, Clone, Default)]
pub struct Changes(Arc<AtomicUsize>);

impl Changes {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl ClientHandler for Changes {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(Default::default(), Implementation::new("sanctum-reload-tests", "0"))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub type CountingClient = RunningService<RoleClient, Changes>;

pub async fn streamable_session(server: &TestServer) -> (CountingClient, Changes) {
    let changes = Changes::default();
    let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
    (changes.clone().serve(transport).await.expect("handshake over /mcp"), changes)
}

pub async fn sse_session(server: &TestServer) -> (CountingClient, Changes) {
    let changes = Changes::default();
    let transport = sse_client::connect(&server.url("/sse")).await;
    (changes.clone().serve(transport).await.expect("handshake over /sse"), changes)
}

/// Poll `condition` until it holds, failing after [`RELOAD_WAIT`].
pub async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + RELOAD_WAIT;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn listed(client: &CountingClient) -> Vec<String> {
    client.list_all_tools().await.expect("tools/list").into_iter().map(|t| t.name.to_string()).collect()
}

/// Replace `path` the way a deploy does: write aside, then rename over (one event, no torn file).
pub fn install(path: &Path, bytes: &[u8]) {
    let aside = path.with_extension("partial");
    std::fs::write(&aside, bytes).expect("write");
    std::fs::rename(&aside, path).expect("rename");
}

fn watching(dir: tempfile::TempDir) -> (PathBuf, impl std::future::Future<Output = TestServer>) {
    let path = dir.path().to_owned();
    (path, TestServer::start_with(dir, |args| args.watch = true))
}

#[tokio::test]
async fn adding_replacing_and_removing_a_plugin_is_served_and_every_transport_hears_of_it() {
    let (dir, server) = watching(plugins_dir(&["echo.wasm"], &[]));
    let server = server.await;
    let (streamable, on_streamable) = streamable_session(&server).await;
    let (sse, on_sse) = sse_session(&server).await;
    // A 2026-07-28 stateless client listens on `subscriptions/listen`.
    let stateless = {
        use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
        let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
        let mode = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
        Changes::default().serve_with_lifecycle(transport, mode).await.expect("discover over /mcp")
    };
    let mut subscription =
        stateless.peer().listen(SubscriptionFilter::builder().tools_list_changed().build()).await.expect("listen");
    assert_eq!(subscription.acknowledged().tools_list_changed, Some(true));
    let info = streamable.peer_info().expect("server info");
    let list_changed = info.capabilities.tools.as_ref().and_then(|t| t.list_changed);
    assert_eq!(list_changed, Some(true), "tools.listChanged is advertised");

    let target = dir.join("pinned.wasm");
    let stages: [(&str, Option<&str>); 3] =
        [("added", Some("pinned_v1.wasm")), ("replaced", Some("pinned_v2.wasm")), ("removed", None)];
    for (seen, (stage, file)) in (1..).zip(stages) {
        match file {
            Some(file) => install(&target, &std::fs::read(plugin_file(file)).expect("fixture")),
            None => std::fs::remove_file(&target).expect("remove"),
        }
        until(&format!("both sessions heard that a plugin was {stage}"), async || {
            on_streamable.count() >= seen && on_sse.count() >= seen
        })
        .await;
        let notification = tokio::time::timeout(RELOAD_WAIT, subscription.next())
            .await
            .expect("the subscription hears of it")
            .expect("subscription open")
            .expect("a notification");
        assert!(matches!(notification, ServerNotification::ToolListChangedNotification(_)), "{notification:?}");
        let tools = streamable.list_all_tools().await.expect("tools/list");
        let greet = tools.iter().find(|t| t.name == "pinned__greet");
        match stage {
            "added" => assert_eq!(greet.and_then(|t| t.description.as_deref()), Some("Greet someone by name.")),
            "replaced" => assert!(greet.and_then(|t| t.description.as_deref()).is_some_and(|d| d.contains("Also"))),
            _ => assert!(greet.is_none(), "removed"),
        }
        assert_eq!(listed(&streamable).await, listed(&sse).await, "both transports list the same tools");
    }
    assert!(listed(&sse).await.contains(&"echo__echo".to_owned()), "the untouched plugin kept serving");
}

#[tokio::test]
async fn a_call_in_flight_during_a_removal_finishes_on_the_old_version() {
    let (dir, server) = watching(plugins_dir(&["echo.wasm"], &[]));
    let server = server.await;
    let registry = Arc::clone(&server.app_registry);
    let started = Instant::now();
    let running = tokio::spawn(async move {
        let Some(serde_json::Value::Object(args)) = Some(json!({"ms": 1500})) else { unreachable!() };
        let result = registry.call("echo__wait", Some(args), CallContext::default()).await;
        (result, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // echo.wasm is gone: so is `echo` from the new table.
    std::fs::remove_file(dir.join("echo.wasm")).expect("remove");
    until("the removal is served", async || !server.app_registry.tools().any(|t| t.name.as_str() == "echo__wait"))
        .await;
    let swapped_at = Instant::now();
    let (result, finished_at) = running.await.expect("task");
    let completed = result.expect("the call finished on the version it started with");
    assert_eq!(completed.content, vec![sanctum::model::Content::Text("waited 1500 ms".into())]);
    assert!(swapped_at < finished_at, "the swap happened while the call ran ({:?})", started.elapsed());
    let after = server.app_registry.call("echo__wait", None, CallContext::default()).await;
    assert!(matches!(after, Err(sanctum::registry::CallError::UnknownTool(_))), "new calls see the new table");
}

#[tokio::test]
async fn a_broken_replacement_leaves_the_old_version_serving_and_is_reported() {
    let (dir, server) = watching(plugins_dir(&["echo.wasm"], &[]));
    let server = server.await;
    let (client, changes) = streamable_session(&server).await;
    install(&dir.join("echo.wasm"), &std::fs::read(plugin_file("not_a_plugin.wasm")).expect("fixture"));
    until("the failure is reported", async || !server.app_registry.health().problems.is_empty()).await;
    let problems = server.app_registry.health().problems;
    assert!(
        problems[0].contains("echo.wasm")
            && problems[0].contains("not a sanctum plugin")
            && problems[0].contains("previous version keeps serving"),
        "{problems:?}"
    );
    let echoed = client.call_tool(call("echo__echo", json!({"text": "still here"}))).await.expect("call");
    assert_eq!(text(&echoed), "still here");
    let healthz: serde_json::Value =
        reqwest::get(server.url("/healthz")).await.expect("GET").json().await.expect("JSON");
    let public = healthz["problems"][0].as_str().unwrap_or_default();
    assert!(
        public.starts_with("1 problem(s)") && !public.contains("echo.wasm"),
        "only a count, unauthenticated: {healthz}"
    );
    assert_eq!(changes.count(), 0, "nothing listed changed");

    // Fixed: the good file loads again and the report clears.
    install(&dir.join("echo.wasm"), &std::fs::read(plugin_file("echo.wasm")).expect("fixture"));
    until("the report clears", async || server.app_registry.health().problems.is_empty()).await;
}
