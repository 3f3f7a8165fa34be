//! Telling clients that the tool list changed (plugins were reloaded, or a held-back tool was
//! approved), on every path a client can listen on:
//!
//! - handshake-era sessions, over Streamable HTTP (their GET stream) or legacy SSE (the single
//!   stream): each session's peer is kept from `notifications/initialized` and sent
//!   `notifications/tools/list_changed`;
//! - 2026-07-28 stateless clients: a `subscriptions/listen` stream that accepted
//!   `toolsListChanged` gets the notification on that stream.
//!
//! The registry bumps a generation counter on every change to what is listed; this module only
//! watches it. A client that stopped reading costs one failed send, never a blocked reload.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::SubscriptionFilter;
use rmcp::service::{Peer, SubscriptionContext};
use tokio::sync::watch;

use crate::registry::Registry;

/// Longest a single session may take to accept the notification; a stalled client must not
/// delay the others.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Live handshake sessions. Closed ones are pruned at each change.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sessions(Arc<Mutex<Vec<Peer<RoleServer>>>>);

impl Sessions {
    pub(crate) fn add(&self, peer: Peer<RoleServer>) {
        let mut peers = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
    }

    fn live(&self) -> Vec<Peer<RoleServer>> {
        let mut peers = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        peers.retain(|p| !p.is_transport_closed());
        peers.clone()
    }
}

/// Start the task that notifies `sessions` of every change in `registry`. It ends when the
/// registry is dropped (its change channel closes).
pub(crate) fn start(registry: &Registry, sessions: Sessions) {
    let mut changes = registry.subscribe();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let peers = sessions.live();
            tracing::info!(sessions = peers.len(), "tool list changed; notifying sessions");
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
