//! Start-up wiring shared by `main` and the end-to-end tests: load the plugins, start the
//! worker, build the registry, the MCP server and the router. The only module besides `main`
//! that sees every layer.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::audit::Audit;
use crate::config::{CallArgs, ServeArgs};
use crate::mcp::McpServer;
use crate::metrics::Metrics;
use crate::pins::Pins;
use crate::policy::{GrantReview, Policy};
use crate::registry::{Refusal, Registry};
use crate::reload::{self, PluginSet};
use crate::runtime::{CacheCounts, LoadError, Runtime};
use crate::shutdown::Readiness;
use crate::transport::{self, RouterOptions};
use crate::worker::WorkerHandle;

/// A ready-to-serve application and what happened while loading it.
#[derive(Debug)]
pub struct App {
    pub router: Router,
    pub registry: Arc<Registry>,
    /// Plugin files that failed to load (each was skipped; the others serve).
    pub load_errors: Vec<LoadError>,
    /// What the compile cache did while loading (hits are plugins not compiled again).
    pub compile_cache: CacheCounts,
    /// Plugins or tools the registry refused.
    pub refusals: Vec<Refusal>,
    /// Per plugin: what it needs against what the policy grants.
    pub reviews: Vec<GrantReview>,
    /// Plugins the policy names that were not loaded (usually a typo).
    pub unknown_policy_plugins: Vec<String>,
    /// What `/metrics` serves; shared with the registry and the audit trail.
    pub metrics: Metrics,
    /// What `/readyz` reports: not ready until the caller, about to serve, says so.
    pub readiness: Readiness,
}

