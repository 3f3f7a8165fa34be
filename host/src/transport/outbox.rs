//! A legacy SSE session's outgoing messages: a queue bounded in bytes between the session's
//! rmcp service (which writes) and the client's event stream (which reads).
//!
//! rmcp writes every response from a task of its own; if writing waited for a reader that has
//! stopped reading, those tasks (and their results) would pile up without bound. Writing here
//! never waits: a message is serialized and queued at once, or, when the reader has fallen more
//! than [`OUTPUT_LIMIT`] bytes (or [`STALLED_READER_TIMEOUT`]) behind, the session is closed
//! and its queue freed. So a stalled reader costs at most its bound plus one message. The sink
//! never panics and never blocks; after closing it answers every write with an error.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rmcp::model::ServerJsonRpcMessage;
use tokio_util::sync::CancellationToken;

/// Bytes of serialized messages a session may have waiting for its reader. One message is
/// always accepted into an empty queue, whatever its size (a result is bounded by the plugin's
/// output limit), so a reader that keeps up never hits this.
pub(crate) const OUTPUT_LIMIT: usize = 4 << 20;

/// How long the oldest waiting message may go unread before the reader counts as stalled
/// and the session is closed.
pub(crate) const STALLED_READER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a message was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutboxClosed {
    #[error("the SSE reader fell too far behind; the session was closed")]
    Overflow,
    #[error("the SSE reader stopped reading; the session was closed")]
    Stalled,
    #[error("the SSE session is closed")]
    Closed,
}

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    bytes: usize,
    closed: bool,
    /// The reader's stream, to wake when a message arrives.
    waker: Option<Waker>,
    /// Since when the message at the front of the queue has waited (none while empty).
    waiting_since: Option<Instant>,
}

/// The session's queue. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Outbox {
    state: Arc<Mutex<State>>,
    /// Cancelled when the session closes (by us, at shutdown, or on idle expiry).
    close: CancellationToken,
    /// Run once when the outbox closes the session itself: forget it everywhere, at once (a
    /// stalled stream is never polled again, so its own clean-up would not run).
    on_close: Arc<dyn Fn() + Send + Sync>,
    /// Why the session closed, for the log.
    label: Arc<str>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("session", &self.label).field("pending", &self.pending_bytes()).finish()
    }
}

