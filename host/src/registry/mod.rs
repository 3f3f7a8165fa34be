//! The tool registry: which tools exist, under which names, with which schemas, and the gate
//! every call passes before it reaches the worker.
//!
//! Built from the loaded plugins (their plain descriptions plus an opaque handle each), and
//! rebuilt whole when plugins are reloaded: each generation is an immutable [`table`] swapped
//! in at once, and subscribers hear about every change to what is listed. It owns naming
//! (`<plugin>__<tool>`, or the bare `<tool>` a policy allows, refused on a clash), schema
//! admission, definition pins (changed tools are held back), argument validation, output-schema
//! checks and the built-in `health` tool. It knows nothing of MCP or HTTP; it forwards calls to
//! the [`WorkerHandle`] and never touches wasmtime.

mod approval;
mod gate;
mod health;
mod nulls;
mod schema;
mod table;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::access::{AccessPolicy, Caller, Effect, Listed, RuleRef};
use crate::audit::Audit;
use crate::ids::{PluginName, ToolName};
use crate::metrics::Metrics;
use crate::model::{Annotations, CallContext, CallFailure, Content};
use crate::pins::{PinError, Pins};
use crate::runtime::Plugin;
use crate::worker::{Checks, WorkerError, WorkerHandle};

pub use health::{HealthReport, PluginHealth};
use schema::CheckedSchema;
pub use table::HeldTool;
use table::Table;

/// Largest serialized arguments a call may pass to a plugin. They are copied into guest
/// memory, so this bounds what one call can make a plugin allocate before it even starts.
pub const MAX_ARGUMENT_BYTES: usize = 1 << 20;

/// The name of the built-in health tool.
pub const HEALTH_TOOL: &str = "health";

/// A tool as clients see it.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: ToolName,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Arc<Map<String, Value>>,
    pub output_schema: Option<Arc<Map<String, Value>>>,
    pub annotations: Annotations,
}

/// Where a plugin tool is served from, and how its calls and results are checked.
#[derive(Debug, Clone)]
struct Route {
    /// The plugin version this table routes to; a call holds it until it finishes.
    plugin: Arc<Plugin>,
    tool: String,
    input: CheckedSchema,
    output: Option<CheckedSchema>,
}

/// A plugin or tool that was not admitted, and why. Reported at start-up; the rest serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {reason}")]
pub struct Refusal {
    pub subject: String,
    pub reason: String,
}

/// A successful call, ready to be rendered for a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub content: Vec<Content>,
    pub structured: Option<Value>,
}

/// Why a call produced no result. The MCP layer decides how each is shown.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    #[error("invalid arguments for {tool}: {}", problems.join("; "))]
    InvalidArguments { tool: String, problems: Vec<String> },
    #[error("{0}")]
    Worker(#[from] WorkerError),
    #[error("{0}")]
    Failed(#[from] CallFailure),
    #[error(
        "tool {tool} changed since it was approved; an operator must run `sanctum plugins approve {tool}` \
         before it can be used"
    )]
    HeldBack { tool: String },
    /// The operator's access rules refuse this caller this call.
    #[error("{}", gate::refusal_message(tool, rule.as_ref()))]
    Refused { tool: String, rule: Option<RuleRef> },
    /// The call needs an operator's approval, which cannot be asked for now.
    #[error("{tool} needs an operator's approval, which cannot be requested: {reason}")]
    ApprovalUnavailable { tool: String, reason: String },
    /// An operator refused the call.
    #[error("request {id} to call {tool} was denied by an operator: {reason}")]
    ApprovalDenied { tool: String, id: String, reason: String },
    /// Nobody approved the call in time (or the server is stopping).
    #[error("request {id} to call {tool} was not approved: {reason}; the call did not run")]
    ApprovalExpired { tool: String, id: String, reason: String },
}

/// What a table swap did.
#[derive(Debug, Default)]
pub struct Swap {
    /// Plugins or tools the new table refused.
    pub refusals: Vec<Refusal>,
    /// Whether clients see a different tool list (and were told so).
    pub listing_changed: bool,
}

