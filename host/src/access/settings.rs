//! The `[access]` section of the operator's policy, as written, and its compilation into
//! [`super::AccessPolicy`]. Every error names the key at fault (`access.rule[2].when[0]`).

use serde::Deserialize;
use serde_json::Value;

use super::condition::{Condition, Test};
use super::glob::Glob;
use super::{AccessPolicy, Effect, Rule};

/// Most rules a policy may hold: evaluation is linear in the rules that name a tool.
const MAX_RULES: usize = 1000;
/// Most conditions, list values and names one rule may carry.
const MAX_PER_RULE: usize = 64;
/// Longest JSON Pointer.
const MAX_POINTER: usize = 256;

/// `[access]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// What happens to a call no rule matches: `allow` or `deny`.
    pub default: DefaultEffect,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleSection>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DefaultEffect {
    Allow,
    Deny,
}

/// One `[[access.rule]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    /// Shown to a refused caller and in the audit log; defaults to `rule N`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `X-Agent-Id` values. Asserted by the principal's client: see docs/security.md.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Globs over exposed tool names.
    pub tools: Vec<String>,
    pub effect: Effect,
    /// Conditions on the arguments; all must hold.
    #[serde(default)]
    pub when: Vec<ConditionSection>,
}

/// One condition: a pointer and exactly one test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSection {
    pub pointer: String,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default, rename = "in")]
    pub in_: Option<Vec<Value>>,
    #[serde(default)]
    pub not_in: Option<Vec<Value>>,
    #[serde(default)]
    pub matches: Option<String>,
}

/// A problem in `[access]`: the key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionError {
    pub key: String,
    pub reason: String,
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> SectionError {
    SectionError { key: key.into(), reason: reason.into() }
}

impl AccessSection {
    pub fn compile(&self) -> Result<AccessPolicy, SectionError> {
        if self.rules.len() > MAX_RULES {
            return Err(invalid("access.rule", format!("at most {MAX_RULES} rules")));
        }
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut names = std::collections::BTreeSet::new();
        for (i, section) in self.rules.iter().enumerate() {
            let rule = section.compile(i)?;
            if !names.insert(rule.name.clone()) {
                return Err(invalid(format!("access.rule[{i}].name"), format!("{:?} names two rules", rule.name)));
            }
            rules.push(rule);
        }
        Ok(AccessPolicy { configured: true, default: self.default, rules })
    }
}

impl RuleSection {
    fn compile(&self, index: usize) -> Result<Rule, SectionError> {
        let key = format!("access.rule[{index}]");
        let name = match &self.name {
            Some(name) if valid_label(name) => name.clone(),
            Some(_) => {
                return Err(invalid(format!("{key}.name"), "use 1-64 ASCII letters, digits, spaces, `-`, `_`, `.`"));
            }
            None => format!("rule {}", index + 1),
        };
        for (field, values) in [("principals", &self.principals), ("groups", &self.groups), ("agents", &self.agents)] {
            if values.len() > MAX_PER_RULE {
                return Err(invalid(format!("{key}.{field}"), format!("at most {MAX_PER_RULE} entries")));
            }
            if let Some(bad) = values.iter().find(|v| v.is_empty() || v.len() > 128) {
                return Err(invalid(format!("{key}.{field}"), format!("{bad:?} is empty or longer than 128 bytes")));
            }
        }
        if self.tools.is_empty() {
            return Err(invalid(format!("{key}.tools"), "name at least one tool or glob (`*` for every tool)"));
        }
        if self.tools.len() > MAX_PER_RULE {
            return Err(invalid(format!("{key}.tools"), format!("at most {MAX_PER_RULE} entries")));
        }
        if self.when.len() > MAX_PER_RULE {
            return Err(invalid(format!("{key}.when"), format!("at most {MAX_PER_RULE} conditions")));
        }
        let conditions = self
            .when
            .iter()
            .enumerate()
            .map(|(j, c)| c.compile(&format!("{key}.when[{j}]")))
            .collect::<Result<_, _>>()?;
        Ok(Rule {
            index: index + 1,
            name,
            principals: self.principals.clone(),
            groups: self.groups.clone(),
            agents: self.agents.clone(),
            tools: self.tools.iter().map(|t| Glob::new(t)).collect(),
            effect: self.effect,
            conditions,
        })
    }
}

impl ConditionSection {
    fn compile(&self, key: &str) -> Result<Condition, SectionError> {
        let pointer = &self.pointer;
        if pointer.len() > MAX_POINTER || !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(invalid(
                format!("{key}.pointer"),
                format!("a JSON Pointer starts with `/` (e.g. \"/environment\") and is at most {MAX_POINTER} bytes"),
            ));
        }
        let list = |field: &str, values: &Vec<Value>| {
            if values.is_empty() || values.len() > MAX_PER_RULE {
                Err(invalid(format!("{key}.{field}"), format!("give 1-{MAX_PER_RULE} values")))
            } else {
                Ok(values.clone())
            }
        };
        let test = match (&self.equals, &self.in_, &self.not_in, &self.matches) {
            (Some(value), None, None, None) => Test::Equals(value.clone()),
            (None, Some(values), None, None) => Test::In(list("in", values)?),
            (None, None, Some(values), None) => Test::NotIn(list("not_in", values)?),
            (None, None, None, Some(pattern)) => {
                Test::Matches(Condition::pattern(pattern).map_err(|reason| invalid(format!("{key}.matches"), reason))?)
            }
            _ => return Err(invalid(key, "give exactly one of `equals`, `in`, `not_in`, `matches`")),
        };
        Condition::new(pointer, test).ok_or_else(|| invalid(format!("{key}.pointer"), "not a JSON Pointer"))
    }
}

fn valid_label(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'-' | b'_' | b'.'))
}
