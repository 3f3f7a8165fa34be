//! The session book: every open session of both transports, the principal that opened it and
//! when it was last used. It enforces the session caps (in total and per principal), binds a
//! session to its principal (anyone else using the id gets 404, as if it did not exist) and
//! closes sessions left idle.
//!
//! Legacy SSE sessions are registered by `sse.rs`. For `/mcp`, rmcp's session manager owns the
//! sessions, so [`bind_mcp_sessions`] learns each id from the `Mcp-Session-Id` header of the
//! `initialize` response and checks it on later requests. Owns no MCP semantics beyond
//! recognising an `initialize` request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::RequestId;
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio_util::sync::CancellationToken;

use super::jsonrpc;
use crate::principal::Principal;

const SESSION_HEADER: &str = "mcp-session-id";

/// Requests one session may have in flight at once (sent and not yet answered). Letta sends one
/// at a time; a client past this is refused with 503 until answers drain, which bounds what a
/// session can have the server hold for it.
pub(crate) const MAX_IN_FLIGHT_PER_SESSION: usize = 32;

#[derive(Debug)]
struct Entry {
    principal: Arc<str>,
    last_active: Instant,
    /// Cancelled to close the session (idle expiry); its transport ends it on that signal.
    close: CancellationToken,
    /// Ids of the session's requests not yet answered: a second request with one of them is
    /// refused (the protocol forbids reusing an id, and the answers are routed by it).
    in_flight: HashSet<RequestId>,
}

/// Whether a session may start another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Admitted,
    /// A request with this id is still in flight on the session.
    Duplicate,
    /// The session has [`MAX_IN_FLIGHT_PER_SESSION`] requests in flight.
    Full,
    /// The session is not in the book (closed meanwhile).
    Unknown,
}

/// Why a new session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionRefusal {
    /// The principal already holds its maximum.
    PrincipalFull,
    /// The server holds its maximum.
    ServerFull,
}

impl IntoResponse for SessionRefusal {
    fn into_response(self) -> Response {
        match self {
            Self::PrincipalFull => (
                StatusCode::TOO_MANY_REQUESTS,
                "too many open sessions for this principal; close one or wait for an idle one to expire\n",
            )
                .into_response(),
            Self::ServerFull => {
                (StatusCode::SERVICE_UNAVAILABLE, "too many open sessions on this server; retry later\n")
                    .into_response()
            }
        }
    }
}

/// Whether a request may use a session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Opened by this principal (now marked active).
    Same,
    /// Opened by another principal: answer as if it did not exist.
    Other,
    /// Not in the book.
    Unknown,
}

/// Open sessions of both transports. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct SessionBook {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    max_total: usize,
    max_per_principal: usize,
    idle: Duration,
}

impl SessionBook {
    pub(crate) fn new(max_total: usize, max_per_principal: usize, idle: Duration) -> Self {
        Self { entries: Arc::default(), max_total, max_per_principal, idle }
    }

    /// Register session `id` of `principal`, unless a cap is reached. `close` is cancelled when
    /// the session expires.
    pub(crate) fn open(&self, id: &str, principal: &str, close: CancellationToken) -> Result<(), SessionRefusal> {
        self.sweep();
        let Ok(mut entries) = self.entries.lock() else { return Err(SessionRefusal::ServerFull) };
        if entries.values().filter(|e| &*e.principal == principal).count() >= self.max_per_principal {
            return Err(SessionRefusal::PrincipalFull);
        }
        if entries.len() >= self.max_total {
            return Err(SessionRefusal::ServerFull);
        }
        let entry =
            Entry { principal: Arc::from(principal), last_active: Instant::now(), close, in_flight: HashSet::new() };
        entries.insert(id.to_owned(), entry);
        Ok(())
    }

    /// Record request `request` of `session` as in flight, unless its id already is or the
    /// session is at its limit.
    pub(crate) fn begin_request(&self, session: &str, request: &RequestId) -> Admission {
        let Ok(mut entries) = self.entries.lock() else { return Admission::Unknown };
        let Some(entry) = entries.get_mut(session) else { return Admission::Unknown };
        if entry.in_flight.contains(request) {
            Admission::Duplicate
        } else if entry.in_flight.len() >= MAX_IN_FLIGHT_PER_SESSION {
            Admission::Full
        } else {
            entry.in_flight.insert(request.clone());
            Admission::Admitted
        }
    }

