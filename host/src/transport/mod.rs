//! HTTP: the axum router and everything that is only about HTTP.
//!
//! Mounts rmcp's Streamable HTTP service at `/mcp`, the hand-made legacy SSE transport at
//! `/sse` + `/messages`, and `GET /healthz`. Checks the `Host` header on every MCP route
//! (DNS-rebinding defence). It hands sessions to the MCP layer and knows nothing below it.
//! Operations: `GET /readyz` (readiness), `GET /metrics` (Prometheus text), a request id on
//! every request (`request_id.rs`), and [`serve_graceful`] for the drain on shutdown.
//! The front door on every MCP route: `Host`/`Origin` checks (`origin.rs`), bearer tokens and the
//! request's principal (`auth.rs`), sessions bound to their principal and capped
//! (`sessions.rs`), body caps and timeouts, and an accept loop with a header timeout (`accept.rs`).

mod accept;
pub mod auth;
mod host_check;
mod jsonrpc;
mod jwt;
pub mod limits;
mod origin;
mod outbox;
mod request_id;
mod sessions;
mod sse;

pub use accept::{HEADER_READ_TIMEOUT, WRITE_STALL_TIMEOUT};
pub use auth::{AuthError, AuthSettings, Authenticator, check_exposure};
pub use jwt::{JwtSettings, JwtSettingsError};
pub use limits::FrontDoorLimits;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::mcp::{McpServer, Transport};
use crate::metrics::Metrics;
use crate::shutdown::Readiness;

/// Host names always accepted: the loopback names a local client uses.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What the router needs beyond the MCP server.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Host names accepted in addition to [`LOOPBACK_HOSTS`] (e.g. a Docker service name).
    pub extra_allowed_hosts: Vec<String>,
    /// Cancelled at shutdown: closes Streamable HTTP sessions and streams.
    pub shutdown: CancellationToken,
    /// What `/readyz` reports (not ready until start-up marks it).
    pub readiness: Readiness,
    /// What `/metrics` serves.
    pub metrics: Metrics,
    /// Bearer tokens; empty means every request is the `anonymous` principal.
    pub auth: Authenticator,
    /// Browser origins accepted besides the server's own loopback origin.
    pub allowed_origins: Vec<String>,
    /// Session caps, idle expiry, body cap, tool-call rate.
    pub limits: FrontDoorLimits,
}

/// A request body that sends nothing for this long is abandoned (a slow-body client would
/// otherwise hold its connection and the memory of what it sent so far).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole HTTP surface.
pub fn router(mcp: McpServer, options: RouterOptions) -> Router {
    let allowed_hosts: Vec<String> =
        LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).chain(options.extra_allowed_hosts.iter().cloned()).collect();

    let limits = options.limits.clone();
    let mut sessions = LocalSessionManager::default();
    // No priming event: Letta's pinned client logs a traceback for each one.
    sessions.session_config.sse_retry = None;
    // The session book closes idle sessions (its sweeper closes them in rmcp too). rmcp's own
    // idle timer stays off: it counts only the requests rmcp sees, and the front door answers
    // a session's `tools/list` itself, so it would close a session the book knows is in use.
    sessions.session_config.keep_alive = None;
    // rmcp keeps the messages of a cancelled request's stream for a resume (60 s by default).
    // Without priming events or an event store no client resumes, so nothing is kept: a client
    // cancelling in a loop must not make the server hold what those streams carried.
    sessions.session_config.completed_cache_ttl = Duration::ZERO;
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts.clone())
        .with_sse_retry(None)
        .with_sse_keep_alive(Some(sse::KEEP_ALIVE))
        .with_max_request_body_bytes(limits.max_body_bytes)
        .with_cancellation_token(options.shutdown.child_token());
    let factory = mcp.clone();
    let sessions = Arc::new(sessions);
    let streamable = StreamableHttpService::new(
        move || Ok(factory.session(Transport::StreamableHttp)),
        Arc::clone(&sessions),
        config,
    );
    let sse_sessions = sse::SseSessions::default();
    let book = sessions::SessionBook::new(limits.max_sessions, limits.max_sessions_per_principal, limits.session_idle);
    book.spawn_sweeper(options.shutdown.clone());
    let mcp_sessions = sessions::McpSessions {
        book: book.clone(),
        mcp: mcp.clone(),
        manager: Arc::clone(&sessions),
        max_body_bytes: limits.max_body_bytes,
    };
    // The JWKS fetch starts with the server, not with the first token.
    options.auth.start(options.shutdown.clone());
    let metadata = options.auth.jwt().map(|verifier| jwt::metadata::Metadata {
        verifier: verifier.clone(),
        hosts: host_check::AllowedHosts::new(allowed_hosts.clone()),
    });
    let gate = auth::Gate {
        auth: options.auth.clone(),
        calls: limits::CallLimiter::new(limits.calls_per_minute, limits.call_burst),
    };
    let fences = origin::Fences::new(host_check::AllowedHosts::new(allowed_hosts), &options.allowed_origins);
    let operations = Operations {
        mcp: mcp.clone(),
        readiness: options.readiness,
        metrics: options.metrics,
        streamable_sessions: sessions,
        sse_sessions: sse_sessions.clone(),
    };

    let legacy = Router::new()
        .route("/sse", get(sse::open))
        .route("/messages", post(sse::post))
        .route("/messages/", post(sse::post))
        .with_state(sse::SseState {
            mcp: mcp.clone(),
            sessions: sse_sessions,
            shutdown: options.shutdown,
            book,
            max_body_bytes: limits.max_body_bytes,
        });

    let streamable = Router::new()
        .nest_service("/mcp", streamable)
        .layer(axum::middleware::from_fn(session_end_is_no_content))
        .layer(axum::middleware::from_fn_with_state(mcp_sessions, sessions::bind_mcp_sessions));

    // Outermost first when a request arrives: body cap and timeout, Host/Origin (403), then the
    // token (400/401), so a foreign page learns nothing about tokens.
    // `/metrics` sits behind the same door: it names tools and counts their use.
    let front_door = Router::new()
        .merge(streamable)
        .merge(legacy)
        .route("/metrics", get(metrics).with_state(operations.clone()))
        .layer(axum::middleware::from_fn_with_state(gate, auth::authenticate))
        .layer(axum::middleware::from_fn_with_state(fences, origin::require_allowed_host_and_origin))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limits.max_body_bytes));

    let mut app = Router::new()
        .merge(front_door)
        .route("/healthz", get(healthz).with_state(mcp))
        .route("/readyz", get(readyz).with_state(operations));
    // RFC 9728 metadata: open (it says how to get a token), and only when JWTs are on (404
    // otherwise, like any unknown path).
    if let Some(metadata) = metadata {
        for path in ["", "/mcp", "/sse"] {
            let path = format!("{}{path}", jwt::metadata::WELL_KNOWN);
            app = app.route(&path, get(jwt::metadata::serve).with_state(metadata.clone()));
        }
    }
    app.layer(axum::middleware::from_fn(request_id::tag))
}

