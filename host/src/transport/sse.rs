//! Legacy HTTP+SSE (protocol 2024-11-05): `GET /sse` opens a session stream, `POST
//! /messages?sessionId=…` feeds it. rmcp dropped its server for this transport, so each
//! session here is a pair of channels bridged into an rmcp service.
//!
//! Wire shape real clients expect: the first event is `endpoint` with a *relative* URL (the
//! Python client refuses another origin); a POST is answered `202` at once and the JSON-RPC
//! response goes out on that session's stream only; comments keep idle streams alive.
//!
//! Each session belongs to the principal that opened it (registered in the session book, which
//! caps and expires sessions); a POST by anyone else gets 404. What the session sends goes
//! through its [`Outbox`], bounded in bytes: a reader that stops reading has its session closed
//! instead of growing the server. A POST is refused with 503 while the session's reader is at
//! that bound or has [`MAX_IN_FLIGHT_PER_SESSION`](super::sessions::MAX_IN_FLIGHT_PER_SESSION)
//! requests unanswered; a request reusing an id still in flight, or calling a tool with
//! non-object arguments, is answered with its JSON-RPC error on the stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Extension, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt, stream};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::jsonrpc;
use super::outbox::{Outbox, OutboxClosed, OutboxSink};
use super::sessions::{Admission, Closer, SessionBook, log_id};
use crate::mcp::{ListingEra, McpServer, Transport};
use crate::principal::Principal;

/// Messages buffered from POSTs to the session's service. A client that posts faster than the
/// session consumes gets 503.
const CHANNEL_CAPACITY: usize = 64;

/// Idle streams get a comment this often: it resets clients' read timeouts (Python: 300 s)
/// and keeps proxies from closing a quiet connection during a long call.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One open legacy session: where its POSTs go, and what it sends.
#[derive(Debug, Clone)]
struct SseSession {
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    outbox: Outbox,
}

/// The open legacy sessions by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct SseSessions(Arc<Mutex<HashMap<String, SseSession>>>);

impl SseSessions {
    fn insert(&self, id: &str, session: SseSession) -> bool {
        // The session book has already applied the caps.
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        map.insert(id.to_owned(), session);
        true
    }

    fn get(&self, id: &str) -> Option<SseSession> {
        self.0.lock().ok()?.get(id).cloned()
    }

    fn remove(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }

    /// Open sessions, for the `sanctum_open_sessions` gauge.
    pub(crate) fn len(&self) -> usize {
        self.0.lock().map(|map| map.len()).unwrap_or(0)
    }
}

/// Forgets one session everywhere it is registered.
#[derive(Clone)]
struct Forget {
    sessions: SseSessions,
    book: SessionBook,
    id: String,
}

impl Forget {
    fn now(&self) {
        self.sessions.remove(&self.id);
        self.book.remove(&self.id);
    }
}

/// Forgets its session when the client's stream is dropped (the client disconnected).
struct SessionGuard(Forget);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        // The book logs the session's end.
        self.0.now();
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SseState {
    pub(crate) mcp: McpServer,
    pub(crate) sessions: SseSessions,
    /// Ends every open stream at shutdown, so graceful shutdown is not held by idle clients.
    pub(crate) shutdown: CancellationToken,
    /// Caps, principal binding, idle expiry and requests in flight, shared with `/mcp`.
    pub(crate) book: SessionBook,
    pub(crate) max_body_bytes: usize,
}

pub(crate) async fn open(State(state): State<SseState>, Extension(principal): Extension<Principal>) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    // Ends this session's stream: at shutdown, on idle expiry, or when its outbox gives up.
    let close = state.shutdown.child_token();
    if let Err(refusal) = state.book.open(&id, principal.name(), Closer::Signal(close.clone())) {
        tracing::warn!(principal = %principal.name(), ?refusal, "refused a new SSE session");
        return refusal.into_response();
    }
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let forget = Forget { sessions: state.sessions.clone(), book: state.book.clone(), id: id.clone() };
    let outbox = Outbox::new(
        &log_id(&id),
        close.clone(),
        Arc::new({
            let forget = forget.clone();
            move || forget.now()
        }),
    );
    if !state.sessions.insert(&id, SseSession { to_server, outbox: outbox.clone() }) {
        state.book.remove(&id);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many open SSE sessions").into_response();
    }
    let handler = state.mcp.session(Transport::LegacySse);
    let sink = Answers { sink: outbox.sink(), book: state.book, session: id.clone() };
    // `serve` waits for `initialize`, which arrives by POST later: never await it here.
    tokio::spawn(async move {
        match handler.serve((sink, ReceiverStream::new(from_client))).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::debug!(error = %e, "legacy SSE session ended before initialize"),
        }
    });
    tracing::debug!(session = %log_id(&id), principal = %principal.name(), "legacy SSE session opened");
    let guard = SessionGuard(forget);
    Sse::new(events(&id, &outbox, guard).take_until(close.cancelled_owned()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The session's service writes here: into the outbox, releasing each answered request id.
struct Answers {
    sink: OutboxSink,
    book: SessionBook,
    session: String,
}

impl futures::Sink<ServerJsonRpcMessage> for Answers {
    type Error = OutboxClosed;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.sink).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: ServerJsonRpcMessage) -> Result<(), Self::Error> {
        let answered = match &message {
            ServerJsonRpcMessage::Response(response) => Some(response.id.clone()),
            ServerJsonRpcMessage::Error(error) => error.id.clone(),
            _ => None,
        };
        if let Some(id) = answered {
            self.book.end_request(&self.session, &id);
        }
        Pin::new(&mut self.sink).start_send(message)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.sink).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.sink).poll_close(cx)
    }
}

