//! The per-call sandbox: a fresh `Store` with WASI granting nothing, captured and capped
//! stdout/stderr, a memory limit, and an epoch deadline that also honours cancellation.
//!
//! Owns the store's data ([`CallState`]) and the translation of a failed call into a
//! [`CallFailure`]. It does not know which export is called; `mod.rs` drives that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::audit::Audit;

use super::capabilities::http::EgressHooks;
use super::error::CallFailure;
use super::grants::PluginGrants;
use super::redact::Redactor;
use super::reporter::Reporter;
use super::types::CallEvent;

/// Resource-table entries a guest may hold (streams, pollables). Generous for real plugins,
/// small enough that a leak loop cannot exhaust host memory through the table.
const MAX_TABLE_ENTRIES: usize = 10_000;

/// Extra time the host waits after the epoch deadline before it drops the call outright, for a
/// guest stuck inside a host call where epochs cannot interrupt it.
const HARD_STOP_GRACE: Duration = Duration::from_secs(2);

/// What a call is given by its caller: a way to be cancelled, a place to report events.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub cancel: CancellationToken,
    /// Where progress and log reports go; `None` drops them (e.g. during `describe()`).
    pub events: Option<mpsc::Sender<CallEvent>>,
    /// The caller's agent id, if the client sent one: for the audit trail, and for plugins'
    /// own records through `host.agent-id` (never for access decisions).
    pub agent_id: Option<String>,
    /// The authenticated principal the call came from, for the audit trail.
    pub principal: Option<String>,
}

/// Why the epoch callback stopped the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Timeout,
    Cancelled,
}

/// Who is calling what, under which grants, until when: shared by every capability of one call
/// (the egress hooks hold it too, since wasi-http needs them as a separate value).
pub(crate) struct CallScope {
    pub(crate) plugin: String,
    /// SHA-256 of the plugin's component, lower-case hex, for the audit trail.
    pub(crate) plugin_sha256: String,
    /// The tool being called (`describe` while loading).
    pub(crate) tool: String,
    pub(crate) grants: Arc<PluginGrants>,
    pub(crate) audit: Audit,
    /// The agent id the client claimed, if any.
    pub(crate) agent_id: Option<String>,
    /// When the call's budget runs out; host calls get at most what is left.
    deadline: Instant,
    /// What the policy refused during this call, to name the missing grant in the tool error.
    denials: std::sync::Mutex<Vec<String>>,
}

impl CallScope {
    /// Time left before the call's deadline.
    pub(crate) fn remaining_budget(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub(crate) fn record_denial(&self, denial: String) {
        if let Ok(mut denials) = self.denials.lock() {
            denials.push(denial);
        }
    }
}

/// The data of one call's `Store`. Dropped with the store at the end of the call.
pub(crate) struct CallState {
    pub(crate) scope: Arc<CallScope>,
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    egress: EgressHooks,
    limiter: MemoryLimiter,
    pub(crate) reporter: Reporter,
    pub(crate) cancel: CancellationToken,
    interrupted: Option<Interrupt>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

/// Bytes the guest wrote to stdout and stderr (each capped).
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) stdout: bytes::Bytes,
    pub(crate) stderr: bytes::Bytes,
}

/// Who is calling what, for the sandbox of one call.
pub(crate) struct CallSite<'a> {
    pub(crate) plugin: &'a str,
    pub(crate) digest: crate::digest::ComponentDigest,
    pub(crate) tool: &'a str,
    pub(crate) grants: &'a Arc<PluginGrants>,
    pub(crate) audit: &'a Audit,
}

/// A store ready to instantiate a plugin in, with its deadline armed.
pub(crate) fn new_store(
    engine: &Engine,
    site: &CallSite<'_>,
    budget: Duration,
    ctx: CallContext,
) -> Result<Store<CallState>, CallFailure> {
    let limits = &site.grants.limits;
    let stdout = MemoryOutputPipe::new(limits.captured_output_bytes);
    let stderr = MemoryOutputPipe::new(limits.captured_output_bytes);
    // Deny by default: no args, no env, no preopened dirs, no sockets, no name lookup, stdin
    // closed. Only the capped pipes and what the operator granted are added.
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(stdout.clone()).stderr(stderr.clone());
    for (key, value) in &site.grants.env {
        builder.env(key, value);
    }
    for dir in &site.grants.directories {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder.preopened_dir(&dir.host, &dir.guest, perms).map_err(|e| {
            CallFailure::Sandbox(format!("granted directory {} cannot be opened: {e}", dir.host.display()))
        })?;
    }
    let wasi = builder.build();
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_TABLE_ENTRIES);
    let scope = Arc::new(CallScope {
        plugin: site.plugin.to_owned(),
        plugin_sha256: site.digest.hex(),
        tool: site.tool.to_owned(),
        grants: Arc::clone(site.grants),
        audit: site.audit.clone(),
        agent_id: ctx.agent_id,
        deadline: Instant::now() + budget,
        denials: std::sync::Mutex::default(),
    });
    let state = CallState {
        scope: Arc::clone(&scope),
        wasi,
        table,
        http: WasiHttpCtx::new(),
        egress: EgressHooks { scope },
        limiter: MemoryLimiter { max_bytes: limits.memory_bytes, denied: false },
        reporter: Reporter::new(site.plugin, ctx.events, limits, Redactor::new(site.grants.secret_values())),
        cancel: ctx.cancel,
        interrupted: None,
        stdout,
        stderr,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    arm_deadline(&mut store, budget);
    Ok(store)
}