/// rmcp answers a session-ending `DELETE` with 202; the Python clients expect 200 or 204 and
/// log a warning on every Letta operation otherwise. The session is gone either way.
async fn session_end_is_no_content(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ends_session = request.method() == axum::http::Method::DELETE;
    let mut response = next.run(request).await;
    if ends_session && response.status() == axum::http::StatusCode::ACCEPTED {
        *response.status_mut() = axum::http::StatusCode::NO_CONTENT;
    }
    response
}

async fn healthz(State(mcp): State<McpServer>) -> impl IntoResponse {
    Json(mcp.registry().health().public())
}

/// What the operations routes read.
#[derive(Clone)]
struct Operations {
    mcp: McpServer,
    readiness: Readiness,
    metrics: Metrics,
    streamable_sessions: Arc<LocalSessionManager>,
    sse_sessions: sse::SseSessions,
}

/// 200 once plugins are loaded and the worker runs; 503 before that and while draining, so a
/// load balancer stops sending traffic before connections are refused. (`/healthz` is liveness.)
async fn readyz(State(ops): State<Operations>) -> impl IntoResponse {
    use axum::http::StatusCode;
    match ops.readiness.loading() {
        _ if ops.readiness.is_ready() => (StatusCode::OK, "ready\n".to_owned()),
        0 => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned()),
        plugins => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {plugins} plugin(s) still compiling\n")),
    }
}

/// Prometheus text. Gauges of state owned elsewhere (queue, calls, sessions) are sampled here,
/// at scrape time, so the layers that own that state need not report every change.
async fn metrics(State(ops): State<Operations>) -> impl IntoResponse {
    let registry = ops.mcp.registry();
    ops.metrics.set_queue_depth(registry.health().queue_depth);
    ops.metrics.set_calls_in_flight(registry.calls_in_flight());
    ops.metrics.set_open_sessions("streamable_http", ops.streamable_sessions.sessions.read().await.len());
    ops.metrics.set_open_sessions("sse", ops.sse_sessions.len());
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], ops.metrics.encode())
}

/// How long connections still open get once the drain is over (their calls were cancelled,
/// their sessions closed) before the server returns regardless.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Serve `router` on `listener`: stop accepting connections when `stop_accepting` is
/// cancelled (open ones go on), and return at most [`CLOSE_GRACE`] after `stop` is.
pub async fn serve_graceful(
    listener: tokio::net::TcpListener,
    router: Router,
    stop_accepting: CancellationToken,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let server = accept::serve_connections(listener, router, stop_accepting);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async { stop.cancelled().await; tokio::time::sleep(CLOSE_GRACE).await } => {
            tracing::warn!("connections still open after the drain; closing them");
            Ok(())
        }
    }
}
