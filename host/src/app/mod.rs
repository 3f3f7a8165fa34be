//! Start-up wiring shared by `main` and the end-to-end tests: the only module besides `main`
//! and the commands in `cli` that sees every layer.
//!
//! - [`startup`]: the one loader (runtime, plugin set, pins, the policy's review) every
//!   command uses;
//! - [`plugin_set`]: the loaded plugins and the one way a plugin is admitted;
//! - [`watch`]: hot reload, keeping the registry in step with the files;
//! - [`build`]: the worker, the registry, the MCP server and the router over what was loaded;
//! - [`run`]: serve an [`App`] until shutdown, then drain (what `main` and the tests run);
//! - [`call`]: `sanctum call`, one tool of one file through the same gate.

mod call;
pub mod plugin_set;
mod serve;
pub mod startup;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;

pub use call::{LocalCall, call_file};
pub use serve::run;

use crate::config::ServeArgs;
use crate::mcp::McpServer;
use crate::metrics::Metrics;
use crate::policy::GrantReview;
use crate::registry::{Refusal, Registry};
use crate::runtime::{CacheCounts, LoadError};
use crate::shutdown::{Readiness, Shutdown};
use crate::transport::{self, RouterOptions};
use crate::worker::WorkerHandle;
use startup::Startup;

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
    /// What `/metrics` serves; shared with every layer that records.
    pub metrics: Metrics,
    /// What `/readyz` reports: not ready until [`run`] serves.
    pub readiness: Readiness,
    /// The two moments of a shutdown: sessions, the watcher and calls end at `stop`.
    pub shutdown: Shutdown,
    /// How long a shutdown waits for calls in flight before cancelling them.
    pub shutdown_grace: Duration,
}

/// Load everything `args` names and wire the layers over it. Serves nothing yet: see [`run`].
pub async fn build(args: &ServeArgs) -> anyhow::Result<App> {
    // The front door first: a server that must not start should not load plugins first.
    let front_door = &args.front_door;
    let auth = transport::Authenticator::load(
        front_door.auth_tokens_file.as_deref(),
        front_door.config_auth.as_ref(),
        front_door.auth_token.as_deref(),
    )?;
    transport::check_exposure(args.host, &auth, front_door.allow_unauthenticated)?;
    if auth.is_enabled() {
        tracing::info!(principals = ?auth.principals(), "bearer tokens required on /mcp, /sse and /messages");
    }
    let metrics = Metrics::new();
    let shutdown = Shutdown::default();
    let startup = Startup::serve(args);
    let pins_path = startup.pins.clone();
    let loaded = startup.load(&metrics).await?;
    let runtime = loaded.runtime;
    // Compile the argument validator now, off the request path, rather than on the first call.
    tokio::spawn({
        let runtime = Arc::clone(&runtime);
        async move { runtime.prepare_validator().await }
    });
    let worker = WorkerHandle::spawn(Arc::clone(&runtime), usize::from(args.queue_capacity), metrics.clone())
        .context("starting the worker")?;
    let (registry, refusals) = Registry::build(loaded.set.plugins(), worker, loaded.pins, metrics.clone());
    let registry = Arc::new(registry);
    registry.set_problems(loaded.load_errors.iter().map(ToString::to_string).collect());
    if args.watch
        && let Err(e) = watch::watch(
            loaded.set,
            Arc::clone(&runtime),
            Arc::clone(&registry),
            pins_path.as_deref(),
            shutdown.stop.clone(),
        )
    {
        tracing::warn!(error = %e, "hot reload is off");
    }
    let readiness = Readiness::default();
    let router = transport::router(
        McpServer::new(Arc::clone(&registry), metrics.clone()),
        RouterOptions {
            extra_allowed_hosts: args.allowed_hosts.clone(),
            shutdown: shutdown.stop.clone(),
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            auth,
            allowed_origins: front_door.allowed_origins.clone(),
            limits: front_door.limits(),
        },
    );
    Ok(App {
        router,
        registry,
        load_errors: loaded.load_errors,
        compile_cache: loaded.compile_cache,
        refusals,
        reviews: loaded.reviews,
        unknown_policy_plugins: loaded.unknown_policy_plugins,
        metrics,
        readiness,
        shutdown,
        shutdown_grace: args.shutdown_grace(),
    })
}
