//! One cell of load: N virtual clients, each calling sequentially as fast as it can, a warm-up,
//! then a measured window of fixed length. Reports latencies (client-observed round trips),
//! throughput, errors, and what the window cost in CPU and memory.
//!
//! The client runs on a current-thread runtime, so no client code runs while the controller
//! takes its samples: a call is counted exactly when it completed between the two CPU samples.
//! Calls that straddle the window's start are counted (their work is in the window too, as
//! under any steady load); the ones still running at its end are not.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::procfs::{self, CpuDelta, CpuSample, Memory};

/// A call that takes this long is an error, not a sample.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Error messages kept per cell (the count is exact).
const ERROR_SAMPLES: usize = 5;

/// One virtual client.
pub(crate) trait Caller: Send + 'static {
    /// One call, its result checked.
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Whose CPU time a cell is charged.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Charged {
    /// The server process (all its threads).
    Process(u32),
    /// This process's children (spawned per call, reaped).
    Children,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) warm_up: Duration,
    pub(crate) measure: Duration,
}

/// What a cell measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Calls completed in the window.
    pub(crate) calls: usize,
    /// Failed calls (warm-up included): each stops its virtual client.
    pub(crate) errors: usize,
    pub(crate) error_samples: Vec<String>,
    pub(crate) window: Duration,
    pub(crate) median: Duration,
    pub(crate) p99: Duration,
    pub(crate) mean: Duration,
    /// CPU time charged to the server (or the children) in the window.
    pub(crate) cpu: Option<CpuDelta>,
    /// CPU time of this process (the client) in the window.
    pub(crate) client_cpu: Option<CpuDelta>,
    /// The server's memory at the end of the window (peak since the window's start when
    /// `peak_is_cell`, else since the server started).
    pub(crate) memory: Option<Memory>,
    pub(crate) peak_is_cell: bool,
}

impl Outcome {
    pub(crate) fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// CPU time per call completed in the window.
    pub(crate) fn per_call(&self, delta: Option<CpuDelta>) -> Option<Duration> {
        let delta = delta?;
        (self.calls > 0).then(|| delta.cpu / self.calls as u32)
    }

    pub(crate) fn failed(errors: Vec<String>) -> Self {
        Self {
            errors: errors.len(),
            error_samples: errors.into_iter().take(ERROR_SAMPLES).collect(),
            ..Self::default()
        }
    }
}

/// Run `callers` concurrently: warm up, measure, stop. `edge` runs just before the window opens
/// and just after it closes (outside it, so its cost is not charged to the calls) and returns
/// what it scraped, e.g. the server's metrics.
pub(crate) async fn run<C: Caller, S>(
    callers: Vec<C>,
    timing: Timing,
    charged: Charged,
    mut edge: impl AsyncFnMut() -> S,
) -> (Vec<C>, Outcome, [S; 2]) {
    let recording = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = callers
        .into_iter()
        .map(|mut caller| {
            let (recording, stop) = (Arc::clone(&recording), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut error = None;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let result = tokio::time::timeout(CALL_TIMEOUT, caller.call()).await;
                    let took = started.elapsed();
                    match result {
                        Ok(Ok(())) if recording.load(Ordering::Relaxed) => samples.push(took),
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            error = Some(e);
                            break;
                        }
                        Err(_) => {
                            error = Some(format!("no reply within {CALL_TIMEOUT:?}"));
                            break;
                        }
                    }
                }
                (caller, samples, error)
            })
        })
        .collect();

    tokio::time::sleep(timing.warm_up).await;
    let before = edge().await;
    let peak_is_cell = match charged {
        Charged::Process(pid) => procfs::reset_peak(pid),
        Charged::Children => false,
    };
    let cpu_start = cpu_of(charged);
    let client_start = CpuSample::take(std::process::id()).ok();
    let window_start = Instant::now();
    recording.store(true, Ordering::Relaxed);

    tokio::time::sleep(timing.measure).await;
    let cpu_end = cpu_of(charged);
    let client_end = CpuSample::take(std::process::id()).ok();
    let window = window_start.elapsed();
    recording.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let memory = match charged {
        Charged::Process(pid) => Memory::of(pid).ok(),
        Charged::Children => None,
    };
    let after = edge().await;

    let mut callers = Vec::new();
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok((caller, mut s, error)) => {
                callers.push(caller);
                samples.append(&mut s);
                errors.extend(error);
            }
            Err(e) => errors.push(format!("a client task failed: {e}")),
        }
    }
    samples.sort_unstable();
    let cpu = match (cpu_start, cpu_end) {
        (Some(CpuAt::Process(a)), Some(CpuAt::Process(b))) => Some(b.since(&a)),
        (Some(CpuAt::Children(a)), Some(CpuAt::Children(b))) => Some(CpuDelta { cpu: b - a, coarse: true }),
        _ => None,
    };
    let outcome = Outcome {
        calls: samples.len(),
        errors: errors.len(),
        error_samples: errors.into_iter().take(ERROR_SAMPLES).collect(),
        window,
        median: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        mean: samples.iter().sum::<Duration>().checked_div(samples.len() as u32).unwrap_or_default(),
        cpu,
        client_cpu: client_start.zip(client_end).map(|(a, b)| b.since(&a)),
        memory,
        peak_is_cell,
    };
    (callers, outcome, [before, after])
}

enum CpuAt {
    Process(CpuSample),
    Children(Duration),
}

fn cpu_of(charged: Charged) -> Option<CpuAt> {
    match charged {
        Charged::Process(pid) => CpuSample::take(pid).ok().map(CpuAt::Process),
        Charged::Children => procfs::children_cpu().ok().map(CpuAt::Children),
    }
}

/// Nearest-rank percentile of sorted samples (zero when there are none).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
