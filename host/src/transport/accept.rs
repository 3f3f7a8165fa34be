//! The accept loop: serves the router over HTTP/1.1 with a header read timeout, so a client
//! that opens a connection and trickles (or never finishes) its headers is disconnected instead
//! of holding a connection forever (slowloris). `axum::serve` sets no hyper timer, which leaves
//! hyper's header timeout inert; this loop sets one.
//!
//! A connection whose writes make no progress for [`WRITE_STALL_TIMEOUT`] (a client that
//! stopped reading its response or event stream) is closed too, which frees whatever hyper had
//! buffered for it.
//!
//! HTTP/1.1 only: every MCP client speaks it, and hyper's protocol auto-detection has no
//! timeout of its own. Owns connections and graceful shutdown, nothing about routes.

use std::future::Future as _;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A client must send a request's headers within this time, or its connection is closed.
/// Generous for any real client on a slow link; short enough that idle half-open connections
/// cannot pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection that cannot write anything for this long is closed. A reader that keeps up
/// never waits on a write; idle event streams write a keep-alive comment every 15 s.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

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
            let stream = StallLimit::new(stream, WRITE_STALL_TIMEOUT);
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

/// Fails a write that has been waiting for the peer longer than its limit, so hyper closes a
/// connection whose reader has stopped reading.
struct StallLimit<T> {
    inner: T,
    limit: Duration,
    /// Armed while a write waits for room; cleared by any progress.
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallLimit<T> {
    fn new(inner: T, limit: Duration) -> Self {
        Self { inner, limit, stalled: None }
    }

    fn waiting<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading; closing the connection",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallLimit<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallLimit<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.waiting(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.waiting(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.waiting(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