    /// Request `request` of `session` was answered (or cancelled, or its stream dropped).
    pub(crate) fn end_request(&self, session: &str, request: &RequestId) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get_mut(session)
        {
            entry.in_flight.remove(request);
        }
    }

    /// Whether `principal` may use session `id`; a use by its owner counts as activity.
    pub(crate) fn touch(&self, id: &str, principal: &str) -> Owner {
        let Ok(mut entries) = self.entries.lock() else { return Owner::Unknown };
        match entries.get_mut(id) {
            Some(entry) if &*entry.principal == principal => {
                entry.last_active = Instant::now();
                Owner::Same
            }
            Some(_) => Owner::Other,
            None => Owner::Unknown,
        }
    }

    /// Whether a new session of `principal` would be refused right now.
    pub(crate) fn would_refuse(&self, principal: &str) -> Option<SessionRefusal> {
        self.sweep();
        let entries = self.entries.lock().ok()?;
        if entries.values().filter(|e| &*e.principal == principal).count() >= self.max_per_principal {
            Some(SessionRefusal::PrincipalFull)
        } else if entries.len() >= self.max_total {
            Some(SessionRefusal::ServerFull)
        } else {
            None
        }
    }

    pub(crate) fn remove(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            // Fire the close signal too, so the task waiting on it (one per `/mcp` session) ends.
            if let Some(entry) = entries.remove(id) {
                entry.close.cancel();
            }
        }
    }

    /// Close and forget every session idle longer than the limit.
    pub(crate) fn sweep(&self) {
        let Ok(mut entries) = self.entries.lock() else { return };
        let idle = self.idle;
        entries.retain(|id, entry| {
            let keep = entry.last_active.elapsed() < idle;
            if !keep {
                tracing::info!(session = %log_id(id), principal = %entry.principal, "closing an idle session");
                entry.close.cancel();
            }
            keep
        });
    }

    /// Sweep every so often until `shutdown`, so idle sessions close even when no request comes.
    pub(crate) fn spawn_sweeper(&self, shutdown: CancellationToken) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let book = self.clone();
        let period = (self.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(period) => book.sweep(),
                }
            }
        });
    }
}

/// What [`bind_mcp_sessions`] needs.
#[derive(Debug, Clone)]
pub(crate) struct McpSessions {
    pub(crate) book: SessionBook,
    pub(crate) manager: Arc<LocalSessionManager>,
    pub(crate) max_body_bytes: usize,
}

