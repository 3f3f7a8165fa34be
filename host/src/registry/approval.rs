//! Calls that wait for an operator: a call whose access decision is `approve` is checked
//! against its schema first (so nobody approves a call that cannot run), then held in the
//! approvals book, outside the worker's queue, until an operator decides, its deadline passes
//! or its caller goes away. Approved, it runs once with exactly the arguments the operator saw.

use serde_json::Value;

use super::{CallError, Registry, Route};
use crate::access::RuleRef;
use crate::approvals::{ApprovalRequest, ApprovedCall, Verdict};
use crate::model::{CallContext, CallEvent, CallFailure, LogLevel};

impl Registry {
    /// Hold the call of `tool` with `args` (serialized: `args_json`) for approval; the
    /// approved call to run, or why there is none.
    pub(super) async fn hold_for_approval(
        &self,
        route: &Route,
        tool: &str,
        args: Value,
        args_json: &str,
        rule: &RuleRef,
        ctx: &CallContext,
    ) -> Result<ApprovedCall, CallError> {
        let Some(approvals) = &self.approvals else {
            return Err(CallError::ApprovalUnavailable {
                tool: tool.to_owned(),
                reason: "this server keeps no approvals book".into(),
            });
        };
        match self.worker.validate(route.input.source.clone(), args_json.to_owned()).await? {
            Ok(()) => {}
            Err(CallFailure::InvalidArguments(problems)) => {
                return Err(CallError::InvalidArguments { tool: tool.to_owned(), problems });
            }
            Err(failure) => return Err(failure.into()),
        }
        let request = ApprovalRequest {
            principal: ctx.principal.clone(),
            agent_id: ctx.agent_id.clone(),
            tool: tool.to_owned(),
            arguments: args,
            rule: format!("#{} {}", rule.index, rule.name),
        };
        let pending = approvals
            .submit(request)
            .map_err(|e| CallError::ApprovalUnavailable { tool: tool.to_owned(), reason: e.to_string() })?;
        let id = pending.id().to_owned();
        tell_caller(ctx, &id).await;
        // Dropping `pending` (the caller cancelled or went away) takes the entry out of the book.
        let verdict = tokio::select! {
            verdict = pending.verdict() => verdict,
            () = ctx.cancel.cancelled() => return Err(CallFailure::Cancelled.into()),
        };
        match verdict {
            Verdict::Approved { call, .. } => Ok(call),
            Verdict::Denied { reason, .. } => Err(CallError::ApprovalDenied { tool: tool.to_owned(), id, reason }),
            Verdict::Expired { reason } => Err(CallError::ApprovalExpired { tool: tool.to_owned(), id, reason }),
        }
    }
}

/// Tell the caller what it is waiting for: a progress notification (clients that asked for
/// progress) and a log message (clients that listen to logs, as Letta does).
async fn tell_caller(ctx: &CallContext, id: &str) {
    let Some(events) = &ctx.events else { return };
    let message = format!("waiting for operator approval: request {id}");
    // Best effort, never blocking the wait: a full buffer only loses the notice.
    let _ = events.try_send(CallEvent::Progress { progress: 0.0, total: None, message: Some(message.clone()) });
    let _ = events.try_send(CallEvent::Log { level: LogLevel::Info, message });
}
