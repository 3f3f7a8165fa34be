//! Who may call what: the operator's access rules, and the decision for one call.
//!
//! A leaf. The policy parses `[access]` into an [`AccessPolicy`]; the registry binds it to the
//! tool names of each table generation ([`Bound`]) and asks it, for every call, what the
//! caller may do, and, for every listing, which tools the caller sees. It knows no MCP, HTTP
//! or wasm, and it sees arguments only after the registry has normalised them.
//!
//! # The combination rule
//! Among the rules that match a call (who, tool and conditions), `deny` beats `approve` beats
//! `allow`, and the first rule of the winning effect is the one named. No matching rule: the
//! `default`. A condition that cannot be decided (absent field, other JSON type, unknown
//! pointer) never makes an `allow` rule match, and always makes a `deny` or `approve` rule
//! match: every doubt resolves the closed way.
//!
//! Who: `principals` and `groups` together name the callers a rule is for (either list may
//! match; both empty means every principal); `agents`, when given, further requires the
//! call's `X-Agent-Id` to be one of them, which is only as strong as the principal's client.

mod condition;
mod glob;
pub mod matrix;
mod settings;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use condition::{Condition, Test, Truth};
pub use glob::Glob;
pub use settings::{AccessSection, DefaultEffect, SectionError};

/// What a rule does to the calls it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Approve,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based position in the policy.
    pub index: usize,
    pub name: String,
    pub principals: Vec<String>,
    pub groups: Vec<String>,
    pub agents: Vec<String>,
    pub tools: Vec<Glob>,
    pub effect: Effect,
    pub conditions: Vec<Condition>,
}

impl Rule {
    /// Whether the rule is for `caller`.
    pub fn names(&self, caller: &Caller<'_>) -> bool {
        let by_agent =
            self.agents.is_empty() || caller.agent.is_some_and(|agent| self.agents.iter().any(|a| a == agent));
        self.names_identity(caller) && by_agent
    }

    /// Whether the rule is for `caller` by principal or group, whatever the agent.
    pub fn names_identity(&self, caller: &Caller<'_>) -> bool {
        (self.principals.is_empty() && self.groups.is_empty())
            || self.principals.iter().any(|p| p == caller.principal)
            || self.groups.iter().any(|g| caller.groups.iter().any(|c| **c == **g))
    }

    pub fn covers_tool(&self, tool: &str) -> bool {
        self.tools.iter().any(|g| g.matches(tool))
    }

    /// Whether the rule applies to a call with `args`, its conditions resolved the closed way.
    fn applies(&self, args: &Value) -> bool {
        match Truth::all(self.conditions.iter().map(|c| c.eval(args))) {
            Truth::True => true,
            Truth::False => false,
            Truth::Unknown => self.effect != Effect::Allow,
        }
    }

    /// The conditions, as `sanctum check` prints them.
    pub fn describe_conditions(&self) -> String {
        self.conditions.iter().map(Condition::describe).collect::<Vec<_>>().join(" and ")
    }
}

/// The caller of one call, as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub principal: &'a str,
    pub groups: &'a [Arc<str>],
    pub agent: Option<&'a str>,
}

/// The rules, as the operator wrote them.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// False when the policy has no `[access]` section: every caller may call every tool.
    configured: bool,
    default: DefaultEffect,
    rules: Vec<Rule>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self::unrestricted()
    }
}

impl AccessPolicy {
    /// No `[access]` section: everything allowed to every authenticated caller.
    pub fn unrestricted() -> Self {
        Self { configured: false, default: DefaultEffect::Allow, rules: Vec::new() }
    }

    pub fn is_configured(&self) -> bool {
        self.configured
    }

