//! Start-up wiring shared by `main` and the end-to-end tests: the only module besides `main`
//! and the commands in `cli` that sees every layer.
//!
//! - [`startup`]: the one loader (runtime, plugin set, pins, the policy's review) every
//!   command uses;
//! - [`plugin_set`]: the loaded plugins and the one way a plugin is admitted;
//! - [`watch`]: hot reload, keeping the registry in step with the files;
//! - [`build`]: the worker, the registry, the MCP server and the router over what was loaded;
//!   the approvals book and the operators' admin plane (socket, optional HTTP listener);
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

use crate::admin::{AdminPlane, AdminSettings};
use crate::approvals::Approvals;
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
    /// The access rules in force as `sanctum check` shows them: who gets what, and the rules
    /// that can never matter. Empty when the policy has no `[access]` section.
    pub access_report: crate::access::matrix::Report,
    /// Whether the policy has an `[access]` section at all.
    pub access_configured: bool,
    /// Calls held for an operator's approval; closed (every entry expired) when a shutdown
    /// starts.
    pub approvals: Approvals,
    /// The operators' admin plane over `approvals`: serves until `shutdown.stop`.
    pub admin: AdminPlane,
    /// Host-supervised jobs (none when jobs are off): stopped once serving is over.
    pub jobs: Option<crate::runtime::Supervisor>,
    /// The argument validator's compile, started in the background: `serve` lets it finish on
    /// its own, `check` waits for it (so a check also warms the compile cache for it).
    pub validator_ready: tokio::task::JoinHandle<()>,
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
    let admin_tokens = admin_tokens(args)?;
    let metrics = Metrics::new();
    let shutdown = Shutdown::default();
    let reloads = watch::Reloads::default();
    let startup = Startup { background: Some((args.background_compiles(), reloads.rescan())), ..Startup::serve(args) };
    let pins_path = startup.pins.clone();
    let loaded = startup.load(&metrics).await?;
    let readiness = Readiness::default();
    readiness.set_loading(loaded.set.still_starting());
    let runtime = loaded.runtime;
    // Compile the argument validator now, off the request path, rather than on the first call.
    let validator_ready = tokio::spawn({
        let runtime = Arc::clone(&runtime);
        async move { runtime.prepare_validator().await }
    });
    let worker = WorkerHandle::spawn(Arc::clone(&runtime), usize::from(args.queue_capacity), metrics.clone())
        .context("starting the worker")?;
    let approvals = Approvals::new(args.approvals.settings(), runtime.audit().clone(), metrics.clone());
    if let Some(url) = &args.approvals.notify_url {
        approvals.notify_with(crate::admin::notify::webhook(url.clone(), args.approvals.notify_allowed_ranges.clone()));
    }
    let (registry, refusals) = Registry::build(loaded.set.plugins(), worker, loaded.pins, metrics.clone());
    let registry = Arc::new(registry.with_audit(runtime.audit().clone()).with_approvals(approvals.clone()));
    let access = loaded.set.policy().access();
    if !access.is_configured() {
        tracing::warn!(
            "the policy has no [access] section: every caller may call every tool with any valid arguments; \
             add [access] with default = \"deny\" and rules (see docs/security.md)"
        );
    }
    registry.set_access(Arc::clone(access));
    let access_configured = access.is_configured();
    let access_report = {
        let (identities, dynamic_callers) = auth.identities();
        let tools: Vec<String> = registry.tools().map(|t| t.name.as_str().to_owned()).collect();
        crate::access::matrix::report(access, &identities, &tools, dynamic_callers)
    };
    // What failed, and what is still compiling in the background (`health` shows both).
    registry.set_problems(loaded.set.problems().to_vec());
    let reload = watch::ReloadTask {
        set: loaded.set,
        runtime: Arc::clone(&runtime),
        registry: Arc::clone(&registry),
        pins_path,
        readiness: readiness.clone(),
        reloads,
    };
    if let Err(e) = watch::start(reload, args.watch, shutdown.stop.clone()) {
        tracing::warn!(error = %e, "hot reload is off");
    }
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
    // From the signal on, nothing may wait for approval: every entry expires at once (callers
    // get their answer during the drain) and nothing approved later can run.
    tokio::spawn({
        let (approvals, stopping) = (approvals.clone(), shutdown.stop_accepting.clone());
        async move {
            stopping.cancelled().await;
            approvals.close();
        }
    });
    let admin = AdminPlane::start(
        AdminSettings {
            socket: args.approvals.admin_socket(),
            socket_is_default: args.approvals.admin_socket.is_none(),
            listen: args.approvals.admin_listen,
            tokens: admin_tokens,
        },
        approvals.clone(),
        shutdown.stop.clone(),
    )
    .await?;
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
        access_report,
        access_configured,
        approvals,
        admin,
        jobs: loaded.jobs,
        validator_ready,
    })
}

/// The admin plane's tokens (`[[admin.token]]`), refused if any equals an MCP token: an MCP
/// client holding it could approve its own calls.
fn admin_tokens(args: &ServeArgs) -> anyhow::Result<transport::Authenticator> {
    let Some(admin) = &args.approvals.admin_tokens else { return Ok(transport::Authenticator::default()) };
    let tokens = transport::Authenticator::from_settings(admin).context("admin tokens ([[admin.token]])")?;
    // Only digests are kept, so compare by loading both sets together: a duplicate is refused.
    let front_door = &args.front_door;
    let mut both = match &front_door.auth_tokens_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<transport::AuthSettings>(&text)
                .with_context(|| format!("parsing the auth tokens file {}", path.display()))?
        }
        None => front_door.config_auth.clone().unwrap_or_default(),
    };
    if let Some(token) = front_door.auth_token.as_deref().filter(|t| !t.is_empty()) {
        // Built as a file would write it, so new optional fields need nothing here.
        let principal = transport::auth::DEFAULT_PRINCIPAL;
        both.tokens.push(serde_json::from_value(serde_json::json!({"principal": principal, "value": token}))?);
    }
    both.tokens.extend(admin.tokens.iter().cloned());
    if let Err(transport::AuthError::DuplicateToken { first, second }) = transport::Authenticator::from_settings(&both)
    {
        anyhow::bail!(
            "an admin token ([[admin.token]]) equals an MCP token (principals {first:?} and {second:?}); \
             give the admin plane tokens of its own"
        );
    }
    Ok(tokens)
}
