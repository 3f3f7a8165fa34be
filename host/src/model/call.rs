//! What a call is given by its caller, besides its arguments.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::CallEvent;

/// What a call is given by its caller: a way to be cancelled, a place to report events.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub cancel: CancellationToken,
    /// Where progress and log reports go; `None` drops them (e.g. during `describe()`).
    pub events: Option<mpsc::Sender<CallEvent>>,
    /// The caller's agent id, if the client sent one: for the audit trail, for plugins' own
    /// records through `host.agent-id`, and for access rules that name agents (asserted by the
    /// principal's client, so worth exactly as much as the principal).
    pub agent_id: Option<String>,
    /// The authenticated principal the call came from: for the audit trail and access rules.
    pub principal: Option<String>,
    /// The principal's groups, for access rules.
    pub groups: Arc<[Arc<str>]>,
}
