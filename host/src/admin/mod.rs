//! The operators' admin plane: a small JSON API ([`api`]) over the approvals book, served on a
//! Unix socket (default, [`socket`]: mode 0600 in a private directory, peers checked by uid)
//! and, when asked, on an HTTP listener of its own that requires admin bearer tokens.
//!
//! It is separate from the MCP listener on purpose: nothing reachable over MCP can approve a
//! call. An HTTP front for operators, not part of the request corridor: it imports leaves
//! (`approvals`, `principal`, `egress`) and the front door's token checking (`transport::auth`); only
//! the wiring (`app`, `cli`) imports it. It owns its listeners and connections; it must not
//! touch the MCP routes, the registry or the worker.
//!
//! Every connection is bounded: at most [`MAX_CONNECTIONS`] at once, headers within
//! [`crate::transport::HEADER_READ_TIMEOUT`], the whole connection within
//! [`CONNECTION_TIMEOUT`], bodies within [`api::MAX_BODY_BYTES`]. The optional webhook
//! ([`notify`]) tells another system of each held call through the vetted egress client.

pub mod api;
pub mod notify;
mod socket;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use api::Operator;

use crate::approvals::Approvals;
use crate::principal::Principal;
use crate::transport::Authenticator;

/// Admin connections open at once, per listener; more are closed at once. Operators are few.
pub const MAX_CONNECTIONS: usize = 32;
/// An admin connection is closed after this long, whatever it is doing: every request is a
/// quick look-up, so only a stuck or hostile client gets near it.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What to serve.
#[derive(Debug, Clone, Default)]
pub struct AdminSettings {
    /// The Unix socket; `None` serves none.
    pub socket: Option<PathBuf>,
    /// `socket` is the default path, not one the operator chose: if another server already
    /// serves on it, this one runs without a socket (loudly) instead of refusing to start.
    pub socket_is_default: bool,
    /// The HTTP listener; `None` (the default) serves none.
    pub listen: Option<SocketAddr>,
    /// Admin bearer tokens; required by `listen`.
    pub tokens: Authenticator,
}

/// Why the admin plane cannot start. The server then does not start either: an operator who
/// configured it expects to be able to approve.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin socket {path}: {reason}")]
    Socket { path: PathBuf, reason: String },
    #[error("admin socket {path}: another server is serving on it; give this one its own --admin-socket")]
    InUse { path: PathBuf },
    #[error("admin socket {path}: {what}")]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--admin-listen {addr} needs admin tokens (`[[admin.token]]` in the config file): the admin API \
         is never served over HTTP without them"
    )]
    NoTokens { addr: SocketAddr },
    #[error("binding the admin listener {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The running admin plane.
#[derive(Debug, Default)]
pub struct AdminPlane {
    socket: Option<PathBuf>,
    http: Option<SocketAddr>,
    tasks: TaskTracker,
}