/// All tools, in name order (a `BTreeMap`, so listings are deterministic).
#[derive(Debug)]
pub struct Registry {
    /// The current generation; readers clone the `Arc` and never hold the lock across a call.
    table: RwLock<Arc<Table>>,
    /// Approved tool definitions; new tools are recorded here and saved.
    pins: Mutex<Pins>,
    /// Plugin files that failed to (re)load, shown by `health` until they load again.
    problems: Mutex<Vec<String>>,
    /// Bumped whenever the listed tools change; the MCP layer turns it into `list_changed`.
    changes: tokio::sync::watch::Sender<u64>,
    worker: WorkerHandle,
    /// Where calls are counted.
    metrics: Metrics,
    /// Calls admitted and not yet answered: what a graceful shutdown waits for.
    in_flight: Arc<AtomicUsize>,
    /// The access rules in force, kept to bind them to each new table.
    access: Mutex<Arc<AccessPolicy>>,
    /// Where access decisions are recorded.
    audit: Audit,
    /// Where calls needing an operator's approval wait; without one they are refused.
    approvals: Option<crate::approvals::Approvals>,
}

impl Registry {
    /// Admit the tools of `plugins`, refusing (and returning) what cannot be served.
    /// A plugin whose name is invalid or already taken is refused whole; a bad tool alone.
    /// Tools whose definition differs from its pin in `pins` are held back; new ones are pinned.
    /// Calls are counted in `metrics`.
    pub fn build(
        plugins: Vec<Arc<Plugin>>,
        worker: WorkerHandle,
        mut pins: Pins,
        metrics: Metrics,
    ) -> (Self, Vec<Refusal>) {
        let access = Arc::new(AccessPolicy::unrestricted());
        let (table, refusals) = Table::build(plugins, &mut pins, &access);
        if let Err(e) = pins.save_if_changed() {
            tracing::error!(error = %e, "cannot save the pin file");
        }
        let registry = Self {
            access: Mutex::new(access),
            audit: Audit::disabled(metrics.clone()),
            approvals: None,
            table: RwLock::new(Arc::new(table)),
            pins: Mutex::new(pins),
            problems: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
            worker,
            metrics,
            in_flight: Arc::default(),
        };
        (registry, refusals)
    }

    /// Record access decisions in `audit` (the runtime's trail) from now on.
    #[must_use]
    pub fn with_audit(mut self, audit: Audit) -> Self {
        self.audit = audit;
        self
    }

    /// Hold calls that need approval in `approvals` from now on.
    #[must_use]
    pub fn with_approvals(mut self, approvals: crate::approvals::Approvals) -> Self {
        self.approvals = Some(approvals);
        self
    }

