//! HTTP: the axum router and everything that is only about HTTP.
//!
//! Mounts rmcp's Streamable HTTP service at `/mcp`, the hand-made legacy SSE transport at
//! `/sse` + `/messages`, and `GET /healthz`. Checks the `Host` header on every MCP route
//! (DNS-rebinding defence). It hands sessions to the MCP layer and knows nothing below it.

mod host_check;
mod sse;

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

/// Largest request body accepted on any MCP route; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Host names always accepted: the loopback names a local client uses.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What the router needs beyond the MCP server.
#[derive(Debug, Clone, Default)]
pub struct RouterOptions {
    /// Host names accepted in addition to [`LOOPBACK_HOSTS`] (e.g. a Docker service name).
    pub extra_allowed_hosts: Vec<String>,
    /// Cancelled at shutdown: closes Streamable HTTP sessions and streams.
    pub shutdown: CancellationToken,
}

/// The whole HTTP surface.
pub fn router(mcp: McpServer, options: RouterOptions) -> Router {
    let allowed_hosts: Vec<String> =
        LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).chain(options.extra_allowed_hosts.iter().cloned()).collect();

    let mut sessions = LocalSessionManager::default();
    // No priming event: Letta's pinned client logs a traceback for each one.
    sessions.session_config.sse_retry = None;
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts.clone())
        .with_sse_retry(None)
        .with_sse_keep_alive(Some(sse::KEEP_ALIVE))
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_cancellation_token(options.shutdown.child_token());
    let factory = mcp.clone();
    let streamable =
        StreamableHttpService::new(move || Ok(factory.session(Transport::StreamableHttp)), Arc::new(sessions), config);

    let legacy = Router::new()
        .route("/sse", get(sse::open))
        .route("/messages", post(sse::post))
        .route("/messages/", post(sse::post))
        .with_state(sse::SseState {
            mcp: mcp.clone(),
            sessions: sse::SseSessions::default(),
            shutdown: options.shutdown,
        })
        .layer(axum::middleware::from_fn_with_state(
            host_check::AllowedHosts::new(allowed_hosts),
            host_check::require_allowed_host,
        ));

    let streamable =
        Router::new().nest_service("/mcp", streamable).layer(axum::middleware::from_fn(session_end_is_no_content));

    Router::new().merge(streamable).merge(legacy).route("/healthz", get(healthz).with_state(mcp))
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
    Json(mcp.registry().health())
}

/// How long in-flight requests get to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serve `router` on `listener` until `shutdown` is cancelled, then give open requests
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let stopping = shutdown.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move { stopping.cancelled().await });
    let server = std::future::IntoFuture::into_future(server);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("requests still open after the shutdown grace period; closing them");
            Ok(())
        }
    }
}