/// Bind `/mcp` sessions to their principal, cap them, and close them in rmcp when they expire.
/// Every POST body is read here, capped (413 however it is framed), and its envelope checked
/// before rmcp sees it: a reused in-flight id or non-object call arguments get their JSON-RPC
/// error, and a session's requests in flight are bounded.
pub(crate) async fn bind_mcp_sessions(State(state): State<McpSessions>, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().map(|p| p.name().to_owned()) else {
        // Unreachable behind `authenticate`; refusing keeps an ordering mistake from opening a hole.
        return (StatusCode::UNAUTHORIZED, "unauthenticated\n").into_response();
    };
    let session = request.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(id) = &session {
        match state.book.touch(id, &principal) {
            Owner::Other => {
                tracing::warn!(session = %log_id(id), %principal, "a principal used another principal's session id");
                return (StatusCode::NOT_FOUND, "session not found\n").into_response();
            }
            // rmcp answers an unknown session's DELETE with success; the spec says 404, as for
            // POST and GET.
            Owner::Unknown if request.method() == Method::DELETE => {
                return (StatusCode::NOT_FOUND, "session not found\n").into_response();
            }
            _ => {}
        }
    }
    if request.method() != Method::POST {
        let ends = request.method() == Method::DELETE;
        let response = next.run(request).await;
        if let Some(id) = session.filter(|_| ends && response.status().is_success()) {
            state.book.remove(&id);
        }
        return response;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body is too large or was not received in time\n")
            .into_response();
    };
    let envelope = match jsonrpc::peek(&bytes) {
        Ok(envelope) => envelope,
        Err(refusal) => return json_rpc_error(refusal),
    };
    if let Some(id) = session {
        if let Some(cancelled) = &envelope.cancels {
            state.book.end_request(&id, cancelled);
        }
        let mut in_flight = None;
        if let Some(request_id) = envelope.request_id {
            match state.book.begin_request(&id, &request_id) {
                Admission::Admitted => in_flight = Some(InFlight { book: state.book.clone(), session: id, request_id }),
                Admission::Duplicate => return json_rpc_error(jsonrpc::Refusal::duplicate(request_id)),
                Admission::Full => return too_many_in_flight(),
                // Closed meanwhile: rmcp answers it as an unknown session.
                Admission::Unknown => {}
            }
        }
        let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
        return match in_flight {
            Some(in_flight) => in_flight.hold_until_sent(response),
            None => response,
        };
    }
    // Only `initialize` opens a session (2026-07-28 requests are stateless).
    let opens_session = envelope.initializes;
    if opens_session && let Some(refusal) = state.book.would_refuse(&principal) {
        tracing::warn!(%principal, ?refusal, "refused a new /mcp session");
        return refusal.into_response();
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let new_id = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(id) = new_id.filter(|_| opens_session) {
        let close = CancellationToken::new();
        if let Err(refusal) = state.book.open(&id, &principal, close.clone()) {
            // Lost a race for the last slot: undo the session rmcp just made.
            let _ = state.manager.close_session(&id.clone().into()).await;
            return refusal.into_response();
        }
        let manager = Arc::clone(&state.manager);
        tokio::spawn(async move {
            close.cancelled().await;
            let _ = manager.close_session(&id.into()).await;
        });
    }
    response
}

/// A request of a session, in flight until its response has been sent (or dropped).
struct InFlight {
    book: SessionBook,
    session: String,
    request_id: RequestId,
}

impl InFlight {
    /// `response`, releasing the request once its body is done.
    fn hold_until_sent(self, response: Response) -> Response {
        use futures::StreamExt as _;
        let (parts, body) = response.into_parts();
        let stream = body.into_data_stream().map(move |chunk| {
            let _released_when_the_body_is = &self;
            chunk
        });
        Response::from_parts(parts, Body::from_stream(stream))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.book.end_request(&self.session, &self.request_id);
    }
}

/// A JSON-RPC error as the whole answer to a POST (allowed for any request on `/mcp`).
fn json_rpc_error(refusal: jsonrpc::Refusal) -> Response {
    axum::Json(refusal.message()).into_response()
}

pub(crate) fn too_many_in_flight() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        format!("this session already has {MAX_IN_FLIGHT_PER_SESSION} requests in flight; wait for their answers\n"),
    )
        .into_response()
}

/// A session id as logs show it: a short digest. The id itself is a bearer capability (on
/// loopback without tokens, the only thing guarding a legacy session), so it is never logged.
pub(crate) fn log_id(id: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(id.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_binding() {
        let book = SessionBook::new(3, 2, Duration::from_secs(60));
        let token = CancellationToken::new;
        assert!(book.open("a1", "a", token()).is_ok());
        assert!(book.open("a2", "a", token()).is_ok());
        assert_eq!(book.open("a3", "a", token()), Err(SessionRefusal::PrincipalFull));
        assert!(book.open("b1", "b", token()).is_ok());
        assert_eq!(book.open("c1", "c", token()), Err(SessionRefusal::ServerFull));
        assert_eq!(book.touch("a1", "a"), Owner::Same);
        assert_eq!(book.touch("a1", "b"), Owner::Other);
        assert_eq!(book.touch("zz", "a"), Owner::Unknown);
        book.remove("a1");
        assert!(book.open("c1", "c", token()).is_ok());
    }

    #[test]
    fn idle_sessions_are_closed() {
        let book = SessionBook::new(10, 10, Duration::from_millis(1));
        let close = CancellationToken::new();
        assert!(book.open("a", "p", close.clone()).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        book.sweep();
        assert!(close.is_cancelled());
        assert_eq!(book.touch("a", "p"), Owner::Unknown);
    }
}