    pub fn default_effect(&self) -> Effect {
        match self.default {
            DefaultEffect::Allow => Effect::Allow,
            DefaultEffect::Deny => Effect::Deny,
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// Which rule decided a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    pub index: usize,
    pub name: String,
}

/// The decision for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    /// The deciding rule; `None` when no rule matched and the default decided.
    pub rule: Option<RuleRef>,
    /// The 1-based index of every rule that matched, in policy order (for the audit record;
    /// names are looked up only when a record is written).
    pub matched: Vec<usize>,
}

/// How a tool appears in one caller's listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listed {
    /// Callable without approval (perhaps only with some arguments).
    Open,
    /// Some calls need an operator's approval (those matching a conditional `approve` rule).
    SometimesApproval,
    /// Every call needs an operator's approval.
    Approval,
}

/// The rules bound to one generation's tool names: for each tool, the rules whose globs cover
/// it, so a decision never matches a glob.
#[derive(Debug, Clone)]
pub struct Bound {
    policy: Arc<AccessPolicy>,
    by_tool: HashMap<String, Vec<u32>>,
}

impl Bound {
    pub fn new<'a>(policy: Arc<AccessPolicy>, tools: impl IntoIterator<Item = &'a str>) -> Self {
        let mut by_tool = HashMap::new();
        for tool in tools {
            let rules: Vec<u32> = policy
                .rules
                .iter()
                .enumerate()
                .filter(|(_, rule)| rule.covers_tool(tool))
                .filter_map(|(i, _)| u32::try_from(i).ok())
                .collect();
            by_tool.insert(tool.to_owned(), rules);
        }
        Self { policy, by_tool }
    }

    pub fn policy(&self) -> &Arc<AccessPolicy> {
        &self.policy
    }

    fn rules_for<'s>(&'s self, caller: &'s Caller<'_>, tool: &str) -> impl Iterator<Item = &'s Rule> + 's {
        let indices = self.by_tool.get(tool).map(Vec::as_slice).unwrap_or_default();
        indices.iter().filter_map(|&i| self.policy.rules.get(i as usize)).filter(move |rule| rule.names(caller))
    }

    /// What `caller` may do with a call of `tool` with `args`.
    pub fn decide(&self, caller: &Caller<'_>, tool: &str, args: &Value) -> Decision {
        if !self.policy.configured {
            return Decision { effect: Effect::Allow, rule: None, matched: Vec::new() };
        }
        let mut winner: Option<&Rule> = None;
        let mut matched = Vec::new();
        for rule in self.rules_for(caller, tool).filter(|rule| rule.applies(args)) {
            matched.push(rule.index);
            if winner.is_none_or(|w| rule.effect > w.effect) {
                winner = Some(rule);
            }
        }
        match winner {
            Some(rule) => Decision {
                effect: rule.effect,
                rule: Some(RuleRef { index: rule.index, name: rule.name.clone() }),
                matched,
            },
            None => Decision { effect: self.policy.default_effect(), rule: None, matched },
        }
    }

    /// Whether `caller` sees `tool` in its listing, and how: seen when some call of it could
    /// be allowed (with or without approval); hidden when an unconditional `deny` covers it, or
    /// when nothing but the default could let it through and the default is `deny`.
    pub fn listed(&self, caller: &Caller<'_>, tool: &str) -> Option<Listed> {
        if !self.policy.configured {
            return Some(Listed::Open);
        }
        let mut could_allow = self.policy.default == DefaultEffect::Allow;
        let (mut approval, mut sometimes) = (false, false);
        for rule in self.rules_for(caller, tool) {
            match (rule.effect, rule.conditions.is_empty()) {
                (Effect::Deny, true) => return None,
                (Effect::Deny, false) => {}
                (Effect::Approve, true) => {
                    approval = true;
                    could_allow = true;
                }
                (Effect::Approve, false) => {
                    sometimes = true;
                    could_allow = true;
                }
                (Effect::Allow, _) => could_allow = true,
            }
        }
        if !could_allow {
            return None;
        }
        Some(if approval {
            Listed::Approval
        } else if sometimes {
            Listed::SometimesApproval
        } else {
            Listed::Open
        })
    }
}

#[cfg(test)]
mod tests;
