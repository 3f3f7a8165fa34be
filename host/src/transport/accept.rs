//! The accept loop: serves the router over HTTP/1.1 with a header read timeout, so a client
//! that opens a connection and trickles (or never finishes) its headers is disconnected instead
//! of holding a connection forever (slowloris). `axum::serve` sets no hyper timer, which leaves
//! hyper's header timeout inert; this loop sets one.
//!
//! HTTP/1.1 only: every MCP client speaks it, and hyper's protocol auto-detection has no
//! timeout of its own. Owns connections and graceful shutdown, nothing about routes.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A client must send a request's headers within this time, or its connection is closed.
/// Generous for any real client on a slow link; short enough that idle half-open connections
/// cannot pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `router` on `listener` until `stop_accepting` is cancelled; then ask every connection
/// to finish its current request and close, and return once all have. Callers bound that wait.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    stop_accepting: CancellationToken,
) -> std::io::Result<()> {
    let shutdown = stop_accepting;
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                // A Streamable HTTP answer is an event stream written in pieces (headers, the
                // event, the end); with Nagle's algorithm the last piece waits for the client's
                // delayed ACK, ~40 ms per call.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
                stream
            }
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        let stopping = shutdown.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}
