//! The wasm runtime: every line of wasmtime code in sanctum lives under this module.
//!
//! [`Runtime`] owns the engine, the linker and the epoch ticker; [`Runtime::load`] turns a
//! `.wasm` file into a [`Plugin`] (compiled, type-checked against the world, described);
//! [`Runtime::call`] runs one tool call in a fresh sandbox. Results are plain data from
//! [`crate::model`]; this module never imports the registry, the worker or anything above them.

mod background;
mod bindings;
mod cache;
mod capabilities;
mod capture;
mod engine;
mod error;
mod jobs;
mod loader;
mod redact;
mod reporter;
mod sandbox;
mod teardown;
mod validator;

use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Instant;

use wasmtime::Engine;

use crate::audit::{Audit, AuditRecord};
use crate::digest::{ComponentBytes, ComponentDigest};
use crate::metrics::{CallPhase, Metrics};
use wasmtime::component::{HasSelf, Linker};

pub use background::OnCompiled;
pub use cache::{CacheCounts, CacheError};
pub use engine::InstanceAllocator;
pub use error::LoadError;
pub use jobs::{KEPT_FINISHED, MAX_RUNNING as MAX_RUNNING_JOBS, Supervisor};
pub use teardown::Teardown;
pub use validator::{MAX_REPORTED_PROBLEMS, VALIDATION_BUDGET, ValidationError};

use bindings::{Plugin as PluginBindings, PluginPre};
use engine::EpochTicker;
use sandbox::{CallSite, CallState};

use crate::model::{CallContext, CallFailure, Limits, PluginGrants, PluginInfo, SchemaSource, ToolOutput};
pub use capabilities::containment::ProcessContainment;

/// How the children of granted commands are confined on this machine (checks the kernel).
pub fn child_confinement() -> String {
    capabilities::process::confinement()
}

/// Contain command runs as `choice` says (one choice per process, made before the first run);
/// false if a different one is already in force.
pub fn choose_process_containment(choice: ProcessContainment) -> bool {
    capabilities::containment::choose(choice)
}

/// Failure to start the runtime itself (not a plugin's fault).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The cause is kept whole as the source, so an operator sees wasmtime's full chain.
    #[error("cannot configure the wasm engine")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(#[from] std::io::Error),
}

/// What [`Runtime::load_or_defer`] did.
#[derive(Debug)]
pub enum Loading {
    Loaded(Box<Plugin>),
    /// Compiling in the background; load it again once told it has.
    Compiling,
}

/// The engine and everything shared by all plugins. One per process, owned by the worker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    limits: Limits,
    audit: Audit,
    /// Where the per-call phase timings go (instantiation, guest, finish).
    metrics: Metrics,
    /// Host-produced native code of plugins already compiled; `None` compiles every time.
    cache: Option<Arc<cache::CompileCache>>,
    /// Large components compiled off the loading path; `None` compiles every one where loaded.
    background: Option<background::Background>,
    jobs: Option<Supervisor>,
    /// Argument and result validation, in its own sandbox.
    validator: validator::Validator,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// A loaded plugin: type-checked and ready to instantiate per call.
pub struct Plugin {
    path: PathBuf,
    /// SHA-256 of the file's bytes as loaded: stamped on every audit record of its calls.
    digest: ComponentDigest,
    info: PluginInfo,
    grants: Arc<PluginGrants>,
    pre: PluginPre<CallState>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("name", &self.info.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub fn grants(&self) -> &PluginGrants {
        &self.grants
    }

    /// The file this plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 of the bytes this plugin was compiled from.
    pub fn digest(&self) -> ComponentDigest {
        self.digest
    }

    /// The same compiled plugin with other grants (after the policy changed), leaving this one
    /// untouched for calls still running with it.
    #[must_use]
    pub fn regranted(&self, grants: PluginGrants) -> Self {
        Self {
            path: self.path.clone(),
            digest: self.digest,
            info: self.info.clone(),
            grants: Arc::new(grants),
            pre: self.pre.clone(),
        }
    }

    /// This plugin with the operator's grants (replacing the deny-all default it loads with).
    #[must_use]
    pub fn with_grants(self, grants: PluginGrants) -> Self {
        Self { grants: Arc::new(grants), ..self }
    }
}

impl Runtime {
    /// An engine with epoch interruption, a linker offering WASI p2 (nothing granted) and the
    /// sanctum interfaces, and a running ticker. `limits` apply to plugins until they are given
    /// grants; `audit` receives a record of every capability use.
    /// `metrics` receives the per-call phase timings (instantiation, guest, finish).
    pub fn new(limits: Limits, audit: Audit, metrics: Metrics) -> Result<Self, RuntimeError> {
        Self::with_allocator(limits, InstanceAllocator::default(), audit, metrics)
    }

