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
use crate::mcp::ListingEra;
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
    /// How the book ends the session when it expires.
    closer: Closer,
    /// Ids of the session's requests not yet answered: a second request with one of them is
    /// refused (the protocol forbids reusing an id, and the answers are routed by it).
    in_flight: HashSet<RequestId>,
    /// The client sent `notifications/initialized` and it was accepted.
    handshake_done: bool,
    opened: Instant,
    /// Requests made in the session, for the line logged when it ends.
    requests: u64,
}

/// How a session's transport is told to end it, which also says which transport it is.
#[derive(Debug, Clone)]
pub(crate) enum Closer {
    /// Legacy SSE: the session's stream ends on this signal.
    Signal(CancellationToken),
    /// `/mcp`: rmcp's session manager ends it. Nothing waits per session: a task is spawned
    /// only when the book expires one (Letta opens a session per operation and closes it).
    Mcp(Arc<LocalSessionManager>),
}

impl Closer {
    fn label(&self) -> &'static str {
        match self {
            Self::Signal(_) => "legacy SSE",
            Self::Mcp(_) => "Streamable HTTP",
        }
    }

    /// The session left the book because its transport ended it: a legacy stream still open
    /// (its outbox gave up) is told to end; rmcp has already ended its own.
    fn ended(&self) {
        if let Self::Signal(signal) = self {
            signal.cancel();
        }
    }

    /// The book ended session `id` (idle expiry): end it in its transport too.
    fn close(&self, id: &str) {
        match self {
            Self::Signal(signal) => signal.cancel(),
            Self::Mcp(manager) => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
                let (manager, id) = (Arc::clone(manager), id.to_owned());
                runtime.spawn(async move {
                    let _ = manager.close_session(&id.into()).await;
                });
            }
        }
    }
}

impl Entry {
    /// The session's one line at `info` (its requests are logged at `debug`): Letta opens a
    /// session per operation, so a line per request would be five per operation.
    fn log_end(&self, id: &str, why: &str) {
        tracing::info!(
            session = %log_id(id),
            principal = %self.principal,
            transport = self.closer.label(),
            requests = self.requests,
            duration_ms = self.opened.elapsed().as_secs_f64() * 1e3,
            "session {why}"
        );
    }
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
    entries: Arc<Mutex<Entries>>,
    max_total: usize,
    max_per_principal: usize,
    idle: Duration,
}

/// The sessions, and how many each principal holds: a session opens and closes in O(1) (Letta
/// opens one per operation), and only a full book is swept before it refuses.
#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<String, Entry>,
    per_principal: HashMap<Arc<str>, usize>,
}

impl Entries {
    fn refusal(&self, principal: &str, max_total: usize, max_per_principal: usize) -> Option<SessionRefusal> {
        if self.per_principal.get(principal).copied().unwrap_or(0) >= max_per_principal {
            Some(SessionRefusal::PrincipalFull)
        } else if self.by_id.len() >= max_total {
            Some(SessionRefusal::ServerFull)
        } else {
            None
        }
    }

    fn insert(&mut self, id: &str, entry: Entry) {
        *self.per_principal.entry(Arc::clone(&entry.principal)).or_default() += 1;
        if let Some(replaced) = self.by_id.insert(id.to_owned(), entry) {
            self.forget_principal(&replaced.principal);
        }
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.by_id.remove(id)?;
        self.forget_principal(&entry.principal);
        Some(entry)
    }

    fn forget_principal(&mut self, principal: &str) {
        if let Some(count) = self.per_principal.get_mut(principal) {
            *count -= 1;
            if *count == 0 {
                self.per_principal.remove(principal);
            }
        }
    }

    /// Close and forget every session idle longer than `idle`.
    fn sweep(&mut self, idle: Duration) {
        let expired: Vec<String> =
            self.by_id.iter().filter(|(_, e)| e.last_active.elapsed() >= idle).map(|(id, _)| id.clone()).collect();
        for id in expired {
            if let Some(entry) = self.remove(&id) {
                entry.log_end(&id, "closed after being idle");
                entry.closer.close(&id);
            }
        }
    }
}

impl SessionBook {
    pub(crate) fn new(max_total: usize, max_per_principal: usize, idle: Duration) -> Self {
        Self { entries: Arc::default(), max_total, max_per_principal, idle }
    }

