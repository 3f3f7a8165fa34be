//! The single worker: plugin calls run strictly one at a time, in arrival order.
//!
//! [`WorkerHandle`] is a cheap, cloneable sender over a bounded queue. A private loop on its
//! own thread (with its own single-threaded tokio runtime) runs every call, so guest CPU time
//! never runs on the threads that serve HTTP. Each job carries the [`Plugin`] version it was
//! routed to: a plugin replaced by a hot reload still finishes the calls already given it. When the queue is
//! full the caller is told [`WorkerError::Busy`] at once; nothing on the HTTP side ever waits
//! for room in the queue.
//!
//! The worker also checks each call against the tool's schemas ([`Checks`]): the arguments
//! before the plugin runs, the structured result after. Schemas are plugin-provided and may be
//! arbitrarily costly to evaluate, so this happens here, in the runtime's validator sandbox
//! under a deadline, never on the threads that serve HTTP.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::{CallPhase, Metrics};
use crate::model::{CallContext, CallFailure, SchemaSource, ToolOutput};
use crate::runtime::{Plugin, Runtime, Teardown, ValidationError};

/// Why the worker did not take a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerError {
    #[error("the server is busy: {capacity} calls are already waiting; try again shortly")]
    Busy { capacity: usize },
    #[error("the worker has stopped")]
    Stopped,
}

/// The result of a call the worker ran.
pub type CallResult = Result<ToolOutput, CallFailure>;

/// The schemas one call is checked against: the arguments before the plugin runs, its
/// structured content (when it returns any) after.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    pub input: Option<SchemaSource>,
    pub output: Option<SchemaSource>,
}

/// What the worker is asked to do.
enum Work {
    Call(Job),
    /// Check arguments against a schema without running anything: what a call held for an
    /// operator's approval goes through first, so nobody approves a call that cannot run.
    Validate {
        schema: SchemaSource,
        args_json: String,
        reply: oneshot::Sender<Result<(), CallFailure>>,
    },
}

struct Job {
    plugin: Arc<Plugin>,
    tool: String,
    args_json: String,
    checks: Checks,
    ctx: CallContext,
    queued_at: Instant,
    reply: oneshot::Sender<Result<CallResult, WorkerError>>,
}

/// A handle to the worker. Clone it freely; the worker stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    queue: mpsc::Sender<Work>,
    capacity: usize,
    running: Arc<std::sync::atomic::AtomicBool>,
}

