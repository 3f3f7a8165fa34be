//! The access gate of a call: the operator's rules decide (`crate::access`), the audit trail
//! records the whole decision, and the caller gets only the name of the deciding rule.
//!
//! Decisions are taken on the arguments exactly as the plugin will receive them (after the
//! optional-null rule), so what was decided is what runs.

use serde_json::Value;

use super::CallError;
use crate::access::{Bound, Caller, Decision, Effect, RuleRef};
use crate::audit::{Audit, AuditRecord};
use crate::model::CallContext;
use crate::principal::ANONYMOUS;

/// The rules' caller for `ctx`. A call without a principal (one that did not come over HTTP)
/// is judged as `anonymous`, never as someone in particular.
pub(super) fn caller(ctx: &CallContext) -> Caller<'_> {
    Caller {
        principal: ctx.principal.as_deref().unwrap_or(ANONYMOUS),
        groups: &ctx.groups,
        agent: ctx.agent_id.as_deref(),
    }
}

/// Decide a call of `tool` with `args` and record the decision.
pub(super) fn decide(access: &Bound, audit: &Audit, tool: &str, args: &Value, ctx: &CallContext) -> Decision {
    let decision = access.decide(&caller(ctx), tool, args);
    if access.policy().is_configured() {
        record(access, audit, tool, args, ctx, &decision);
    }
    decision
}

/// The error for a refused call: names the rule (or the default), never the policy.
pub(super) fn refusal(tool: &str, decision: Decision) -> CallError {
    CallError::Refused { tool: tool.to_owned(), rule: decision.rule }
}

/// What a refused caller reads.
pub(super) fn refusal_message(tool: &str, rule: Option<&RuleRef>) -> String {
    let why = match rule {
        Some(rule) => format!("refused by access rule #{} \"{}\"", rule.index, rule.name),
        None => "refused: no access rule lets this caller make this call, and the policy's default is deny".to_owned(),
    };
    format!("{why} ({tool}). This is the operator's policy: retrying will not change it.")
}

fn record(access: &Bound, audit: &Audit, tool: &str, args: &Value, ctx: &CallContext, decision: &Decision) {
    let rules = access.policy().rules();
    let matched: Vec<String> = decision
        .matched
        .iter()
        .filter_map(|&index| rules.get(index - 1))
        .map(|rule| format!("#{} {}", rule.index, rule.name))
        .collect();
    let groups: Vec<&str> = ctx.groups.iter().map(|g| &**g).collect();
    audit.record(&AuditRecord::Access {
        principal: ctx.principal.as_deref().unwrap_or(ANONYMOUS),
        groups: &groups,
        agent_id: ctx.agent_id.as_deref(),
        tool,
        decision: decision.effect.as_str(),
        rule: decision.rule.as_ref().map(|r| r.name.as_str()),
        rule_index: decision.rule.as_ref().map(|r| r.index),
        by_default: decision.rule.is_none(),
        matched: &matched,
        arguments_sha256: &arguments_digest(args),
    });
}

/// SHA-256 of the arguments' JSON: ties audit records to exact arguments without holding them.
pub(crate) fn arguments_digest(args: &Value) -> String {
    // The approvals book hashes the same canonical form, so the records of one call agree.
    crate::digest::json_sha256(args)
}

/// Whether the effect lets the call go on without anyone's approval.
pub(super) fn is_open(decision: &Decision) -> bool {
    decision.effect == Effect::Allow
}