    fn access_policy(&self) -> Arc<AccessPolicy> {
        Arc::clone(&self.access.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Enforce `policy` from now on. Sessions are told the tool list may have changed (the MCP
    /// layer works out whose listing actually did).
    pub fn set_access(&self, policy: Arc<AccessPolicy>) {
        *self.access.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&policy);
        {
            let mut current = self.table.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut table = Table::clone(&current);
            table.access = crate::access::Bound::new(policy, table.specs.keys().map(ToolName::as_str));
            *current = Arc::new(table);
        }
        self.changes.send_modify(|generation| *generation += 1);
    }

    fn current(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(table) => Arc::clone(&table),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Serve `plugins` from now on. The new table is built aside and swapped in at once;
    /// subscribers are told if the listed tools changed.
    pub fn replace(&self, plugins: Vec<Arc<Plugin>>) -> Swap {
        let (table, refusals) = {
            let mut pins = self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let built = Table::build(plugins, &mut pins, &self.access_policy());
            if let Err(e) = pins.save_if_changed() {
                tracing::error!(error = %e, "cannot save the pin file");
            }
            built
        };
        let listing_changed = {
            let mut current = self.table.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = current.listing != table.listing;
            *current = Arc::new(table);
            changed
        };
        if listing_changed {
            self.changes.send_modify(|generation| *generation += 1);
        }
        Swap { refusals, listing_changed }
    }

    /// Re-read the pin file (an operator approved something) and re-admit the same plugins.
    pub fn reload_pins(&self) -> Result<Swap, PinError> {
        {
            let mut pins = self.pins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(path) = pins.path().map(std::path::Path::to_owned) else {
                return Ok(Swap::default());
            };
            *pins = Pins::load(&path)?;
        }
        Ok(self.replace(self.current().sources.clone()))
    }

    /// The plugins served now.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.current().sources.clone()
    }

    /// Tools withheld because their definition changed since it was approved.
    pub fn held_back(&self) -> Vec<HeldTool> {
        self.current().held.values().cloned().collect()
    }

    /// Report plugin files that failed to load (replacing the previous report). `health` adds
    /// the plugins and tools the current table refused.
    pub fn set_problems(&self, problems: Vec<String>) {
        *self.problems.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = problems;
    }

    /// A receiver that wakes whenever the listed tools change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// How many times the listed tools have changed since start-up.
    pub fn generation(&self) -> u64 {
        *self.changes.borrow()
    }

    /// Every listed tool, sorted by name (a snapshot of the current generation).
    pub fn tools(&self) -> impl Iterator<Item = ToolSpec> + use<> {
        self.current().specs.values().cloned().collect::<Vec<_>>().into_iter()
    }

    /// The tools `caller` may call (some calls of, at least), sorted by name, with how each
    /// is listed; and the fingerprint of that listing, equal for two listings exactly when a
    /// client would see the same tools.
    pub fn tools_for(&self, caller: &Caller<'_>) -> (Vec<(ToolSpec, Listed)>, u64) {
        use std::hash::{Hash as _, Hasher as _};
        let table = self.current();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut tools = Vec::new();
        for (name, spec) in &table.specs {
            let Some(listed) = table.access.listed(caller, name.as_str()) else { continue };
            (name.as_str(), table.listing.get(name.as_str()), listed).hash(&mut hasher);
            tools.push((spec.clone(), listed));
        }
        (tools, hasher.finish())
    }

    /// What `health` and `/healthz` report.
    pub fn health(&self) -> HealthReport {
        let table = self.current();
        let mut problems = self.problems.lock().map(|p| p.clone()).unwrap_or_default();
        problems.extend(table.refusals.iter().map(|refusal| format!("refused {refusal}")));
        let held = table.held.keys().cloned().collect();
        HealthReport::new(&table.plugins, table.specs.len(), &self.worker).with_reload_state(problems, held)
    }

    /// Calls admitted and not yet answered (a shutdown drains these before it cancels).
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Validate `args` against the tool's schema and, only if they are valid, run the call.
    pub async fn call(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
        ctx: CallContext,
    ) -> Result<Completed, CallError> {
        if name == HEALTH_TOOL {
            let decision = gate::decide(&self.current().access, &self.audit, name, &Value::Object(Map::new()), &ctx);
            if !gate::is_open(&decision) {
                return Err(gate::refusal(name, decision));
            }
            return Ok(self.health().into_completed());
        }
        let _in_flight = InFlight::enter(&self.in_flight);
        let started = Instant::now();
        let result = self.call_plugin(name, args, ctx).await;
        self.count(name, &result, started.elapsed());
        result
    }

    /// Count a finished call. Unknown names are not counted: they come from the client, and a
    /// label per invented name would let a client grow the metrics without bound.
    fn count(&self, name: &str, result: &Result<Completed, CallError>, elapsed: Duration) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(CallError::UnknownTool(_)) => return,
            Err(CallError::InvalidArguments { .. }) => "invalid_arguments",
            Err(CallError::Worker(WorkerError::Busy { .. })) => "busy",
            Err(CallError::Worker(WorkerError::Stopped)) => "stopped",
            Err(CallError::HeldBack { .. }) => "held_back",
            Err(CallError::Refused { .. }) => "refused",
            Err(CallError::ApprovalUnavailable { .. } | CallError::ApprovalDenied { .. }) => "approval_denied",
            Err(CallError::ApprovalExpired { .. }) => "approval_expired",
            Err(CallError::Failed(failure)) => {
                if matches!(
                    failure,
                    CallFailure::Timeout(_)
                        | CallFailure::Cancelled
                        | CallFailure::MemoryLimit(_)
                        | CallFailure::StackOverflow
                        | CallFailure::Crashed(_)
                ) {
                    self.metrics.sandbox_failure(failure.kind());
                }
                failure.kind()
            }
        };
        self.metrics.call_finished(name, outcome, elapsed);
    }

