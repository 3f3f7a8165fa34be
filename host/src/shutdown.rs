//! Readiness and graceful shutdown. A leaf: it knows tokens, a readiness flag and a count of
//! calls in flight, not the layers that own them (`main` wires those in).
//!
//! On SIGTERM or SIGINT: `/readyz` turns 503 and new connections are refused at once; calls
//! already admitted get the grace period to finish; whatever still runs after it is cancelled
//! (its client gets a cancelled result or a closed stream), open sessions are closed, and the
//! process exits 0. A supervisor may therefore stop sanctum without cutting off calls that
//! could have finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the drain looks at the calls in flight: short next to any grace period.
const POLL: Duration = Duration::from_millis(20);

/// After the last call returned, how long its answer gets to reach the client before sessions
/// are closed (the registry returns before rmcp has written the response).
const SETTLE: Duration = Duration::from_millis(200);

/// Whether the server should receive traffic: once it serves, while no plugin present at
/// start-up is still compiling in the background, and until a shutdown starts. Cloning shares
/// the state.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    serving: Arc<AtomicBool>,
    /// Plugins present at start-up that are still compiling in the background.
    loading: Arc<AtomicUsize>,
}

impl Readiness {
    pub fn set_ready(&self) {
        self.serving.store(true, Ordering::Relaxed);
    }

    pub fn set_not_ready(&self) {
        self.serving.store(false, Ordering::Relaxed);
    }

    pub fn set_loading(&self, plugins: usize) {
        self.loading.store(plugins, Ordering::Relaxed);
    }

    /// Plugins present at start-up still compiling.
    pub fn loading(&self) -> usize {
        self.loading.load(Ordering::Relaxed)
    }

    pub fn is_ready(&self) -> bool {
        self.serving.load(Ordering::Relaxed) && self.loading() == 0
    }
}

/// The two moments of a shutdown.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled at the signal: the HTTP server stops accepting connections.
    pub stop_accepting: CancellationToken,
    /// Cancelled after the drain: sessions close and calls still running are cancelled.
    pub stop: CancellationToken,
}

/// Wait for SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
}

/// Run a shutdown once `trigger` completes: not ready, stop accepting, wait up to `grace` for
/// `in_flight()` to reach zero, then stop everything.
pub async fn drain(
    trigger: impl Future<Output = ()>,
    readiness: Readiness,
    shutdown: Shutdown,
    grace: Duration,
    in_flight: impl Fn() -> usize,
) {
    trigger.await;
    readiness.set_not_ready();
    shutdown.stop_accepting.cancel();
    let deadline = Instant::now() + grace;
    let waiting = in_flight();
    tracing::info!(calls_in_flight = waiting, grace_ms = grace.as_millis(), "shutting down: draining calls");
    while in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    match in_flight() {
        0 if waiting > 0 => {
            tracing::info!("calls drained");
            tokio::time::sleep(SETTLE).await;
        }
        0 => {}
        left => tracing::warn!(calls = left, "shutdown grace period over; cancelling the calls still running"),
    }
    shutdown.stop.cancel();
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn waits_for_calls_then_stops() {
        let calls = Arc::new(AtomicUsize::new(1));
        let readiness = Readiness::default();
        readiness.set_ready();
        let shutdown = Shutdown::default();
        let counter = Arc::clone(&calls);
        let task =
            tokio::spawn(drain(async {}, readiness.clone(), shutdown.clone(), Duration::from_secs(10), move || {
                counter.load(Ordering::Relaxed)
            }));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!readiness.is_ready());
        assert!(shutdown.stop_accepting.is_cancelled());
        assert!(!shutdown.stop.is_cancelled(), "a call is still running");
        calls.store(0, Ordering::Relaxed);
        task.await.expect("drain finishes");
        assert!(shutdown.stop.is_cancelled());
    }

    #[tokio::test]
    async fn stops_at_the_deadline_with_calls_left() {
        let shutdown = Shutdown::default();
        let started = Instant::now();
        drain(async {}, Readiness::default(), shutdown.clone(), Duration::from_millis(150), || 1).await;
        assert!(shutdown.stop.is_cancelled());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(2), "{waited:?}");
    }
}
