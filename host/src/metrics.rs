//! Prometheus metrics: the one registry of counters, gauges and histograms, and its text
//! encoding for `GET /metrics`. A leaf module like `audit`: any layer may record through a
//! [`Metrics`] handle passed down at start-up; none depends on how metrics are exported.
//!
//! Labels are bounded by what the operator loaded (tool names) or by closed sets (outcomes,
//! failure and capability kinds, transports), never by anything a client sends, so a client
//! cannot grow the registry. Nothing here sees argument values.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: String,
}

/// Where a tool call's time goes, from the MCP handler down to the guest.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum CallPhase {
    /// The MCP layer's whole `tools/call` handling; every phase below happens inside it.
    Handler,
    /// Checking the arguments against the tool's input schema (and re-encoding them).
    Validate,
    /// Waiting in the worker's queue.
    Queue,
    /// A fresh store and WASI context, and instantiating the plugin in it.
    Instantiate,
    /// The guest's `call` export, host services it used included.
    Guest,
    /// Converting and redacting the output, the audit record.
    Finish,
    /// Returning the sandbox's memories and tables to the pool, after the answer has gone (the
    /// worker's time, not the caller's: it is outside `handler`).
    Teardown,
}

impl CallPhase {
    fn label(self) -> &'static str {
        match self {
            Self::Handler => "handler",
            Self::Validate => "validate",
            Self::Queue => "queue",
            Self::Instantiate => "instantiate",
            Self::Guest => "guest",
            Self::Finish => "finish",
            Self::Teardown => "teardown",
        }
    }
}

impl EncodeLabelValue for CallPhase {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>) -> std::fmt::Result {
        EncodeLabelValue::encode(&self.label(), encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: CallPhase,
}

/// Phase buckets: 1 µs to about 8 s, doubling; most phases of a trivial call are microseconds.
fn phase_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 2.0, 24))
}

/// Call latency buckets: 1 ms to about 65 s, doubling, which covers a trivial tool and one
/// that runs into a long deadline.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// A cloneable handle to the process's metrics. Cloning shares the registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    calls: Family<CallLabels, Counter>,
    call_seconds: Family<ToolLabel, Histogram, fn() -> Histogram>,
    phase_seconds: Family<PhaseLabel, Histogram, fn() -> Histogram>,
    sandbox_failures: Family<KindLabel, Counter>,
    capability_denials: Family<KindLabel, Counter>,
    queue_depth: Gauge,
    calls_in_flight: Gauge,
    open_sessions: Family<TransportLabel, Gauge>,
    approvals: ApprovalMetrics,
    jobs: JobMetrics,
}

/// Host-supervised jobs: how many run, and how long finished ones took, by how they ended.
#[derive(Clone)]
struct JobMetrics {
    running: Gauge,
    seconds: Family<OutcomeLabel, Histogram, fn() -> Histogram>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// Job durations: 100 ms to about 1.8 days, quadrupling.
fn job_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 4.0, 12))
}

impl JobMetrics {
    fn register(registry: &mut Registry) -> Self {
        let running = Gauge::default();
        registry.register("jobs_running", "Host-supervised jobs running now", running.clone());
        let seconds: Family<OutcomeLabel, Histogram, fn() -> Histogram> = Family::new_with_constructor(job_histogram);
        registry.register(
            "job_duration_seconds",
            "How long finished jobs ran, by outcome (exited, signaled, timeout, cancelled, shutdown, lost)",
            seconds.clone(),
        );
        Self { running, seconds }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every sanctum metric registered (so each appears, at zero where
    /// it has no labels, before anything happens).
    /// No `Default`: a handle made on the side would record where nothing reads it, so every
    /// layer is handed the process's one registry at construction.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sanctum");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register("calls", "Tool calls by tool and outcome (ok or the failure kind)", calls.clone());
        let call_seconds: Family<ToolLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "call_duration_seconds",
            "Tool call latency as the registry sees it: queueing plus running",
            call_seconds.clone(),
        );
        let phase_seconds: Family<PhaseLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(phase_histogram);
        registry.register(
            "call_phase_seconds",
            "Time of each phase of a tool call (handler contains validate, queue, instantiate, guest and finish)",
            phase_seconds.clone(),
        );
        let sandbox_failures = Family::<KindLabel, Counter>::default();
        registry.register(
            "sandbox_failures",
            "Calls the sandbox stopped, by kind (crashed: a trap; timeout, memory_limit, stack_overflow, cancelled)",
            sandbox_failures.clone(),
        );
        let capability_denials = Family::<KindLabel, Counter>::default();
        registry.register(
            "capability_denials",
            "Capability uses the policy refused, by kind (command, http, ...)",
            capability_denials.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Calls waiting for the worker, not counting the running one",
            queue_depth.clone(),
        );
        let calls_in_flight = Gauge::default();
        registry.register("calls_in_flight", "Calls admitted and not yet answered", calls_in_flight.clone());
        let open_sessions = Family::<TransportLabel, Gauge>::default();
        registry.register("open_sessions", "Open MCP sessions, by transport", open_sessions.clone());
        let approvals = ApprovalMetrics::register(&mut registry);
        let jobs = JobMetrics::register(&mut registry);
        Self {
            registry: Arc::new(Mutex::new(registry)),
            calls,
            call_seconds,
            phase_seconds,
            sandbox_failures,
            capability_denials,
            queue_depth,
            calls_in_flight,
            open_sessions,
            approvals,
            jobs,
        }
    }

