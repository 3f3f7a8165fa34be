//! Forwards a running call's progress and log reports to the client that made the call.
//!
//! Progress goes out only if the request carried a progress token. Log messages follow the
//! era's rule: handshake sessions get messages at or above the level they set (info until
//! they set one); 2026-07-28 requests only when their `_meta` asks for a level.

// MCP logging is deprecated by 2026-07-28 (SEP-2577) but is how every handshake-era client,
// Letta included, receives a plugin's log messages; we keep serving it.
#![allow(deprecated)]

use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken};
use rmcp::service::Peer;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::model::{CallEvent, LogLevel};

/// How long the result waits for queued notifications to be delivered. A client that stopped
/// reading must not hold the call's response (or its task) forever.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Events a call may have queued for delivery at once; beyond this the runtime drops them.
pub(crate) const EVENT_BUFFER: usize = 256;

/// Where and what to forward for one call.
#[derive(Debug, Clone)]
pub(crate) struct Forwarding {
    pub(crate) peer: Peer<RoleServer>,
    pub(crate) progress_token: Option<ProgressToken>,
    /// Minimum level of log messages to forward; `None` forwards none.
    pub(crate) min_log_level: Option<LoggingLevel>,
    pub(crate) logger: String,
}

/// A task delivering one call's events; finish it with [`Forwarder::flush`].
#[derive(Debug)]
pub(crate) struct Forwarder(JoinHandle<()>);

impl Forwarder {
    pub(crate) fn start(mut events: mpsc::Receiver<CallEvent>, to: Forwarding) -> Self {
        Self(tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                deliver(&to, event).await;
            }
        }))
    }

    /// Wait until everything the call reported is sent (its event sender must be dropped),
    /// so notifications reach the client before the result does.
    pub(crate) async fn flush(self) {
        let Self(task) = self;
        let abort = task.abort_handle();
        if tokio::time::timeout(FLUSH_TIMEOUT, task).await.is_err() {
            abort.abort();
            tracing::debug!("gave up delivering notifications to a slow client");
        }
    }
}

async fn deliver(to: &Forwarding, event: CallEvent) {
    // A failed send means the client is gone; the call itself carries on to its result.
    match event {
        CallEvent::Progress { progress, total, message } => {
            let Some(token) = &to.progress_token else {
                return;
            };
            let mut param = ProgressNotificationParam::new(token.clone(), progress);
            param.total = total;
            param.message = message;
            let _ = to.peer.notify_progress(param).await;
        }
        CallEvent::Log { level, message } => {
            let level = mcp_level(level);
            if to.min_log_level.is_none_or(|min| rank(level) < rank(min)) {
                return;
            }
            // An object, not a bare string: fastmcp (Letta's client) reads `data["msg"]`.
            let param =
                LoggingMessageNotificationParam::new(level, json!({ "msg": message })).with_logger(to.logger.clone());
            #[allow(deprecated)]
            // deprecated in 2026-07-28, still how handshake-era clients get logs
            let _ = to.peer.notify_logging_message(param).await;
        }
    }
}

fn mcp_level(level: LogLevel) -> LoggingLevel {
    match level {
        LogLevel::Debug => LoggingLevel::Debug,
        LogLevel::Info => LoggingLevel::Info,
        LogLevel::Warning => LoggingLevel::Warning,
        LogLevel::Error => LoggingLevel::Error,
    }
}

/// Severity order of MCP (RFC 5424) levels, least severe first.
pub(crate) fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}
