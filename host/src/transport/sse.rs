//! Legacy HTTP+SSE (protocol 2024-11-05): `GET /sse` opens a session stream, `POST
//! /messages?sessionId=…` feeds it. rmcp dropped its server for this transport, so each
//! session here is a pair of channels bridged into an rmcp service.
//!
//! Wire shape real clients expect: the first event is `endpoint` with a *relative* URL (the
//! Python client refuses another origin); a POST is answered `202` at once and the JSON-RPC
//! response goes out on that session's stream only; comments keep idle streams alive.
//!
//! Each session belongs to the principal that opened it (registered in the session book, which
//! caps and expires sessions); a POST by anyone else gets 404. A reader that stops reading is
//! dropped once its buffer stays full for [`STALLED_READER_TIMEOUT`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
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

use crate::mcp::{McpServer, Transport};
use crate::principal::Principal;

/// Messages buffered per direction and session. A client that posts faster than the session
/// consumes gets 503; a reader slower than the server eventually stalls only its own session.
const CHANNEL_CAPACITY: usize = 64;

/// Idle streams get a comment this often: it resets clients' read timeouts (Python: 300 s)
/// and keeps proxies from closing a quiet connection during a long call.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a session's outgoing buffer may stay full before its reader counts as stalled and
/// the session is closed: a client that never reads would otherwise pin the session's task and
/// buffers for as long as its TCP connection lives.
const STALLED_READER_TIMEOUT: Duration = Duration::from_secs(10);

/// The open legacy sessions: id → the sender feeding that session's service.
#[derive(Debug, Clone, Default)]
pub(crate) struct SseSessions(Arc<Mutex<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>);

impl SseSessions {
    fn insert(&self, id: &str, sender: mpsc::Sender<ClientJsonRpcMessage>) -> bool {
        // The session book has already applied the caps.
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        map.insert(id.to_owned(), sender);
        true
    }

    fn sender(&self, id: &str) -> Option<mpsc::Sender<ClientJsonRpcMessage>> {
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

/// Removes its session when the client's stream is dropped (the client disconnected).
struct SessionGuard {
    sessions: SseSessions,
    book: super::sessions::SessionBook,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
        self.book.remove(&self.id);
        tracing::debug!(session = %super::sessions::log_id(&self.id), "legacy SSE session closed");
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SseState {
    pub(crate) mcp: McpServer,
    pub(crate) sessions: SseSessions,
    /// Ends every open stream at shutdown, so graceful shutdown is not held by idle clients.
    pub(crate) shutdown: CancellationToken,
    /// Caps, principal binding and idle expiry, shared with `/mcp`.
    pub(crate) book: super::sessions::SessionBook,
    pub(crate) max_body_bytes: usize,
}

pub(crate) async fn open(State(state): State<SseState>, Extension(principal): Extension<Principal>) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    // Ends this session's stream: at shutdown, on idle expiry, or when its reader stalls.
    let close = state.shutdown.child_token();
    if let Err(refusal) = state.book.open(&id, principal.name(), close.clone()) {
        tracing::warn!(principal = %principal.name(), ?refusal, "refused a new SSE session");
        return refusal.into_response();
    }
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL_CAPACITY);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL_CAPACITY);
    if !state.sessions.insert(&id, to_server) {
        state.book.remove(&id);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many open SSE sessions").into_response();
    }
    let handler = state.mcp.session(Transport::LegacySse);
    let forget = SessionGuard { sessions: state.sessions.clone(), book: state.book.clone(), id: id.clone() };
    let sink = Box::pin(to_reader(to_client, close.clone(), forget));
    // `serve` waits for `initialize`, which arrives by POST later: never await it here.
    tokio::spawn(async move {
        match handler.serve((sink, ReceiverStream::new(from_client))).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::debug!(error = %e, "legacy SSE session ended before initialize"),
        }
    });
    tracing::debug!(session = %super::sessions::log_id(&id), principal = %principal.name(), "legacy SSE session opened");
    let guard = SessionGuard { sessions: state.sessions.clone(), book: state.book, id: id.clone() };
    Sse::new(events(&id, from_server, guard).take_until(close.cancelled_owned()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The session's reader stopped reading: its buffer stayed full too long.
#[derive(Debug, thiserror::Error)]
enum ReaderGone {
    #[error("the SSE reader stopped reading")]
    Stalled,
    #[error("the SSE stream is closed")]
    Closed,
}

/// Where the session's service writes: the stream's buffer, waiting at most
/// [`STALLED_READER_TIMEOUT`] for room before closing the session. A stalled stream is not
/// polled, so its own guard would not run: `forget` (dropped here) frees the session at once.
fn to_reader(
    to_client: mpsc::Sender<ServerJsonRpcMessage>,
    close: CancellationToken,
    forget: SessionGuard,
) -> impl futures::Sink<ServerJsonRpcMessage, Error = ReaderGone> + Send + 'static {
    futures::sink::unfold((to_client, close, forget), |(to_client, close, forget), message| async move {
        match tokio::time::timeout(STALLED_READER_TIMEOUT, to_client.send(message)).await {
            Ok(Ok(())) => Ok((to_client, close, forget)),
            Ok(Err(_)) => Err(ReaderGone::Closed),
            Err(_) => {
                tracing::warn!(session = %super::sessions::log_id(&forget.id), "closing an SSE session whose reader stopped reading");
                close.cancel();
                drop(forget);
                Err(ReaderGone::Stalled)
            }
        }
    })
}

fn events(
    id: &str,
    from_server: mpsc::Receiver<ServerJsonRpcMessage>,
    guard: SessionGuard,
) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let endpoint = Event::default().event("endpoint").data(format!("/messages?sessionId={id}"));
    let messages = ReceiverStream::new(from_server).filter_map(move |message| {
        let _session_lives_while_the_stream_does = &guard;
        let event = match serde_json::to_string(&message) {
            Ok(json) => Some(Ok(Event::default().event("message").data(json))),
            Err(e) => {
                tracing::warn!(error = %e, "dropping a server message that does not serialize");
                None
            }
        };
        std::future::ready(event)
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
    let Some(sender) = state.sessions.sender(&id).filter(|_| owned) else {
        return (StatusCode::NOT_FOUND, "unknown or closed session").into_response();
    };
    let Ok(body) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body is over the size limit or stalled").into_response();
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a JSON-RPC message: {e}")).into_response(),
    };
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
    match sender.try_send(message) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(mpsc::error::TrySendError::Full(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "session is overloaded; retry shortly").into_response()
        }
        Err(mpsc::error::TrySendError::Closed(_)) => (StatusCode::NOT_FOUND, "session has ended").into_response(),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}