impl WorkerHandle {
    /// Start the worker thread over `runtime` (shared with whoever loads plugins).
    /// `capacity` is how many calls may wait behind the running one.
    /// Queueing and validation times go to `metrics`.
    pub fn spawn(runtime: Arc<Runtime>, capacity: usize, metrics: Metrics) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        let (queue, jobs) = mpsc::channel(capacity);
        let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = WorkerLoop { runtime, jobs, running: Arc::clone(&running), metrics };
        let executor = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("sanctum-worker".into()).spawn(move || executor.block_on(state.run()))?;
        Ok(Self { queue, capacity, running })
    }

    /// Queue a call and wait for its result. Fails at once with `Busy` if the queue is full.
    pub async fn call(
        &self,
        plugin: Arc<Plugin>,
        tool: &str,
        args_json: String,
        checks: Checks,
        ctx: CallContext,
    ) -> Result<CallResult, WorkerError> {
        let (reply, result) = oneshot::channel();
        let job = Job { plugin, tool: tool.to_owned(), args_json, checks, ctx, queued_at: Instant::now(), reply };
        self.enqueue(Work::Call(job))?;
        result.await.unwrap_or(Err(WorkerError::Stopped))
    }

    /// Check `args_json` against `schema` in the validator's sandbox, running no plugin code.
    /// Queued like a call (and "busy" like one when the queue is full).
    pub async fn validate(
        &self,
        schema: SchemaSource,
        args_json: String,
    ) -> Result<Result<(), CallFailure>, WorkerError> {
        let (reply, result) = oneshot::channel();
        self.enqueue(Work::Validate { schema, args_json, reply })?;
        result.await.map_err(|_| WorkerError::Stopped)
    }

    fn enqueue(&self, work: Work) -> Result<(), WorkerError> {
        self.queue.try_send(work).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => WorkerError::Busy { capacity: self.capacity },
            mpsc::error::TrySendError::Closed(_) => WorkerError::Stopped,
        })
    }

    /// Calls waiting in the queue, not counting the one running.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Whether a call is running right now.
    pub fn is_running(&self) -> bool {
        self.running.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct WorkerLoop {
    runtime: Arc<Runtime>,
    jobs: mpsc::Receiver<Work>,
    running: Arc<std::sync::atomic::AtomicBool>,
    metrics: Metrics,
}

impl WorkerLoop {
    async fn run(mut self) {
        while let Some(work) = self.jobs.recv().await {
            let job = match work {
                Work::Call(job) => job,
                Work::Validate { schema, args_json, reply } => {
                    let _ = reply.send(self.validate_input(&schema, &args_json).await);
                    continue;
                }
            };
            let waiting = self.jobs.len();
            let queued = job.queued_at.elapsed();
            self.metrics.call_phase(CallPhase::Queue, queued);
            let queued_ms = queued.as_secs_f64() * 1e3;
            // A caller that gave up while queued costs nothing: its sandbox is never built.
            let plugin = &job.plugin;
            let name = &plugin.info().name;
            if job.ctx.cancel.is_cancelled() || job.reply.is_closed() {
                tracing::info!(plugin = %name, tool = %job.tool, queued_ms, "call abandoned before it ran");
                let _ = job.reply.send(Ok(Err(CallFailure::Cancelled)));
                continue;
            }
            self.running.store(true, std::sync::atomic::Ordering::Relaxed);
            let started = Instant::now();
            let mut sandbox = None;
            let result = self.checked_call(&job, &mut sandbox).await;
            self.running.store(false, std::sync::atomic::Ordering::Relaxed);
            let run_ms = started.elapsed().as_secs_f64() * 1e3;
            let outcome = CallFailure::outcome(&result);
            tracing::info!(plugin = %name, tool = %job.tool, queued_ms, run_ms, waiting, outcome, "call finished");
            if let Err(e) = &result {
                tracing::debug!(plugin = %name, tool = %job.tool, error = %e, "call failed");
            }
            let _ = job.reply.send(Ok(result));
            // The caller has its answer; the sandbox goes before the next call starts.
            drop(sandbox);
        }
        tracing::debug!("worker stopped: no handles left");
    }

    /// Check arguments against the tool's input schema, in the validator's sandbox.
    async fn validate_input(&self, schema: &SchemaSource, args_json: &str) -> Result<(), CallFailure> {
        let validating = Instant::now();
        let checked = self.runtime.validate(schema, args_json).await;
        self.metrics.call_phase(CallPhase::Validate, validating.elapsed());
        checked.map_err(|error| match error {
            ValidationError::Invalid(problems) => CallFailure::InvalidArguments(problems),
            ValidationError::TooCostly(why) => CallFailure::ValidationStopped(format!(
                "checking them against the tool's input schema was stopped: {why}; the schema is too costly to \
                 evaluate, which the plugin's author must fix"
            )),
            ValidationError::Unusable(why) => {
                CallFailure::ValidationStopped(format!("the tool's input schema cannot be used: {why}"))
            }
        })
    }

    /// Validate the arguments, run the call, validate its structured result. The call's
    /// sandbox is left in `sandbox`, to be torn down once the caller has its answer.
    async fn checked_call(&self, job: &Job, sandbox: &mut Option<Teardown>) -> CallResult {
        if let Some(schema) = &job.checks.input {
            self.validate_input(schema, &job.args_json).await?;
        }
        let (output, teardown) = self.runtime.call(&job.plugin, &job.tool, &job.args_json, job.ctx.clone()).await;
        *sandbox = Some(teardown);
        let output = output?;

        if let (Some(schema), Some(structured)) = (&job.checks.output, &output.structured) {
            self.runtime.validate(schema, structured).await.map_err(|error| {
                CallFailure::InvalidResult(match error {
                    ValidationError::Invalid(problems) => {
                        format!("structured content violates the output schema: {}", problems.join("; "))
                    }
                    ValidationError::TooCostly(why) => {
                        format!("checking structured content against the output schema was stopped: {why}")
                    }
                    ValidationError::Unusable(why) => format!("the output schema cannot be used: {why}"),
                })
            })?;
        }
        Ok(output)
    }
}
