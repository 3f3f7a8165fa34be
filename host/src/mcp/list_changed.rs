//! Telling clients that the tool list changed (plugins were reloaded, or a held-back tool was
//! approved), on every path a client can listen on:
//!
//! - handshake-era sessions, over Streamable HTTP (their GET stream) or legacy SSE (the single
//!   stream): each session's peer is kept from `notifications/initialized`, with its caller and
//!   the fingerprint of what that caller was listed, and sent `notifications/tools/list_changed`
//!   when its own listing changed (a policy change that only touches other callers is not news);
//! - 2026-07-28 stateless clients: a `subscriptions/listen` stream that accepted
//!   `toolsListChanged` gets the notification on that stream.
//!
//! The registry bumps a generation counter on every change to what is listed or to the access
//! rules; this module only watches it. A client that stopped reading costs one failed send,
//! never a blocked reload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::SubscriptionFilter;
use rmcp::service::{Peer, SubscriptionContext};
use tokio::sync::watch;

use super::Shared;
use super::listing::CallerKey;

/// Longest a single session may take to accept the notification; a stalled client must not
/// delay the others.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A live handshake session: who it is, and the fingerprint of the listing it last had.
#[derive(Debug)]
struct Session {
    peer: Peer<RoleServer>,
    caller: CallerKey,
    fingerprint: u64,
}

/// Live handshake sessions (bounded by the transport's session caps). Closed ones are pruned
/// whenever one is added and at each change.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<Vec<Session>>>);

impl Sessions {
    pub(crate) fn add(&self, peer: Peer<RoleServer>, caller: CallerKey, fingerprint: u64) {
        let mut sessions = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.retain(|s| !s.peer.is_transport_closed());
        sessions.push(Session { peer, caller, fingerprint });
    }

    /// The sessions whose listing is no longer what `fingerprint_of` says it is now; their
    /// recorded fingerprints are updated.
    fn changed(&self, mut fingerprint_of: impl FnMut(&CallerKey) -> u64) -> Vec<Peer<RoleServer>> {
        let mut sessions = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.retain(|s| !s.peer.is_transport_closed());
        let mut now: HashMap<CallerKey, u64> = HashMap::new();
        let mut changed = Vec::new();
        for session in sessions.iter_mut() {
            let fingerprint = *now.entry(session.caller.clone()).or_insert_with_key(|caller| fingerprint_of(caller));
            if fingerprint != session.fingerprint {
                session.fingerprint = fingerprint;
                changed.push(session.peer.clone());
            }
        }
        changed
    }
}

/// Start the task that tells sessions their listing changed. It ends when the MCP server is
/// dropped or the registry's change channel closes.
pub(super) fn start(shared: &Arc<Shared>) {
    let mut changes = shared.registry.subscribe();
    let shared: Weak<Shared> = Arc::downgrade(shared);
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let peers = {
                let Some(shared) = shared.upgrade() else { return };
                shared.sessions.changed(|caller| shared.listings.get(&shared.registry, caller).fingerprint)
            };
            tracing::info!(sessions = peers.len(), "tool list changed; notifying the sessions it affects");
            let sends = peers.into_iter().map(|peer| async move {
                let _ = tokio::time::timeout(SEND_TIMEOUT, peer.notify_tool_list_changed()).await;
            });
            futures::future::join_all(sends).await;
        }
    });
}

/// What a `subscriptions/listen` request may have from us: tool list changes only.
pub(crate) fn accepted(requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
    let wanted = requested.tools_list_changed == Some(true);
    Some(if wanted {
        SubscriptionFilter::builder().tools_list_changed().build()
    } else {
        SubscriptionFilter::default()
    })
}

/// Serve one 2026-07-28 subscription until the client closes it.
pub(crate) async fn listen(mut changes: watch::Receiver<u64>, ctx: SubscriptionContext) {
    if ctx.accepted().tools_list_changed != Some(true) {
        ctx.cancelled().await;
        return;
    }
    changes.mark_unchanged();
    loop {
        tokio::select! {
            () = ctx.cancelled() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                if ctx.sink().notify_tool_list_changed().await.is_err() {
                    return;
                }
            }
        }
    }
}
