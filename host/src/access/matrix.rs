//! What `sanctum check` shows of the access rules: for each principal or group the operator
//! named, and each tool, what a call gets (with the agents and conditions that change it), and
//! the rules that can never matter because they name no served tool or no known caller.

use super::{AccessPolicy, Caller, Effect, Rule};

/// One row of the matrix: who, and per tool what a call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub who: String,
    pub cells: Vec<(String, String)>,
}

/// The matrix and its warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
}

/// A caller the operator configured: a token's principal and groups.
#[derive(Debug, Clone)]
pub struct Identity {
    pub principal: String,
    pub groups: Vec<String>,
}

/// The matrix of `policy` over `identities` (plus one row per group the rules name that no
/// identity has, for callers from an identity provider) and `tools`. `dynamic_callers`: callers
/// not known in advance exist (JWT), so a rule naming an unknown principal is not a mistake.
pub fn report(policy: &AccessPolicy, identities: &[Identity], tools: &[String], dynamic_callers: bool) -> Report {
    let mut report = Report::default();
    if !policy.is_configured() {
        return report;
    }
    let mut rows: Vec<(String, String, Vec<String>)> = identities
        .iter()
        .map(|i| (format!("principal {}", i.principal), i.principal.clone(), i.groups.clone()))
        .collect();
    let known_groups: Vec<&String> = identities.iter().flat_map(|i| i.groups.iter()).collect();
    let mut extra_groups: Vec<&String> =
        policy.rules().iter().flat_map(|r| r.groups.iter()).filter(|g| !known_groups.contains(g)).collect();
    extra_groups.sort();
    extra_groups.dedup();
    for group in extra_groups {
        // A caller whose only trait is this group (its principal name matches no rule).
        rows.push((format!("group {group}"), String::from("\u{0}"), vec![group.clone()]));
    }
    for (who, principal, groups) in rows {
        let groups: Vec<std::sync::Arc<str>> = groups.iter().map(|g| std::sync::Arc::from(g.as_str())).collect();
        let caller = Caller { principal: &principal, groups: &groups, agent: None };
        let cells = tools.iter().map(|tool| (tool.clone(), cell(policy, &caller, tool))).collect();
        report.rows.push(Row { who, cells });
    }
    for rule in policy.rules() {
        let label = format!("access rule #{} \"{}\"", rule.index, rule.name);
        if !tools.iter().any(|t| rule.covers_tool(t)) {
            let globs: Vec<&str> = rule.tools.iter().map(super::Glob::as_str).collect();
            report.warnings.push(format!("{label} matches no served tool ({})", globs.join(", ")));
        }
        let unknown_principals: Vec<&String> =
            rule.principals.iter().filter(|p| !identities.iter().any(|i| &i.principal == *p)).collect();
        let unknown_groups: Vec<&String> = rule.groups.iter().filter(|g| !known_groups.contains(g)).collect();
        let names_someone = (rule.principals.is_empty() && rule.groups.is_empty())
            || unknown_principals.len() < rule.principals.len()
            || unknown_groups.len() < rule.groups.len();
        if !names_someone && !dynamic_callers {
            report.warnings.push(format!("{label} matches no configured principal or group"));
        } else if !unknown_principals.is_empty() && !dynamic_callers {
            report.warnings.push(format!("{label} names unknown principal(s) {unknown_principals:?}"));
        }
        if rule.effect == Effect::Allow && rule.conditions.iter().any(|c| matches!(c.test, super::Test::NotIn(_))) {
            report.warnings.push(format!(
                "{label} allows with `not_in`, a deny-list: values that merely look alike (other spellings, \
                 Unicode look-alikes) pass it; prefer `in` or `equals`"
            ));
        }
    }
    report
}

/// What `caller` gets for `tool`, in words: one effect, or the effects per agent and condition
/// followed by what happens otherwise.
fn cell(policy: &AccessPolicy, caller: &Caller<'_>, tool: &str) -> String {
    let applicable: Vec<&Rule> =
        policy.rules().iter().filter(|r| r.covers_tool(tool) && r.names_identity(caller)).collect();
    let always = |r: &&&Rule| r.conditions.is_empty() && r.agents.is_empty();
    // Rules that always apply to this caller fix what happens when no other rule does.
    let otherwise = applicable.iter().filter(always).map(|r| r.effect).max().unwrap_or(policy.default_effect());
    if otherwise == Effect::Deny && applicable.iter().any(|r| always(&r) && r.effect == Effect::Deny) {
        let deny = applicable.iter().find(|r| always(r) && r.effect == Effect::Deny).map_or(0, |r| r.index);
        return format!("deny (#{deny})");
    }
    let parts: Vec<String> = applicable
        .iter()
        .filter(|r| !always(r))
        .map(|rule| {
            let mut part = rule.effect.as_str().to_owned();
            if !rule.agents.is_empty() {
                part.push_str(&format!(" for agent(s) {}", rule.agents.join(", ")));
            }
            if !rule.conditions.is_empty() {
                part.push_str(&format!(" when {}", rule.describe_conditions()));
            }
            part.push_str(&format!(" (#{})", rule.index));
            part
        })
        .collect();
    if parts.is_empty() {
        return otherwise.as_str().to_owned();
    }
    format!("{}; otherwise {}", parts.join("; "), otherwise.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_spells_out_agents_conditions_and_the_fallback() {
        #[derive(serde::Deserialize)]
        struct File {
            access: super::super::AccessSection,
        }
        let text = r#"
[access]
default = "deny"
[[access.rule]]
name = "ops-staging"
groups = ["ops"]
agents = ["ops-agent"]
tools = ["devops__deploy"]
effect = "allow"
when = [{ pointer = "/environment", equals = "staging" }]
[[access.rule]]
name = "read"
principals = ["letta"]
tools = ["devops__status"]
effect = "allow"
[[access.rule]]
name = "typo"
principals = ["leta"]
tools = ["devops__statsu"]
effect = "allow"
[[access.rule]]
name = "deny-list"
groups = ["sre"]
tools = ["devops__*"]
effect = "allow"
when = [{ pointer = "/environment", not_in = ["production"] }]
"#;
        let file: File = toml::from_str(text).expect("parses");
        let policy = file.access.compile().expect("compiles");
        let identities = [Identity { principal: "letta".into(), groups: vec!["ops".into()] }];
        let tools = vec!["devops__deploy".to_owned(), "devops__status".to_owned()];
        let report = report(&policy, &identities, &tools, false);
        let letta = &report.rows[0];
        assert_eq!(letta.who, "principal letta");
        assert_eq!(
            letta.cells[0].1,
            "allow for agent(s) ops-agent when /environment == \"staging\" (#1); otherwise deny"
        );
        assert_eq!(letta.cells[1].1, "allow");
        assert_eq!(report.rows[1].who, "group sre", "a group only the rules name gets a row");
        let warnings = report.warnings.join("\n");
        assert!(warnings.contains("#3 \"typo\" matches no served tool"), "{warnings}");
        assert!(warnings.contains("#3 \"typo\" matches no configured principal"), "{warnings}");
        assert!(warnings.contains("#4 \"deny-list\" allows with `not_in`"), "{warnings}");
        assert!(!warnings.contains("#1"), "{warnings}");
    }
}