    async fn call_plugin(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
        ctx: CallContext,
    ) -> Result<Completed, CallError> {
        let table = self.current();
        let Some(route) = table.routes.get(name) else {
            if table.held.contains_key(name) {
                return Err(CallError::HeldBack { tool: name.to_owned() });
            }
            return Err(CallError::UnknownTool(name.to_owned()));
        };
        let mut args = Value::Object(args.unwrap_or_default());
        nulls::drop_optional_nulls(&mut args, &route.input.json);
        let args_json = args.to_string();
        if args_json.len() > MAX_ARGUMENT_BYTES {
            let problem = format!("the arguments are {} bytes; the limit is {MAX_ARGUMENT_BYTES}", args_json.len());
            return Err(CallError::InvalidArguments { tool: name.to_owned(), problems: vec![problem] });
        }
        let decision = gate::decide(&table.access, &self.audit, name, &args, &ctx);
        let (approved, args_json) = match (decision.effect, &decision.rule) {
            (Effect::Allow, _) => (None, args_json),
            // `approve` is never a default, so it always comes with its rule.
            (Effect::Approve, Some(rule)) => {
                let approved = self.hold_for_approval(route, name, args, &args_json, rule, &ctx).await?;
                // Exactly what the operator saw: the book's own copy of the arguments.
                let json = approved.arguments().to_string();
                (Some(approved), json)
            }
            (Effect::Deny | Effect::Approve, _) => return Err(gate::refusal(name, decision)),
        };
        // Checked against the schemas by the worker, in the validator's sandbox.
        let checks =
            Checks { input: Some(route.input.source.clone()), output: route.output.as_ref().map(|o| o.source.clone()) };
        let result = self.worker.call(Arc::clone(&route.plugin), &route.tool, args_json, checks, ctx).await;
        if let (Some(approvals), Some(approved)) = (&self.approvals, &approved) {
            let outcome = match &result {
                Ok(Ok(_)) => "ok",
                Ok(Err(failure)) => failure.kind(),
                Err(WorkerError::Busy { .. }) => "busy",
                Err(WorkerError::Stopped) => "stopped",
            };
            approvals.ran(approved, outcome);
        }
        let output = match result? {
            Ok(output) => output,
            Err(CallFailure::InvalidArguments(problems)) => {
                return Err(CallError::InvalidArguments { tool: name.to_owned(), problems });
            }
            Err(failure) => return Err(failure.into()),
        };
        let structured = structured_content(output.structured.as_deref(), route.output.is_some())?;
        Ok(Completed { content: output.content, structured })
    }
}

/// Counts a call as in flight from admission until its result (or its cancellation: the
/// guard drops with the request future).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call's structured content as clients receive it. Content that is not a JSON object (what
/// MCP's `structuredContent` must be) fails the call the same way whether or not the tool
/// declares an output schema; a declared schema also makes the content required.
fn structured_content(text: Option<&str>, schema_declared: bool) -> Result<Option<Value>, CallFailure> {
    let Some(text) = text else {
        if schema_declared {
            return Err(CallFailure::InvalidResult(
                "the tool declares an output schema but returned no structured content".into(),
            ));
        }
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(Some(value)),
        Ok(_) => Err(CallFailure::InvalidResult("structured content must be a JSON object".into())),
        Err(e) => Err(CallFailure::InvalidResult(format!("structured content is not valid JSON: {e}"))),
    }
}

/// The name `tool` of `plugin` is served under: `<plugin>__<tool>`, or the tool's own name when
/// the operator's policy sets `bare_tool_names` for the plugin (what admission then checks for
/// clashes). Also what `sanctum plugins` shows and approves.
pub fn served_name(plugin: &Plugin, tool: &str) -> String {
    if plugin.grants().bare_tool_names {
        tool.to_owned()
    } else {
        format!("{}{}{tool}", plugin.info().name, crate::ids::SEPARATOR)
    }
}

fn admit_tool(
    plugin: &PluginName,
    tool: &crate::model::ToolInfo,
    source: &Arc<Plugin>,
) -> Result<(ToolSpec, Route), String> {
    let name = if source.grants().bare_tool_names {
        ToolName::bare(&tool.name)
    } else {
        ToolName::qualified(plugin, &tool.name)
    };
    let name = name.map_err(|e| e.to_string())?;
    if tool.description.trim().is_empty() {
        return Err("the tool has no description; models choose tools by it".into());
    }
    let input = CheckedSchema::admit(&tool.input_schema).map_err(|e| format!("input schema: {e}"))?;
    let output = tool
        .output_schema
        .as_deref()
        .map(CheckedSchema::admit)
        .transpose()
        .map_err(|e| format!("output schema: {e}"))?;
    let spec = ToolSpec {
        name,
        title: tool.title.clone(),
        description: tool.description.clone(),
        input_schema: Arc::clone(&input.json),
        output_schema: output.as_ref().map(|o| Arc::clone(&o.json)),
        annotations: tool.annotations,
    };
    Ok((spec, Route { plugin: Arc::clone(source), tool: tool.name.clone(), input, output }))
}

#[cfg(test)]
pub(crate) mod tests;