fn events(id: &str, outbox: &Outbox, guard: SessionGuard) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let endpoint = Event::default().event("endpoint").data(format!("/messages?sessionId={id}"));
    let messages = outbox.stream().map(move |json| {
        let _session_lives_while_the_stream_does = &guard;
        Ok(Event::default().event("message").data(json))
    });
    stream::once(std::future::ready(Ok(endpoint))).chain(messages)
}

/// `sessionId` is what the TypeScript SDK sends; the Python SDK's server used `session_id`.
#[derive(Debug, Deserialize)]
pub(crate) struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
    #[serde(rename = "session_id")]
    session_id_snake: Option<String>,
}

pub(crate) async fn post(
    State(state): State<SseState>,
    Query(query): Query<SessionQuery>,
    request: Request,
) -> Response {
    let Some(id) = query.session_id.or(query.session_id_snake).filter(|id| !id.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "missing sessionId query parameter").into_response();
    };
    let Some(principal) = request.extensions().get::<Principal>().map(|p| p.name().to_owned()) else {
        return (StatusCode::UNAUTHORIZED, "unauthenticated").into_response();
    };
    let (parts, body) = request.into_parts();
    if !is_json(&parts.headers) {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json").into_response();
    }
    // Another principal's session answers exactly like an unknown one.
    let owned = state.book.touch(&id, &principal) == super::sessions::Owner::Same;
    let Some(session) = state.sessions.get(&id).filter(|_| owned) else {
        return (StatusCode::NOT_FOUND, "unknown or closed session").into_response();
    };
    if session.outbox.refuses_more() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "this session's event stream is not being read; read it, or open a new session",
        )
            .into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body is over the size limit or stalled").into_response();
    };
    let envelope = match jsonrpc::peek(&body) {
        Ok(envelope) => envelope,
        // The answer to a request goes on the stream; the POST itself was accepted.
        Err(refusal) => return answer_on_stream(&session, refusal),
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a JSON-RPC message: {e}")).into_response(),
    };
    if let Some(cancelled) = &envelope.cancels {
        state.book.end_request(&id, cancelled);
    }
    if let Some(request_id) = &envelope.request_id {
        match state.book.begin_request(&id, request_id) {
            Admission::Admitted => {}
            Admission::Duplicate => return answer_on_stream(&session, jsonrpc::Refusal::duplicate(request_id.clone())),
            Admission::Full => return super::sessions::too_many_in_flight(),
            Admission::Unknown => return (StatusCode::NOT_FOUND, "unknown or closed session").into_response(),
        }
    }
    if envelope.lists_tools == Some(ListingEra::Handshake)
        && let Some(request_id) = &envelope.request_id
        && state.book.handshake_done(&id)
    {
        // Answered from the serialized listing, on the stream as any answer.
        let answer = state.mcp.tools_list_response(&parts, request_id, ListingEra::Handshake);
        state.book.end_request(&id, request_id);
        return match session.outbox.push_json(answer) {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(_) => (StatusCode::NOT_FOUND, "session has ended").into_response(),
        };
    }
    // Handlers read request headers (e.g. X-Agent-Id) the same way on every transport: rmcp
    // puts the HTTP parts into a request's extensions on /mcp, and so do we here.
    match &mut message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
    let release = |state: &SseState| {
        if let Some(request_id) = &envelope.request_id {
            state.book.end_request(&id, request_id);
        }
    };
    match session.to_server.try_send(message) {
        Ok(()) => {
            if envelope.completes_handshake {
                state.book.complete_handshake(&id);
            }
            StatusCode::ACCEPTED.into_response()
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            release(&state);
            (StatusCode::SERVICE_UNAVAILABLE, "session is overloaded; retry shortly").into_response()
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            release(&state);
            (StatusCode::NOT_FOUND, "session has ended").into_response()
        }
    }
}

/// Answer a refused request on the session's stream, as the transport requires, and accept
/// the POST that carried it.
fn answer_on_stream(session: &SseSession, refusal: jsonrpc::Refusal) -> Response {
    match session.outbox.push(&refusal.message()) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "session has ended").into_response(),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}
