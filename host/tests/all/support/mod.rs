//! Test scaffolding: start the real server on port 0 over a chosen set of plugin files, and
//! connect real rmcp clients to it.

pub mod oidc;
pub mod process_tree;
pub mod raw_mcp;
pub mod raw_sse;
pub mod running;
pub mod sse_client;
pub mod sse_events;
pub mod stalled;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, ContentBlock, Implementation, LoggingMessageNotificationParam,
    ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use sanctum::config::ServeArgs;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// The repository root (the host crate lives in `host/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_owned()
}

/// A built plugin: bundled ones in `plugins/`, test fixtures in `tests/plugins/`.
pub fn plugin_file(name: &str) -> PathBuf {
    let bundled = repo_root().join("plugins").join(name);
    if bundled.exists() { bundled } else { repo_root().join("tests/plugins").join(name) }
}

/// A temporary plugins directory holding copies of `files` (plugin file names) and `extra`
/// files written from bytes (for broken plugins).
pub fn plugins_dir(files: &[&str], extra: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in files {
        std::fs::copy(plugin_file(name), dir.path().join(name)).expect("copy plugin");
    }
    for (name, bytes) in extra {
        std::fs::write(dir.path().join(name), bytes).expect("write file");
    }
    dir
}

/// The `sanctum` binary, with the environment variables that would redirect it cleared.
pub fn sanctum_cli() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sanctum"));
    for variable in ["SANCTUM_POLICY", "SANCTUM_PINS", "SANCTUM_CACHE_DIR", "SANCTUM_PLUGINS_DIR"] {
        command.env_remove(variable);
    }
    command
}

/// The compile cache the test run shares (under cargo's temporary directory for tests).
pub fn shared_compile_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile-cache")
}

/// A server running in this process until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub app_registry: Arc<sanctum::registry::Registry>,
    /// The server's approvals book (what the admin plane decides on).
    pub approvals: sanctum::approvals::Approvals,
    pub load_errors: Vec<String>,
    pub refusals: Vec<String>,
    /// Where this server keeps its jobs (inside its temporary directory).
    pub jobs_dir: PathBuf,
    shutdown: CancellationToken,
    audit_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(files: &[&str]) -> Self {
        Self::start_with(plugins_dir(files, &[]), |_| {}).await
    }

    pub async fn start_with(dir: tempfile::TempDir, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let mut args = ServeArgs::for_plugins(dir.path());
        // One compile cache for every server of the test run: each plugin, and the argument
        // validator, is compiled once (tests that study the cache set their own).
        args.source.store.cache_dir = Some(shared_compile_cache().display().to_string());
        // Its own jobs directory: servers of one test run must not share one.
        args.jobs_dir = Some(dir.path().join("jobs").display().to_string());
        configure(&mut args);
        let jobs_dir = PathBuf::from(args.jobs_dir.clone().unwrap_or_default());
        // A relative audit file lands in this server's own temporary directory.
        let audit_path = dir.path().join(&args.audit);
        if !matches!(args.audit.as_str(), "-" | "off") {
            args.audit = audit_path.display().to_string();
        }
        let app = sanctum::app::build(&args).await.expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let app_registry = Arc::clone(&app.registry);
        let approvals = app.approvals.clone();
        let load_errors = app.load_errors.iter().map(ToString::to_string).collect();
        let refusals = app.refusals.iter().map(ToString::to_string).collect();
        // Served as `main` serves: dropping the server is its SIGTERM.
        let shutdown = CancellationToken::new();
        tokio::spawn(sanctum::app::run(listener, app, shutdown.clone().cancelled_owned()));
        Self { addr, app_registry, approvals, load_errors, refusals, jobs_dir, shutdown, audit_path, _dir: dir }
    }

    /// The audit records written so far, parsed (empty if none yet).
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Where this server writes its audit records (when a file was configured).
    pub fn audit_path(&self) -> &Path {
        &self.audit_path
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl TestServer {
    /// Start the shutdown `main` starts on SIGTERM (dropping the server does too).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A client handler that records the notifications it receives.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    pub protocol: Option<ProtocolVersion>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        let info = ClientConfig::new(Default::default(), Implementation::new("sanctum-tests", "0"));
        match &self.protocol {
            Some(version) => info.with_protocol_version(version.clone()),
            None => info,
        }
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _ctx: NotificationContext<RoleClient>) {
        self.progress.lock().expect("lock").push(params);
    }

    #[allow(deprecated)]
    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, _ctx: NotificationContext<RoleClient>) {
        self.logs.lock().expect("lock").push(params);
    }
}

pub type Client = RunningService<RoleClient, Recorder>;

/// The ways a client reaches sanctum; every client test runs over each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path_ {
    /// `/mcp` with the `initialize` handshake (2025-11-25).
    StreamableHandshake,
    /// `/mcp`, stateless 2026-07-28 (`server/discover`, per-request metadata).
    StreamableStateless,
    /// `/sse` + `/messages` with the handshake.
    LegacySse,
}

pub const ALL_PATHS: [Path_; 3] = [Path_::StreamableHandshake, Path_::StreamableStateless, Path_::LegacySse];

pub async fn connect(server: &TestServer, path: Path_) -> (Client, Recorder) {
    let recorder = Recorder { protocol: Some(ProtocolVersion::V_2025_11_25), ..Recorder::default() };
    let client = match path {
        Path_::StreamableHandshake => {
            let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
            recorder.clone().serve(transport).await.expect("handshake over /mcp")
        }
        Path_::StreamableStateless => {
            use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
            let transport = StreamableHttpClientTransport::from_uri(server.url("/mcp"));
            let mode = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
            recorder.clone().serve_with_lifecycle(transport, mode).await.expect("discover over /mcp")
        }
        Path_::LegacySse => {
            let transport = sse_client::connect(&server.url("/sse")).await;
            recorder.clone().serve(transport).await.expect("handshake over /sse")
        }
    };
    (client, recorder)
}

pub fn call(name: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(args) = args else { panic!("arguments must be an object") };
    CallToolRequestParams::new(name.to_owned()).with_arguments(args)
}

pub fn no_args(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned()).with_arguments(Map::new())
}

/// The text of the first content block.
pub fn text(result: &CallToolResult) -> &str {
    match result.content.first() {
        Some(ContentBlock::Text(t)) => &t.text,
        other => panic!("expected a text block, got {other:?}"),
    }
}