    /// Like [`Runtime::new`], allocating instances with `allocator`.
    pub fn with_allocator(
        limits: Limits,
        allocator: InstanceAllocator,
        audit: Audit,
        metrics: Metrics,
    ) -> Result<Self, RuntimeError> {
        let engine = engine::new_engine(allocator).map_err(|e| RuntimeError::Engine(e.into()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| RuntimeError::Engine(e.into()))?;
        // Linked for every plugin; the egress hooks refuse whatever the policy does not grant.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Engine(e.into()))?;
        PluginBindings::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| RuntimeError::Engine(e.into()))?;
        let ticker = EpochTicker::start(&engine)?;
        Ok(Self {
            engine,
            linker,
            limits,
            audit,
            metrics,
            cache: None,
            background: None,
            jobs: None,
            validator: validator::Validator::new(),
            _ticker: ticker,
        })
    }

    /// Reuse compiled plugins across restarts through the cache at `dir` (see [`cache`]).
    pub fn enable_compile_cache(&mut self, dir: &Path) -> Result<(), CacheError> {
        self.cache = Some(Arc::new(cache::CompileCache::open(dir, &self.engine)?));
        Ok(())
    }

    /// Compile large components in the background (see [`background`]): [`Runtime::load_or_defer`]
    /// then hands them over instead of compiling them in place.
    pub fn enable_background_compiles(&mut self, settings: crate::model::BackgroundCompiles, on_compiled: OnCompiled) {
        self.background = Some(background::Background::new(settings, on_compiled));
    }

    /// Let plugins start host-supervised jobs, kept by `supervisor`.
    pub fn enable_jobs(&mut self, supervisor: Supervisor) {
        self.jobs = Some(supervisor);
    }

    /// What the compile cache did so far (all zero without one).
    /// The audit trail every call and capability use is recorded in.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    pub fn compile_cache_counts(&self) -> CacheCounts {
        self.cache.as_ref().map(|c| c.counts()).unwrap_or_default()
    }