impl CallState {
    /// What the policy refused during this call (so far only outgoing requests report here).
    pub(crate) fn denials(&self) -> Vec<String> {
        self.scope.denials.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

/// Interrupt the guest at the first epoch tick after `budget` or after cancellation, and let
/// the executor run other tasks at every tick in between.
fn arm_deadline(store: &mut Store<CallState>, budget: Duration) {
    let started = Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut cx| {
        let state = cx.data_mut();
        let interrupt = if state.cancel.is_cancelled() {
            Some(Interrupt::Cancelled)
        } else if started.elapsed() >= budget {
            Some(Interrupt::Timeout)
        } else {
            None
        };
        match interrupt {
            Some(why) => {
                state.interrupted = Some(why);
                Err(Trap::Interrupt.into())
            }
            None => Ok(UpdateDeadline::Yield(1)),
        }
    });
}

/// Run `call` against the store with a hard wall-clock stop as the last line of defence.
pub(crate) async fn run_guarded<F, R>(store: &mut Store<CallState>, budget: Duration, call: F) -> Result<R, CallFailure>
where
    F: AsyncFnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
{
    let outcome = tokio::time::timeout(budget + HARD_STOP_GRACE, call(store)).await;
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(classify(&err, store.data(), budget)),
        Err(_elapsed) => Err(CallFailure::Timeout(budget)),
    }
}

/// Take what the guest printed, leaving the store's pipes empty.
pub(crate) fn captured(store: &Store<CallState>) -> Captured {
    let state = store.data();
    Captured { stdout: state.stdout.contents(), stderr: state.stderr.contents() }
}

/// Turn a wasmtime error into the reason the model and the operator are told.
fn classify(err: &wasmtime::Error, state: &CallState, budget: Duration) -> CallFailure {
    match state.interrupted {
        Some(Interrupt::Cancelled) => return CallFailure::Cancelled,
        Some(Interrupt::Timeout) => return CallFailure::Timeout(budget),
        None => {}
    }
    if state.limiter.denied {
        // Rust guests abort when allocation fails, so the trap itself says "unreachable";
        // the limiter knows the real cause.
        return CallFailure::MemoryLimit(state.limiter.max_bytes);
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return CallFailure::Crashed(format!("it exited with status {}", exit.0));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => CallFailure::StackOverflow,
        Some(Trap::MemoryOutOfBounds) => CallFailure::Crashed(
            "it accessed memory out of bounds (an overflow of a Rust guest's own stack shows up this way)".into(),
        ),
        Some(trap) => {
            let panic = panic_message(&state.stderr.contents());
            CallFailure::Crashed(match panic {
                Some(message) => format!("{message} ({trap})"),
                None => trap.to_string(),
            })
        }
        None => CallFailure::Crashed(format!("{err:#}")),
    }
}

/// The longest panic message we quote back; the full stderr is in the host's debug log.
const MAX_PANIC_MESSAGE: usize = 300;

/// The first line of a Rust panic report in the guest's stderr, if there is one.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let start = text.find("panicked at")?;
    let report: Vec<&str> = text[start..].lines().take(2).map(str::trim).collect();
    let mut message = report.join(" ");
    super::truncate_utf8(&mut message, MAX_PANIC_MESSAGE);
    Some(message)
}

/// Caps linear memory and remembers whether it had to refuse a growth.
struct MemoryLimiter {
    max_bytes: usize,
    denied: bool,
}

/// Tables hold function references; this bounds them independently of memory.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        if !allowed {
            self.denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_panic_report_is_quoted_in_one_line() {
        let stderr = b"thread '<unnamed>' panicked at src/lib.rs:10:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(stderr).as_deref(), Some("panicked at src/lib.rs:10:5: boom"));
        assert_eq!(panic_message(b"just noise"), None);
    }

    #[test]
    fn the_limiter_refuses_growth_past_the_cap_and_remembers_it() {
        let mut limiter = MemoryLimiter { max_bytes: 1 << 20, denied: false };
        assert!(limiter.memory_growing(0, 1 << 20, None).expect("no error"));
        assert!(!limiter.denied);
        assert!(!limiter.memory_growing(1 << 20, 2 << 20, None).expect("no error"));
        assert!(limiter.denied);
    }
}