    /// Register session `id` of `principal`, unless a cap is reached. `closer` ends it in its
    /// transport when it expires.
    pub(crate) fn open(&self, id: &str, principal: &str, closer: Closer) -> Result<(), SessionRefusal> {
        let Ok(mut entries) = self.entries.lock() else { return Err(SessionRefusal::ServerFull) };
        if entries.refusal(principal, self.max_total, self.max_per_principal).is_some() {
            entries.sweep(self.idle);
            if let Some(refusal) = entries.refusal(principal, self.max_total, self.max_per_principal) {
                return Err(refusal);
            }
        }
        let entry = Entry {
            principal: Arc::from(principal),
            last_active: Instant::now(),
            closer,
            in_flight: HashSet::new(),
            handshake_done: false,
            opened: Instant::now(),
            requests: 0,
        };
        entries.insert(id, entry);
        Ok(())
    }

    /// Record request `request` of `session` as in flight, unless its id already is or the
    /// session is at its limit.
    pub(crate) fn begin_request(&self, session: &str, request: &RequestId) -> Admission {
        let Ok(mut entries) = self.entries.lock() else { return Admission::Unknown };
        let Some(entry) = entries.by_id.get_mut(session) else { return Admission::Unknown };
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
            && let Some(entry) = entries.by_id.get_mut(session)
        {
            entry.in_flight.remove(request);
        }
    }

    /// Session `id`'s client has completed the handshake (`notifications/initialized`).
    pub(crate) fn complete_handshake(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.by_id.get_mut(id)
        {
            entry.handshake_done = true;
        }
    }

    /// Whether session `id` has completed its handshake, so requests may be answered without
    /// its MCP service (which would refuse nothing a finished handshake allows).
    pub(crate) fn handshake_done(&self, id: &str) -> bool {
        self.entries.lock().ok().and_then(|entries| entries.by_id.get(id).map(|e| e.handshake_done)).unwrap_or(false)
    }

    /// Whether `principal` may use session `id`; a use by its owner counts as activity.
    pub(crate) fn touch(&self, id: &str, principal: &str) -> Owner {
        let Ok(mut entries) = self.entries.lock() else { return Owner::Unknown };
        match entries.by_id.get_mut(id) {
            Some(entry) if &*entry.principal == principal => {
                entry.last_active = Instant::now();
                entry.requests += 1;
                Owner::Same
            }
            Some(_) => Owner::Other,
            None => Owner::Unknown,
        }
    }

    /// Whether a new session of `principal` would be refused right now.
    pub(crate) fn would_refuse(&self, principal: &str) -> Option<SessionRefusal> {
        let mut entries = self.entries.lock().ok()?;
        entries.refusal(principal, self.max_total, self.max_per_principal)?;
        entries.sweep(self.idle);
        entries.refusal(principal, self.max_total, self.max_per_principal)
    }

    pub(crate) fn remove(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.remove(id)
        {
            entry.log_end(id, "closed");
            entry.closer.ended();
        }
    }

    /// Close and forget every session idle longer than the limit.
    pub(crate) fn sweep(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.sweep(self.idle);
        }
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
    /// Answers a finished handshake's `tools/list` without rmcp.
    pub(crate) mcp: crate::mcp::McpServer,
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
                Admission::Admitted => {
                    in_flight = Some(InFlight { book: state.book.clone(), session: id.clone(), request_id });
                }
                Admission::Duplicate => return json_rpc_error(jsonrpc::Refusal::duplicate(request_id)),
                Admission::Full => return too_many_in_flight(),
                // Closed meanwhile: rmcp answers it as an unknown session.
                Admission::Unknown => {}
            }
        }
        if let Some(in_flight) = &in_flight
            && envelope.lists_tools == Some(ListingEra::Handshake)
            && state.book.handshake_done(&id)
            && answers_itself(&parts.headers, ListingEra::Handshake)
        {
            // Answered from the serialized listing; the request is done when this returns.
            let body = state.mcp.tools_list_response(&parts, &in_flight.request_id, ListingEra::Handshake);
            return json_body(body);
        }
        let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
        if envelope.completes_handshake && response.status() == StatusCode::ACCEPTED {
            state.book.complete_handshake(&id);
        }
        return match in_flight {
            Some(in_flight) => in_flight.hold_until_sent(response),
            None => response,
        };
    }
    if envelope.lists_tools == Some(ListingEra::Stateless)
        && let Some(request_id) = &envelope.request_id
        && answers_itself(&parts.headers, ListingEra::Stateless)
    {
        // A 2026-07-28 client lists per request, with no session: from the serialized listing.
        return json_body(state.mcp.tools_list_response(&parts, request_id, ListingEra::Stateless));
    }
    // Only `initialize` opens a session (2026-07-28 requests are stateless).
    let opens_session = envelope.initializes;
    if opens_session && let Some(refusal) = state.book.would_refuse(&principal) {
        tracing::warn!(%principal, ?refusal, "refused a new /mcp session");
        return refusal.into_response();
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let new_id = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(id) = new_id.filter(|_| opens_session)
        && let Err(refusal) = state.book.open(&id, &principal, Closer::Mcp(Arc::clone(&state.manager)))
    {
        // Lost a race for the last slot: undo the session rmcp just made.
        let _ = state.manager.close_session(&id.into()).await;
        return refusal.into_response();
    }
    response
}

