//! A request id for every HTTP request: the client's `X-Request-Id` when it is a sane token,
//! otherwise a new UUID. It is returned in the response header and carried by a `request`
//! span, so every log line written while the request is handled (and the access line at its
//! end) can be matched to it. HTTP only: it knows nothing of MCP.
//!
//! The access line names the method, the path (never the query: the legacy transport's
//! `sessionId` is a bearer capability), the status and the duration; never a body. It is at
//! `info` for requests outside a session and for refusals; a session's other requests are at
//! `debug`, and the session book logs one line at `info` when the session ends.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The header read and written.
pub(super) const HEADER: &str = "x-request-id";

/// A `/mcp` request or response carrying it belongs to a handshake session.
const SESSION_HEADER: &str = "mcp-session-id";

/// Longest client id accepted; longer ones are replaced, so logs stay bounded.
const MAX_LEN: usize = 128;

/// The client's id if it is short printable ASCII without spaces (safe to log and echo).
fn client_id(request: &Request) -> Option<String> {
    let value = request.headers().get(HEADER)?.to_str().ok()?;
    let valid = !value.is_empty() && value.len() <= MAX_LEN && value.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| value.to_owned())
}

/// Middleware: tag the request, log its end, echo the id.
pub(super) async fn tag(request: Request, next: Next) -> Response {
    let id = client_id(&request).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let in_session = path == "/sse" || path == "/messages" || request.headers().contains_key(SESSION_HEADER);
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let in_session = in_session || response.headers().contains_key(SESSION_HEADER);
    let (status, duration_ms) = (response.status().as_u16(), started.elapsed().as_secs_f64() * 1e3);
    span.in_scope(|| {
        // A session's requests are summed up in one line when it ends (`sessions.rs`); only
        // their refusals, and requests outside any session, get a line of their own at info.
        if in_session && status < 400 {
            tracing::debug!(status, duration_ms, "http request");
        } else {
            tracing::info!(status, duration_ms, "http request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: Option<&str>) -> Request {
        let mut builder = axum::http::Request::builder().uri("/mcp");
        if let Some(id) = id {
            builder = builder.header(HEADER, id);
        }
        builder.body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn accepts_sane_client_ids_only() {
        assert_eq!(client_id(&request(Some("abc-123"))).as_deref(), Some("abc-123"));
        assert_eq!(client_id(&request(None)), None);
        assert_eq!(client_id(&request(Some("has space"))), None);
        assert_eq!(client_id(&request(Some(&"x".repeat(MAX_LEN + 1)))), None);
    }
}
