//! The per-call sandbox: a fresh `Store` with WASI granting nothing, captured and capped
//! stdout/stderr, a memory limit, and an epoch deadline that also honours cancellation.
//!
//! Owns the store's data ([`CallState`]) and the translation of a failed call into a
//! [`CallFailure`]. It does not know which export is called; `mod.rs` drives that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::audit::Audit;

use super::capabilities::http::EgressHooks;
use super::capture::CappedOutput;
use super::redact::Redactor;
use super::reporter::Reporter;
use crate::model::CallContext;
use crate::model::CallFailure;
use crate::model::PluginGrants;

/// Resource-table entries a guest may hold (streams, pollables). Generous for real plugins,
/// small enough that a leak loop cannot exhaust host memory through the table.
const MAX_TABLE_ENTRIES: usize = 10_000;

/// Extra time the host waits after the epoch deadline before it drops the call outright, for a
/// guest stuck inside a host call where epochs cannot interrupt it.
const HARD_STOP_GRACE: Duration = Duration::from_secs(2);

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
    /// The server's jobs (none while loading, validating, or without a jobs directory).
    pub(crate) jobs: Option<super::jobs::Supervisor>,
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
    stdout: CappedOutput,
    stderr: CappedOutput,
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

/// Bytes the guest wrote to stdout and stderr (each capped), and how many past the caps were
/// dropped.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) stdout: bytes::Bytes,
    pub(crate) stderr: bytes::Bytes,
    pub(crate) discarded: u64,
}

/// Who is calling what, for the sandbox of one call.
pub(crate) struct CallSite<'a> {
    pub(crate) plugin: &'a str,
    pub(crate) digest: crate::digest::ComponentDigest,
    pub(crate) tool: &'a str,
    pub(crate) grants: &'a Arc<PluginGrants>,
    pub(crate) audit: &'a Audit,
    pub(crate) jobs: Option<&'a super::jobs::Supervisor>,
}

/// A store ready to instantiate a plugin in, with its deadline armed.
pub(crate) fn new_store(
    engine: &Engine,
    site: &CallSite<'_>,
    budget: Duration,
    ctx: CallContext,
) -> Result<Store<CallState>, CallFailure> {
    let limits = &site.grants.limits;
    let stdout = CappedOutput::new(limits.captured_output_bytes);
    let stderr = CappedOutput::new(limits.captured_output_bytes);
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
        jobs: site.jobs.cloned(),
        deadline: Instant::now() + budget,
        denials: std::sync::Mutex::default(),
    });
    let state = CallState {
        scope: Arc::clone(&scope),
        wasi,
        table,
        http: WasiHttpCtx::new(),
        egress: EgressHooks { scope },
        limiter: MemoryLimiter::new(limits.memory_bytes),
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

/// Give a store kept between uses (the validator's) a fresh `budget` from now.
pub(crate) fn rearm_deadline(store: &mut Store<CallState>, budget: Duration) {
    store.data_mut().interrupted = None;
    arm_deadline(store, budget);
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
    let ((stdout, stdout_discarded), (stderr, stderr_discarded)) = (state.stdout.contents(), state.stderr.contents());
    Captured { stdout, stderr, discarded: stdout_discarded.saturating_add(stderr_discarded) }
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
            let panic = panic_message(&state.stderr.last_written());
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

/// Caps what one call's instance may hold, summed over every linear memory and table of every
/// core instance in it (a component composed of nested components has several of each), and
/// remembers whether it had to refuse. Initial sizes count: wasmtime reports each memory and
/// table it creates as a growth from zero.
struct MemoryLimiter {
    max_bytes: usize,
    /// Bytes granted so far: memories plus tables at [`TABLE_ELEMENT_BYTES`] per element.
    used_bytes: usize,
    /// The last growth granted, taken back if wasmtime then fails to carry it out.
    last_granted: usize,
    denied: bool,
}

/// What a table element is charged against the budget: a pointer, as wasmtime stores one.
const TABLE_ELEMENT_BYTES: usize = 8;

/// Tables hold function references; one table may not grow past this many elements.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Linear memories, tables and core instances one call's instance may create, whatever their
/// size (each costs host bookkeeping even when empty).
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;
const MAX_INSTANCES: usize = 64;

impl MemoryLimiter {
    fn new(max_bytes: usize) -> Self {
        Self { max_bytes, used_bytes: 0, last_granted: 0, denied: false }
    }

    /// Grant `more` bytes if the call's total stays within the cap.
    fn grant(&mut self, more: usize) -> bool {
        let total = self.used_bytes.saturating_add(more);
        if total > self.max_bytes {
            self.denied = true;
            return false;
        }
        self.used_bytes = total;
        self.last_granted = more;
        true
    }

    fn take_back_last(&mut self) {
        self.used_bytes = self.used_bytes.saturating_sub(std::mem::take(&mut self.last_granted));
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grant(desired.saturating_sub(current)))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.take_back_last();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        Ok(self.grant(desired.saturating_sub(current).saturating_mul(TABLE_ELEMENT_BYTES)))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.take_back_last();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
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
    fn the_limiter_caps_the_sum_of_every_memory_and_table_and_remembers_refusing() {
        let mut limiter = MemoryLimiter::new(4 << 20);
        // Two memories created at 1 MiB each, one grows to 2 MiB: 3 MiB in all.
        assert!(limiter.memory_growing(0, 1 << 20, None).expect("no error"));
        assert!(limiter.memory_growing(0, 1 << 20, None).expect("no error"));
        assert!(limiter.memory_growing(1 << 20, 2 << 20, None).expect("no error"));
        assert!(!limiter.denied);
        // A third memory of 2 MiB would make 5 MiB: refused, although it alone is under the cap.
        assert!(!limiter.memory_growing(0, 2 << 20, None).expect("no error"));
        assert!(limiter.denied);
        // Tables count too, at a pointer per element.
        let half_mib = (1 << 19) / TABLE_ELEMENT_BYTES;
        assert!(limiter.table_growing(0, half_mib, None).expect("no error"));
        assert!(!limiter.table_growing(0, half_mib + 1, None).expect("no error"), "the budget is spent");
        // A growth wasmtime could not carry out is given back.
        let mut limiter = MemoryLimiter::new(2 << 20);
        assert!(limiter.memory_growing(0, 2 << 20, None).expect("no error"));
        limiter.memory_grow_failed(wasmtime::format_err!("no memory")).expect("no error");
        assert!(limiter.memory_growing(0, 2 << 20, None).expect("no error"));
    }
}