/// Whether a plain `tools/list`'s headers are plainly ones rmcp would accept for `era`, so
/// that answering it here changes nothing a client could notice: `Accept` naming JSON and event
/// streams without parameters, a JSON `Content-Type`, and the era's protocol headers exactly
/// (handshake: a handshake-era `Mcp-Protocol-Version` or none, none of the 2026 standard
/// headers; stateless: `Mcp-Protocol-Version: 2026-07-28` and `Mcp-Method: tools/list`, once
/// each, and no other `Mcp-*` header). Anything else goes to rmcp, whose refusals stay the one
/// answer to bad headers.
fn answers_itself(headers: &axum::http::HeaderMap, era: ListingEra) -> bool {
    use axum::http::header::{ACCEPT, CONTENT_TYPE};
    let (mut json, mut events) = (false, false);
    for value in headers.get_all(ACCEPT).iter() {
        let Ok(value) = value.to_str() else { return false };
        for mime in value.split(',').map(str::trim) {
            json |= mime.eq_ignore_ascii_case("application/json");
            events |= mime.eq_ignore_ascii_case("text/event-stream");
        }
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let json_body = content_type.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    let only = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok(),
            _ => None,
        }
    };
    let protocol = match era {
        ListingEra::Handshake => {
            let version = headers.get(MCP_PROTOCOL_VERSION).map(|v| v.to_str().unwrap_or_default());
            version.is_none_or(|v| HANDSHAKE_VERSIONS.contains(&v))
                && !headers.contains_key("mcp-method")
                && !headers.contains_key("mcp-name")
        }
        ListingEra::Stateless => {
            only(MCP_PROTOCOL_VERSION) == Some(STATELESS_VERSION)
                && only("mcp-method") == Some("tools/list")
                && headers.keys().all(|name| {
                    !name.as_str().starts_with("mcp-") || ["mcp-method", MCP_PROTOCOL_VERSION].contains(&name.as_str())
                })
        }
    };
    json && events && json_body && protocol
}

const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// The protocol versions with the `initialize` handshake, all answered the same `tools/list`.
const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The stateless protocol version whose `tools/list` is answered from its serialized bytes.
const STATELESS_VERSION: &str = "2026-07-28";

/// A JSON-RPC response as the whole body of a POST's answer.
fn json_body(body: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
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
        let signal = || Closer::Signal(CancellationToken::new());
        assert!(book.open("a1", "a", signal()).is_ok());
        assert!(book.open("a2", "a", signal()).is_ok());
        assert_eq!(book.open("a3", "a", signal()), Err(SessionRefusal::PrincipalFull));
        assert!(book.open("b1", "b", signal()).is_ok());
        assert_eq!(book.open("c1", "c", signal()), Err(SessionRefusal::ServerFull));
        assert_eq!(book.touch("a1", "a"), Owner::Same);
        assert_eq!(book.touch("a1", "b"), Owner::Other);
        assert_eq!(book.touch("zz", "a"), Owner::Unknown);
        book.remove("a1");
        assert!(book.open("c1", "c", signal()).is_ok());
    }

    #[test]
    fn a_principal_s_count_follows_closes_and_expiry() {
        let book = SessionBook::new(100, 2, Duration::from_millis(20));
        let signal = || Closer::Signal(CancellationToken::new());
        for round in 0..50 {
            assert!(book.open(&format!("a{round}"), "a", signal()).is_ok(), "round {round}");
            book.remove(&format!("a{round}"));
        }
        assert!(book.open("x", "a", signal()).is_ok());
        assert!(book.open("y", "a", signal()).is_ok());
        assert_eq!(book.would_refuse("a"), Some(SessionRefusal::PrincipalFull));
        // Full, then idle: the next open sweeps and gets a slot without waiting for the sweeper.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(book.would_refuse("a"), None);
        assert!(book.open("z", "a", signal()).is_ok());
        assert_eq!(book.touch("x", "a"), Owner::Unknown);
        let entries = book.entries.lock().expect("lock");
        assert_eq!((entries.by_id.len(), entries.per_principal.get("a").copied()), (1, Some(1)));
    }

    #[test]
    fn idle_sessions_are_closed() {
        let book = SessionBook::new(10, 10, Duration::from_millis(1));
        let close = CancellationToken::new();
        assert!(book.open("a", "p", Closer::Signal(close.clone())).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        book.sweep();
        assert!(close.is_cancelled());
        assert_eq!(book.touch("a", "p"), Owner::Unknown);
    }
}