pub async fn build(args: &ServeArgs, shutdown: CancellationToken) -> anyhow::Result<App> {
    // The front door first: a server that must not start should not load plugins first.
    let auth = match &args.config_auth {
        // The config file's `[auth]`, unless a tokens file (flag or variable) overrides it.
        Some(settings) if args.front_door.auth_tokens_file.is_none() => {
            let mut settings = settings.clone();
            if let Some(token) = args.front_door.auth_token.as_deref().filter(|t| !t.is_empty()) {
                settings.tokens.push(transport::auth::TokenSource {
                    principal: transport::auth::DEFAULT_PRINCIPAL.into(),
                    env: None,
                    file: None,
                    value: Some(token.to_owned()),
                });
            }
            transport::Authenticator::from_settings(&settings)?
        }
        _ => transport::Authenticator::load(
            args.front_door.auth_tokens_file.as_deref(),
            args.front_door.auth_token.as_deref(),
        )?,
    };
    transport::check_exposure(args.host, &auth, args.front_door.allow_unauthenticated)?;
    if auth.is_enabled() {
        tracing::info!(principals = ?auth.principals(), "bearer tokens required on /mcp, /sse and /messages");
    }
    let policy = load_policy(args.policy.as_deref(), args.limits())?;
    let metrics = Metrics::new();
    let audit = open_audit(&args.audit)?.with_metrics(metrics.clone());
    let runtime = Arc::new(start_runtime(args, audit, metrics.clone())?);
    let mut set = PluginSet::new(args.plugins.clone(), args.policy.clone(), policy, args.limits());
    let load_errors = set.scan(&runtime, false).await;
    let plugins = set.plugins();
    let reviews = plugins.iter().map(|p| GrantReview::new(p.info(), p.grants())).collect();
    let unknown_policy_plugins = set
        .policy()
        .plugin_names()
        .filter(|name| !plugins.iter().any(|p| p.info().name == *name))
        .map(str::to_owned)
        .collect();
    // Compile the argument validator now, off the request path, rather than on the first call.
    tokio::spawn({
        let runtime = Arc::clone(&runtime);
        async move { runtime.prepare_validator().await }
    });
    let worker =
        WorkerHandle::spawn(Arc::clone(&runtime), usize::from(args.queue_capacity)).context("starting the worker")?;
    let pins_path = args.store.pins_path(args.policy.as_deref());
    let pins = match &pins_path {
        Some(path) => Pins::load(path)?,
        None => Pins::disabled(),
    };
    let (registry, refusals) = Registry::build(plugins, worker, pins);
    let registry = Arc::new(registry.with_metrics(metrics.clone()));
    registry.set_problems(load_errors.iter().map(ToString::to_string).collect());
    let compile_cache = runtime.compile_cache_counts();
    tracing::info!(
        hits = compile_cache.hits,
        misses = compile_cache.misses,
        rejected = compile_cache.rejected,
        "compile cache"
    );
    if args.watch
        && let Err(e) =
            reload::watch(set, Arc::clone(&runtime), Arc::clone(&registry), pins_path.as_deref(), shutdown.clone())
    {
        tracing::warn!(error = %e, "hot reload is off");
    }
    let mcp = McpServer::new(Arc::clone(&registry));
    let readiness = Readiness::default();
    let router = transport::router(
        mcp,
        RouterOptions {
            extra_allowed_hosts: args.allowed_hosts.clone(),
            shutdown,
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            auth,
            allowed_origins: args.front_door.allowed_origins.clone(),
            limits: args.front_door.limits(),
        },
    );
    Ok(App {
        router,
        registry,
        load_errors,
        compile_cache,
        refusals,
        reviews,
        unknown_policy_plugins,
        metrics,
        readiness,
    })
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
    choose_containment(args.process_containment)?;
    let policy = load_policy(args.policy.as_deref(), args.limits())?;
    let mut runtime = Runtime::new(args.limits(), open_audit(&args.audit)?).context("starting the wasm runtime")?;
    if let Some(dir) = args.cache_dir()
        && let Err(e) = runtime.enable_compile_cache(&dir)
    {
        tracing::warn!(error = %e, "compile cache off");
    }
    // Admitted as `serve` admits it: named by its file, pinned bytes only, the policy's grants.
    let bytes = crate::digest::ComponentBytes::read(&args.plugin)
        .map_err(|source| LoadError::Read { path: args.plugin.clone(), source })?;
    let plugin = Arc::new(reload::load_plugin(&runtime, &policy, &args.plugin, bytes).await?);
    let name = plugin.info().name.clone();
    let worker = WorkerHandle::spawn(Arc::new(runtime), 1).context("starting the worker")?;
    let (registry, refusals) = Registry::build(vec![plugin], worker, Pins::disabled());
    for refusal in refusals {
        tracing::warn!(%refusal, "refused");
    }
    let arguments: serde_json::Value = serde_json::from_str(&args.args).context("--args is not JSON")?;
    let serde_json::Value::Object(arguments) = arguments else { anyhow::bail!("--args must be a JSON object") };
    // A name the registry serves as given (a bare name, `health`) is not prefixed.
    let tool = if args.tool.contains(crate::ids::SEPARATOR) || registry.tools().any(|t| t.name.as_str() == args.tool) {
        args.tool.clone()
    } else {
        format!("{name}__{}", args.tool)
    };
    let outcome = registry.call(&tool, Some(arguments), crate::model::CallContext::default()).await;
    Ok(match crate::mcp::render_outcome(outcome) {
        Ok(result) => {
            LocalCall::Result { is_error: result.is_error == Some(true), json: serde_json::to_value(&result)? }
        }
        Err(error) => LocalCall::ProtocolError(error.message.to_string()),
    })
}

/// The runtime, with the compile cache when one is configured (a cache that cannot be used
/// safely is reported and skipped: plugins are then compiled every time).
pub fn start_runtime(args: &ServeArgs, audit: Audit, metrics: Metrics) -> anyhow::Result<Runtime> {
    choose_containment(args.process_containment)?;
    let mut runtime = Runtime::with_allocator(args.limits(), audit, args.instance_allocator.into())
        .context("starting the wasm runtime")?;
    runtime.set_metrics(metrics);
    if let Some(dir) = args.store.cache_dir()
        && let Err(e) = runtime.enable_compile_cache(&dir)
    {
        tracing::warn!(error = %e, "compile cache off");
    }
    Ok(runtime)
}

fn choose_containment(choice: crate::config::ContainmentArg) -> anyhow::Result<()> {
    if !crate::runtime::choose_process_containment(choice.into()) {
        anyhow::bail!("--process-containment {choice:?} conflicts with the containment already in force");
    }
    Ok(())
}

/// The operator's policy, or deny-all when there is none.
fn load_policy(path: Option<&Path>, limits: crate::model::Limits) -> anyhow::Result<Policy> {
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