impl AdminPlane {
    /// Bind what `settings` asks for and serve `approvals` on it until `stop` is cancelled;
    /// the socket file is removed when serving ends.
    pub async fn start(
        settings: AdminSettings,
        approvals: Approvals,
        stop: CancellationToken,
    ) -> Result<Self, AdminError> {
        // Check everything before binding anything, so a refusal leaves nothing behind.
        if let Some(addr) = settings.listen
            && !settings.tokens.is_enabled()
        {
            return Err(AdminError::NoTokens { addr });
        }
        // Bind both before serving either: a refusal of the second leaves nothing running.
        let http = match settings.listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|source| AdminError::Bind { addr, source })?;
                let bound = listener.local_addr().map_err(|source| AdminError::Bind { addr, source })?;
                Some((listener, bound))
            }
            None => None,
        };
        let socket = match &settings.socket {
            Some(path) => match socket::bind(path) {
                Ok(bound) => Some((bound, path.clone())),
                Err(e @ AdminError::InUse { .. }) if settings.socket_is_default => {
                    tracing::warn!(
                        error = %e,
                        "NO ADMIN SOCKET: calls held for approval can be decided only over --admin-listen, if set"
                    );
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let tasks = TaskTracker::new();
        let api = api::router(approvals);
        let http = http.map(|(listener, bound)| {
            tracing::info!(%bound, principals = ?settings.tokens.principals(), "admin API over HTTP (admin tokens required)");
            tasks.spawn(serve_http(listener, with_tokens(api.clone(), settings.tokens), stop.clone()));
            bound
        });
        let socket = socket.map(|((listener, bound), path)| {
            tracing::info!(path = %path.display(), "admin API on the Unix socket");
            tasks.spawn(serve_socket(listener, bound, api, stop));
            path
        });
        tasks.close();
        Ok(Self { socket, http, tasks })
    }

    /// The socket served, if any.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The HTTP listener's bound address, if any (the real port when asked for port 0).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// Wait until serving has ended (after `stop`) and the socket file is gone.
    pub async fn stopped(&self) {
        self.tasks.wait().await;
    }
}

/// Requests over HTTP carry an admin bearer token; its principal is the operator.
fn with_tokens(api: Router, tokens: Authenticator) -> Router {
    let gate =
        crate::transport::auth::Gate { auth: tokens, calls: crate::transport::limits::CallLimiter::new(None, 1) };
    api.layer(axum::middleware::from_fn(operator_from_token))
        .layer(axum::middleware::from_fn_with_state(gate, crate::transport::auth::authenticate))
}

/// The front door's middleware attached the token's principal; name the operator after it.
async fn operator_from_token(mut request: Request, next: Next) -> Response {
    let Some(name) = request.extensions().get::<Principal>().map(|p| p.name().to_owned()) else {
        return api::error(StatusCode::UNAUTHORIZED, "missing or invalid admin token");
    };
    request.extensions_mut().insert(Operator(format!("token:{name}")));
    next.run(request).await
}

async fn serve_http(listener: TcpListener, router: Router, stop: CancellationToken) {
    let accept = || async { listener.accept().await.map(|(stream, _)| stream) };
    accept_until_stopped(accept, |_| router.clone(), &stop).await.wait().await;
}

async fn serve_socket(listener: UnixListener, bound: socket::BoundSocket, api: Router, stop: CancellationToken) {
    let accept = || async { listener.accept().await.map(|(stream, _)| stream) };
    // Each connection is one operator: the kernel says who, and every request carries it.
    let route = |stream: &tokio::net::UnixStream| match socket::peer(stream) {
        Ok(operator) => api.clone().layer(axum::Extension(Operator(operator))),
        Err(reason) => {
            tracing::warn!(%reason, "refused an admin socket peer");
            Router::new().fallback(move || {
                let reason = reason.clone();
                async move { api::error(StatusCode::FORBIDDEN, reason) }
            })
        }
    };
    let connections = accept_until_stopped(accept, route, &stop).await;
    drop(listener);
    // The path goes before the wait: no client should find a socket nobody accepts on.
    drop(bound);
    connections.wait().await;
}

/// Accept connections (at most [`MAX_CONNECTIONS`] at once; more are closed) and serve each
/// with the router `route` picks for it, until `stop`. Returns the closed tracker of the
/// connections still finishing; the HTTP listener waits on it at once, the socket after
/// removing its path.
async fn accept_until_stopped<S, A, F>(
    mut accept: A,
    route: impl Fn(&S) -> Router,
    stop: &CancellationToken,
) -> TaskTracker
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: FnMut() -> F,
    F: std::future::Future<Output = std::io::Result<S>>,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = accept() => accepted,
            () = stop.cancelled() => break,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an admin connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!("too many admin connections; closing one");
            continue;
        };
        let (router, stop) = (route(&stream), stop.clone());
        connections.spawn(async move {
            serve_connection(stream, router, stop).await;
            drop(slot);
        });
    }
    connections.close();
    connections
}

/// One HTTP/1.1 connection, with a header read timeout and an overall deadline; finishes its
/// current request and closes on `stop`.
async fn serve_connection<S>(stream: S, router: Router, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(crate::transport::HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router));
    tokio::pin!(connection);
    let served = tokio::time::timeout(CONNECTION_TIMEOUT, async {
        tokio::select! {
            result = connection.as_mut() => result,
            () = stop.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.as_mut().await
            }
        }
    })
    .await;
    match served {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "admin connection ended with an error"),
        Err(_) => tracing::debug!("admin connection closed at its deadline"),
    }
}