    /// One finished call: `outcome` is `ok` or a short failure kind.
    pub fn call_finished(&self, tool: &str, outcome: &str, elapsed: Duration) {
        self.calls.get_or_create(&CallLabels { tool: tool.to_owned(), outcome: outcome.to_owned() }).inc();
        self.call_seconds.get_or_create(&ToolLabel { tool: tool.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// How long one phase of one call took.
    pub fn call_phase(&self, phase: CallPhase, elapsed: Duration) {
        self.phase_seconds.get_or_create(&PhaseLabel { phase }).observe(elapsed.as_secs_f64());
    }

    /// A call the sandbox stopped: a trap, a deadline, the memory cap, ...
    pub fn sandbox_failure(&self, kind: &str) {
        self.sandbox_failures.get_or_create(&KindLabel { kind: kind.to_owned() }).inc();
    }

    /// A capability use the policy refused; `kind` is the capability (`command`, `http`, ...).
    pub fn capability_denied(&self, kind: &str) {
        self.capability_denials.get_or_create(&KindLabel { kind: kind.to_owned() }).inc();
    }

    /// Calls waiting for the worker (sampled when metrics are scraped).
    pub fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Calls admitted and not yet answered (sampled when metrics are scraped).
    pub fn set_calls_in_flight(&self, calls: usize) {
        self.calls_in_flight.set(i64::try_from(calls).unwrap_or(i64::MAX));
    }

    /// Open sessions of one transport (`streamable_http`, `sse`), for whoever owns sessions.
    pub fn set_open_sessions(&self, transport: &str, sessions: usize) {
        self.open_sessions
            .get_or_create(&TransportLabel { transport: transport.to_owned() })
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
    }

    /// Everything, in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let Ok(registry) = self.registry.lock() else { return text };
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::error!(error = %e, "metrics do not encode");
        }
        text
    }
}

/// Calls held for an operator's approval (`approvals.rs`).
#[derive(Clone)]
struct ApprovalMetrics {
    pending: Gauge,
    /// By step: `requested`, `approved`, `denied`, `expired`, `abandoned`, `ran` (a closed set).
    steps: Family<StepLabel, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    step: String,
}

impl ApprovalMetrics {
    fn register(registry: &mut Registry) -> Self {
        let pending = Gauge::default();
        registry.register("approvals_pending", "Tool calls waiting for an operator's approval", pending.clone());
        let steps = Family::<StepLabel, Counter>::default();
        registry.register(
            "approvals",
            "Steps of calls held for approval (requested, approved, denied, expired, abandoned, ran)",
            steps.clone(),
        );
        Self { pending, steps }
    }
}

impl Metrics {
    /// Calls waiting for an operator's approval now.
    pub fn set_approvals_pending(&self, pending: usize) {
        self.approvals.pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Host-supervised jobs running now.
    pub fn set_jobs_running(&self, running: usize) {
        self.jobs.running.set(i64::try_from(running).unwrap_or(i64::MAX));
    }

    /// A job ended (`outcome` from the supervisor's closed set) after `elapsed`.
    pub fn job_finished(&self, outcome: &str, elapsed: Duration) {
        self.jobs.seconds.get_or_create(&OutcomeLabel { outcome: outcome.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// One step of a held call (`step` comes from the approvals book's closed set).
    pub fn approval_step(&self, step: &str) {
        self.approvals.steps.get_or_create(&StepLabel { step: step.to_owned() }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_recorded_values_with_their_labels() {
        let metrics = Metrics::new();
        metrics.call_finished("echo__echo", "ok", Duration::from_millis(3));
        metrics.call_finished("echo__echo", "ok", Duration::from_millis(5));
        metrics.sandbox_failure("crashed");
        metrics.capability_denied("command");
        metrics.set_queue_depth(2);
        metrics.set_open_sessions("sse", 1);
        metrics.call_phase(CallPhase::Guest, Duration::from_micros(20));
        let text = metrics.encode();
        assert!(text.contains(r#"sanctum_calls_total{tool="echo__echo",outcome="ok"} 2"#), "{text}");
        assert!(text.contains(r#"sanctum_call_duration_seconds_count{tool="echo__echo"} 2"#), "{text}");
        assert!(text.contains(r#"sanctum_sandbox_failures_total{kind="crashed"} 1"#), "{text}");
        assert!(text.contains(r#"sanctum_capability_denials_total{kind="command"} 1"#), "{text}");
        assert!(text.contains("sanctum_queue_depth 2"), "{text}");
        assert!(text.contains(r#"sanctum_open_sessions{transport="sse"} 1"#), "{text}");
        assert!(text.contains(r#"sanctum_call_phase_seconds_count{phase="guest"} 1"#), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