impl Outbox {
    /// An empty outbox for session `label` (its log id), closed by `close`; `on_close` forgets
    /// the session when the outbox closes it.
    pub(crate) fn new(label: &str, close: CancellationToken, on_close: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self { state: Arc::default(), close, on_close, label: Arc::from(label) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `message` for the reader, or close the session if the reader is too far behind.
    pub(crate) fn push(&self, message: &ServerJsonRpcMessage) -> Result<(), OutboxClosed> {
        if self.close.is_cancelled() {
            return Err(OutboxClosed::Closed);
        }
        let json = match serde_json::to_string(message) {
            Ok(json) => json,
            Err(e) => {
                tracing::warn!(error = %e, "dropping a server message that does not serialize");
                return Ok(());
            }
        };
        self.push_json(json)
    }

    /// Queue a message already serialized (one JSON-RPC message, no newline framing needed).
    pub(crate) fn push_json(&self, json: String) -> Result<(), OutboxClosed> {
        if self.close.is_cancelled() {
            return Err(OutboxClosed::Closed);
        }
        let mut state = self.state();
        if state.closed {
            return Err(OutboxClosed::Closed);
        }
        if !state.queue.is_empty() {
            let refusal = if state.bytes + json.len() > OUTPUT_LIMIT {
                Some(OutboxClosed::Overflow)
            } else if state.waiting_since.is_some_and(|since| since.elapsed() >= STALLED_READER_TIMEOUT) {
                Some(OutboxClosed::Stalled)
            } else {
                None
            };
            if let Some(refusal) = refusal {
                drop(state);
                self.close_now(&refusal);
                return Err(refusal);
            }
        }
        state.bytes += json.len();
        state.queue.push_back(json);
        state.waiting_since.get_or_insert_with(Instant::now);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        Ok(())
    }

    /// Bytes queued and not yet taken by the reader.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.state().bytes
    }

    /// Whether new requests should be refused: the reader is at its bound or has stalled (a
    /// stalled session is closed here, since nothing else may ever notice).
    pub(crate) fn refuses_more(&self) -> bool {
        let (full, stalled) = {
            let state = self.state();
            let stalled = state.waiting_since.is_some_and(|since| since.elapsed() >= STALLED_READER_TIMEOUT);
            (state.bytes >= OUTPUT_LIMIT, stalled)
        };
        if stalled {
            self.close_now(&OutboxClosed::Stalled);
        }
        full || stalled
    }

    /// Close the session at once: free the queue, end the reader's stream, forget the session.
    fn close_now(&self, why: &OutboxClosed) {
        {
            let mut state = self.state();
            if state.closed {
                return;
            }
            state.closed = true;
            state.queue = VecDeque::new();
            state.bytes = 0;
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
        tracing::warn!(session = %self.label, reason = %why, "closing an SSE session");
        self.close.cancel();
        (self.on_close)();
    }

    /// The writing end, for the session's rmcp service.
    pub(crate) fn sink(&self) -> OutboxSink {
        OutboxSink(self.clone())
    }

    /// The reading end, for the client's event stream: each item is one message's JSON.
    pub(crate) fn stream(&self) -> OutboxStream {
        OutboxStream(self.clone())
    }
}

/// Never waits, never panics: every message is queued or refused at once.
pub(crate) struct OutboxSink(Outbox);

impl futures::Sink<ServerJsonRpcMessage> for OutboxSink {
    type Error = OutboxClosed;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(if self.0.close.is_cancelled() { Err(OutboxClosed::Closed) } else { Ok(()) })
    }

    fn start_send(self: Pin<&mut Self>, message: ServerJsonRpcMessage) -> Result<(), Self::Error> {
        self.0.push(&message)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

/// The queued messages, in order; ends when the session closes.
pub(crate) struct OutboxStream(Outbox);

impl futures::Stream for OutboxStream {
    type Item = String;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let mut state = self.0.state();
        if let Some(json) = state.queue.pop_front() {
            state.bytes -= json.len();
            state.waiting_since = (!state.queue.is_empty()).then(Instant::now);
            return Poll::Ready(Some(json));
        }
        if state.closed || self.0.close.is_cancelled() {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt as _, StreamExt as _};
    use rmcp::model::{ErrorData, NumberOrString};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn message(bytes: usize) -> ServerJsonRpcMessage {
        ServerJsonRpcMessage::error(ErrorData::internal_error("x".repeat(bytes), None), Some(NumberOrString::Number(1)))
    }

    fn outbox() -> (Outbox, Arc<AtomicUsize>, CancellationToken) {
        let closed = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&closed);
        let close = CancellationToken::new();
        let outbox = Outbox::new("s", close.clone(), Arc::new(move || _ = count.fetch_add(1, Ordering::SeqCst)));
        (outbox, closed, close)
    }

    #[tokio::test]
    async fn a_reader_gets_every_message_in_order() {
        let (outbox, closed, _) = outbox();
        let mut sink = outbox.sink();
        sink.send(message(10)).await.expect("queued");
        sink.send(message(20)).await.expect("queued");
        let mut stream = outbox.stream();
        assert!(stream.next().await.expect("first").len() < stream.next().await.expect("second").len());
        assert_eq!(outbox.pending_bytes(), 0);
        assert_eq!(closed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_its_bound_closes_the_session_and_frees_the_queue() {
        let (outbox, closed, close) = outbox();
        let mut sink = outbox.sink();
        // One message larger than the bound still goes to an empty queue.
        sink.send(message(OUTPUT_LIMIT + 1)).await.expect("one message always fits");
        let error = sink.send(message(10)).await.expect_err("over the bound");
        assert!(matches!(error, OutboxClosed::Overflow), "{error}");
        assert_eq!(outbox.pending_bytes(), 0, "the queue is freed");
        assert!(close.is_cancelled());
        assert_eq!(closed.load(Ordering::SeqCst), 1, "forgotten once");
        assert!(matches!(sink.send(message(1)).await, Err(OutboxClosed::Closed)), "later writes fail, no panic");
        assert_eq!(outbox.stream().next().await, None, "the reader's stream ends");
    }

    #[tokio::test]
    async fn new_requests_are_refused_at_the_bound() {
        let (outbox, _, _) = outbox();
        assert!(!outbox.refuses_more());
        outbox.push(&message(OUTPUT_LIMIT)).expect("queued");
        assert!(outbox.refuses_more());
    }
}