    /// Compile `path`, check it against the world, and read its `describe()`.
    pub async fn load(&self, path: &Path) -> Result<Plugin, LoadError> {
        let component =
            ComponentBytes::read(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        loader::load(self, path, component).await
    }

    /// Like [`Runtime::load`], from `bytes` already read from `path` (so a caller that hashed
    /// them loads exactly what it hashed).
    pub async fn load_bytes(&self, path: &Path, component: ComponentBytes) -> Result<Plugin, LoadError> {
        loader::load(self, path, component).await
    }

    /// Like [`Runtime::load_bytes`], unless background compiles are on and `component` is one
    /// to compile there: then it is queued (once), the `OnCompiled` given at
    /// [`Runtime::enable_background_compiles`] is called when it has compiled, and loading it
    /// again after that takes the result instead of compiling.
    pub async fn load_or_defer(&self, path: &Path, component: ComponentBytes) -> Result<Loading, LoadError> {
        let component = match &self.background {
            None => component,
            Some(background) => {
                let digest = component.digest();
                let cached = self.cache.as_ref().is_some_and(|c| c.has(digest));
                match background.defer(component, cached, loader::compiler(self, path, digest)) {
                    background::Deferral::LoadNow(component) => component,
                    background::Deferral::Compiling => return Ok(Loading::Compiling),
                }
            }
        };
        self.load_bytes(path, component).await.map(|p| Loading::Loaded(Box::new(p)))
    }

    /// Compile the validator ahead of the first validation (which would otherwise do it).
    pub async fn prepare_validator(&self) {
        if let Err(e) = self.validator.prepare(self).await {
            tracing::error!(error = %e, "the argument validator is not available; every call will fail");
        }
    }

    /// Check `json` against `schema` in the validator's sandbox, under [`VALIDATION_BUDGET`].
    pub async fn validate(&self, schema: &SchemaSource, json: &str) -> Result<(), ValidationError> {
        self.validator.validate(self, schema, json).await
    }

    /// Run `tool` of `plugin` with `args_json` (already validated) in a fresh sandbox. The
    /// sandbox comes back as a [`Teardown`], for the caller to drop once it has answered.
    pub async fn call(
        &self,
        plugin: &Plugin,
        tool: &str,
        args_json: &str,
        ctx: CallContext,
    ) -> (Result<ToolOutput, CallFailure>, Teardown) {
        let started = std::time::Instant::now();
        let agent_id = ctx.agent_id.clone();
        let principal = ctx.principal.clone();
        let (mut result, guest_done, teardown) = self.call_in_sandbox(plugin, tool, args_json, ctx).await;
        let redactor = redact::Redactor::new(plugin.grants.secret_values());
        match &mut result {
            Ok(output) => redactor.output(output),
            Err(failure) => redactor.failure(failure),
        }
        let outcome = CallFailure::outcome(&result);
        self.audit.record(&AuditRecord::ToolCall {
            principal: principal.as_deref(),
            agent_id: agent_id.as_deref(),
            plugin: &plugin.info.name,
            plugin_sha256: &plugin.digest.hex(),
            tool,
            outcome,
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
        });
        self.metrics.call_phase(CallPhase::Finish, guest_done.elapsed());
        (result, teardown)
    }

    /// The call's result, when the guest returned (what follows up to the answer, output
    /// conversion, redaction and the audit record, is the `finish` phase) and its sandbox.
    async fn call_in_sandbox(
        &self,
        plugin: &Plugin,
        tool: &str,
        args_json: &str,
        ctx: CallContext,
    ) -> (Result<ToolOutput, CallFailure>, Instant, Teardown) {
        let started = Instant::now();
        let limits = &plugin.grants.limits;
        let budget = limits.call_timeout;
        let site = CallSite {
            plugin: &plugin.info.name,
            digest: plugin.digest,
            tool,
            grants: &plugin.grants,
            audit: &self.audit,
            jobs: self.jobs.as_ref(),
        };
        let mut store = match sandbox::new_store(&self.engine, &site, budget, ctx) {
            Ok(store) => store,
            Err(failure) => return (Err(failure), Instant::now(), Teardown::nothing()),
        };
        let mut instantiated = None;
        let result = sandbox::run_guarded(&mut store, budget, async |store| {
            let instance = plugin.pre.instantiate_async(&mut *store).await?;
            instantiated = Some(Instant::now());
            instance.sanctum_plugin_tools().call_call(&mut *store, tool, args_json).await
        })
        .await;
        let guest_done = Instant::now();
        if let Some(instantiated) = instantiated {
            self.metrics.call_phase(CallPhase::Instantiate, instantiated - started);
            self.metrics.call_phase(CallPhase::Guest, guest_done - instantiated);
        }
        log_captured(&plugin.info.name, &store);
        let dropped = store.data().reporter.dropped();
        if dropped > 0 {
            tracing::debug!(plugin = %plugin.info.name, dropped, "plugin events dropped");
        }
        let denials = store.data().denials();
        let result = match result {
            Err(failure) => Err(failure),
            Ok(Ok(output)) => Ok(loader::convert_output(output, limits.max_output_bytes)),
            Ok(Err(error)) if denials.is_empty() => Err(CallFailure::Tool(error.message)),
            // The guest only learnt "denied"; tell the model (and the operator) which grant is missing.
            Ok(Err(error)) => Err(CallFailure::Tool(format!("{} [sanctum: {}]", error.message, denials.join("; ")))),
        };
        (result, guest_done, Teardown::new(store, self.metrics.clone()))
    }
}

fn log_captured(plugin: &str, store: &wasmtime::Store<CallState>) {
    let captured = sandbox::captured(store);
    // Guest output may contain argument values, so it is logged at debug only.
    if !captured.stdout.is_empty() {
        tracing::debug!(plugin, stdout = %String::from_utf8_lossy(&captured.stdout), "plugin stdout");
    }
    if !captured.stderr.is_empty() {
        tracing::debug!(plugin, stderr = %String::from_utf8_lossy(&captured.stderr), "plugin stderr");
    }
    if captured.discarded > 0 {
        tracing::debug!(plugin, bytes = captured.discarded, "plugin output past the capture cap was discarded");
    }
}

/// Cut `text` to at most `max` bytes without splitting a character.
pub(crate) fn truncate_utf8(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}
