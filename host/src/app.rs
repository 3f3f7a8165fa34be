//! Start-up wiring shared by `main` and the end-to-end tests: load the plugins, start the
//! worker, build the registry, the MCP server and the router. The only module besides `main`
//! that sees every layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::audit::Audit;
use crate::config::{CallArgs, ServeArgs};
use crate::mcp::McpServer;
use crate::policy::{GrantReview, Policy};
use crate::registry::{Refusal, Registry};
use crate::runtime::{LoadError, Plugin, Runtime};
use crate::transport::{self, RouterOptions};
use crate::worker::WorkerHandle;

/// A ready-to-serve application and what happened while loading it.
#[derive(Debug)]
pub struct App {
    pub router: Router,
    pub registry: Arc<Registry>,
    /// Plugin files that failed to load (each was skipped; the others serve).
    pub load_errors: Vec<LoadError>,
    /// Plugins or tools the registry refused.
    pub refusals: Vec<Refusal>,
    /// Per plugin: what it needs against what the policy grants.
    pub reviews: Vec<GrantReview>,
    /// Plugins the policy names that were not loaded (usually a typo).
    pub unknown_policy_plugins: Vec<String>,
}

pub async fn build(args: &ServeArgs, shutdown: CancellationToken) -> anyhow::Result<App> {
    let policy = load_policy(args.policy.as_deref(), args.limits())?;
    let audit = open_audit(&args.audit)?;
    let runtime = Runtime::new(args.limits(), audit).context("starting the wasm runtime")?;
    let (plugins, load_errors) = load_plugins(&runtime, &args.plugins).await;
    let plugins: Vec<Plugin> = plugins
        .into_iter()
        .map(|plugin| {
            let grants = policy.grants_for(&plugin.info().name);
            plugin.with_grants(grants)
        })
        .collect();
    let reviews = plugins.iter().map(|p| GrantReview::new(p.info(), p.grants())).collect();
    let unknown_policy_plugins = policy
        .plugin_names()
        .filter(|name| !plugins.iter().any(|p| p.info().name == *name))
        .map(str::to_owned)
        .collect();
    let infos: Vec<_> = plugins.iter().map(|p| p.info().clone()).collect();
    let worker =
        WorkerHandle::spawn(runtime, plugins, usize::from(args.queue_capacity)).context("starting the worker")?;
    let (registry, refusals) = Registry::build(&infos, worker);
    let registry = Arc::new(registry);
    let mcp = McpServer::new(Arc::clone(&registry));
    let router = transport::router(mcp, RouterOptions { extra_allowed_hosts: args.allowed_hosts.clone(), shutdown });
    Ok(App { router, registry, load_errors, refusals, reviews, unknown_policy_plugins })
}

/// What `sanctum call` produced: the MCP result as a client would receive it.
#[derive(Debug)]
pub enum LocalCall {
    /// A tool result; `is_error` is its `isError`.
    Result { json: serde_json::Value, is_error: bool },
    /// A JSON-RPC error a client would have received (e.g. unknown tool).
    ProtocolError(String),
}

/// Run one tool of the plugin at `args.plugin` through the same gate and sandbox as the server.
pub async fn call_file(args: &CallArgs) -> anyhow::Result<LocalCall> {
    let policy = load_policy(args.policy.as_deref(), args.limits())?;
    let runtime = Runtime::new(args.limits(), open_audit(&args.audit)?).context("starting the wasm runtime")?;
    let plugin = runtime.load(&args.plugin).await?;
    let name = plugin.info().name.clone();
    let plugin = plugin.with_grants(policy.grants_for(&name));
    let info = plugin.info().clone();
    let worker = WorkerHandle::spawn(runtime, vec![plugin], 1).context("starting the worker")?;
    let (registry, refusals) = Registry::build(std::slice::from_ref(&info), worker);
    for refusal in refusals {
        tracing::warn!(%refusal, "refused");
    }
    let arguments: serde_json::Value = serde_json::from_str(&args.args).context("--args is not JSON")?;
    let serde_json::Value::Object(arguments) = arguments else { anyhow::bail!("--args must be a JSON object") };
    let tool =
        if args.tool.contains(crate::ids::SEPARATOR) { args.tool.clone() } else { format!("{name}__{}", args.tool) };
    let outcome = registry.call(&tool, Some(arguments), crate::registry::CallContext::default()).await;
    Ok(match crate::mcp::render_outcome(outcome) {
        Ok(result) => {
            LocalCall::Result { is_error: result.is_error == Some(true), json: serde_json::to_value(&result)? }
        }
        Err(error) => LocalCall::ProtocolError(error.message.to_string()),
    })
}

/// The operator's policy, or deny-all when there is none.
fn load_policy(path: Option<&Path>, limits: crate::runtime::Limits) -> anyhow::Result<Policy> {
    Ok(match path {
        Some(path) => Policy::load(path, limits)?,
        None => Policy::deny_all(limits),
    })
}

/// `-` is stderr, `off` disables auditing, anything else is a file appended to.
fn open_audit(target: &str) -> anyhow::Result<Audit> {
    Ok(match target {
        "off" => Audit::disabled(),
        "-" => Audit::to_writer(std::io::stderr()),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the audit log {path}"))?;
            Audit::to_writer(file)
        }
    })
}

/// Load every `*.wasm` directly in `dir`, in file-name order. A file that fails is reported
/// and skipped; a second plugin with a name already loaded is skipped too.
pub async fn load_plugins(runtime: &Runtime, dir: &Path) -> (Vec<Plugin>, Vec<LoadError>) {
    let mut loaded: Vec<Plugin> = Vec::new();
    let mut errors = Vec::new();
    for path in wasm_files(dir) {
        match runtime.load(&path).await {
            Ok(plugin) if loaded.iter().any(|p| p.info().name == plugin.info().name) => {
                errors.push(LoadError::Duplicate { path, name: plugin.info().name.clone() });
            }
            Ok(plugin) => {
                tracing::info!(plugin = %plugin.info().name, version = %plugin.info().version,
                    tools = plugin.info().tools.len(), path = %path.display(), "plugin loaded");
                loaded.push(plugin);
            }
            Err(e) => errors.push(e),
        }
    }
    (loaded, errors)
}

fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read the plugins directory; serving no plugins");
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    files.sort();
    files
}
