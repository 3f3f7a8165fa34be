//! Serving a built [`App`]: readiness, the HTTP server, and the drain. The one way sanctum
//! serves, run by `main` (triggered by SIGTERM/SIGINT) and by the end-to-end tests.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::App;

/// How long `run` waits for the admin plane to close its connections and remove its socket.
const ADMIN_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve `app` on `listener` until `trigger` completes, then shut down as an operator expects:
/// `/readyz` turns 503 and new connections are refused at once, calls in flight get the grace
/// period, then what still runs is cancelled and sessions close. Returns when serving is over.
pub async fn run(
    listener: TcpListener,
    app: App,
    trigger: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Plugins are loaded and the worker runs (build spawned it): from now on /readyz says so.
    app.readiness.set_ready();
    let registry = Arc::clone(&app.registry);
    tokio::spawn(crate::shutdown::drain(
        trigger,
        app.readiness.clone(),
        app.shutdown.clone(),
        app.shutdown_grace,
        move || registry.calls_in_flight(),
    ));
    let served = crate::transport::serve_graceful(
        listener,
        app.router,
        app.shutdown.stop_accepting.clone(),
        app.shutdown.stop.clone(),
    )
    .await;
    // The server can end before the drain does when no connection is left to wait for.
    app.shutdown.stop.cancel();
    // The admin plane stops at `stop` too; wait (briefly: its connections are short) so its
    // socket file is gone before the process exits.
    if tokio::time::timeout(ADMIN_STOP_WAIT, app.admin.stopped()).await.is_err() {
        tracing::warn!("the admin plane did not stop in time");
    }
    // Jobs run outside any call, so the drain did not wait for them: stop and record them now,
    // while the server can still say how they ended.
    if let Some(jobs) = &app.jobs {
        jobs.shutdown().await;
    }
    served
}
