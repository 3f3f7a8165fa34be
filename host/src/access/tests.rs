use serde_json::json;

use super::*;

fn policy(toml_text: &str) -> Arc<AccessPolicy> {
    #[derive(serde::Deserialize)]
    struct File {
        access: AccessSection,
    }
    let file: File = toml::from_str(toml_text).expect("parses");
    Arc::new(file.access.compile().expect("compiles"))
}

const TOOLS: [&str; 5] = ["devops__deploy", "devops__status", "devops__history", "botfather__get_me", "health"];

/// The setup the docs show: ops deploys to staging freely and to production with approval;
/// support reads status, history and the bot profile; nobody else gets anything.
const SETUP: &str = r#"
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
name = "ops-production"
groups = ["ops"]
agents = ["ops-agent"]
tools = ["devops__deploy"]
effect = "approve"
when = [{ pointer = "/environment", equals = "production" }]

[[access.rule]]
name = "read-only"
principals = ["letta"]
tools = ["devops__status", "devops__history", "botfather__get_me"]
effect = "allow"

[[access.rule]]
name = "no-support-deploys"
agents = ["support-agent"]
tools = ["devops__deploy"]
effect = "deny"
"#;

fn bound() -> Bound {
    Bound::new(policy(SETUP), TOOLS)
}

fn ops() -> Vec<Arc<str>> {
    vec![Arc::from("ops")]
}

#[test]
fn deny_beats_approve_beats_allow_and_the_default_decides_the_rest() {
    let b = bound();
    let groups = ops();
    let ops_agent = Caller { principal: "letta", groups: &groups, agent: Some("ops-agent") };
    let staging = b.decide(&ops_agent, "devops__deploy", &json!({"environment": "staging"}));
    assert_eq!((staging.effect, staging.rule.map(|r| r.name)), (Effect::Allow, Some("ops-staging".into())));
    let production = b.decide(&ops_agent, "devops__deploy", &json!({"environment": "production"}));
    assert_eq!(production.effect, Effect::Approve);
    let other = b.decide(&ops_agent, "devops__deploy", &json!({"environment": "qa"}));
    assert_eq!((other.effect, other.rule), (Effect::Deny, None), "no rule: the default");
    // The ops group with the support agent: the deny rule wins over the allow.
    let support = Caller { principal: "letta", groups: &groups, agent: Some("support-agent") };
    let refused = b.decide(&support, "devops__deploy", &json!({"environment": "staging"}));
    assert_eq!(refused.effect, Effect::Deny);
    assert_eq!(refused.rule.map(|r| (r.index, r.name)), Some((4, "no-support-deploys".into())));
    assert_eq!(b.decide(&support, "devops__status", &json!({})).effect, Effect::Allow);
    let stranger = Caller { principal: "ci", groups: &[], agent: None };
    assert_eq!(b.decide(&stranger, "devops__status", &json!({})).effect, Effect::Deny);
}

#[test]
fn doubt_never_allows_and_always_denies_or_asks() {
    let b = bound();
    let groups = ops();
    let ops_agent = Caller { principal: "letta", groups: &groups, agent: Some("ops-agent") };
    for args in [
        json!({}),
        json!({"environment": ["staging"]}),
        json!({"environment": null}),
        json!({"environment": {"name": "staging"}}),
        json!({"environment": "st\u{0430}ging"}),
    ] {
        let decision = b.decide(&ops_agent, "devops__deploy", &args);
        assert_ne!(decision.effect, Effect::Allow, "{args}");
    }
    // Absent or mistyped: the approve rule's condition is unknown, so approval is asked.
    assert_eq!(b.decide(&ops_agent, "devops__deploy", &json!({})).effect, Effect::Approve);
    assert_eq!(b.decide(&ops_agent, "devops__deploy", &json!({"environment": ["production"]})).effect, Effect::Approve);
}

#[test]
fn listings_show_what_could_be_allowed_and_flag_approval() {
    let b = bound();
    let groups = ops();
    let ops_agent = Caller { principal: "letta", groups: &groups, agent: Some("ops-agent") };
    assert_eq!(b.listed(&ops_agent, "devops__deploy"), Some(Listed::SometimesApproval));
    assert_eq!(b.listed(&ops_agent, "devops__status"), Some(Listed::Open));
    assert_eq!(b.listed(&ops_agent, "health"), None);
    let support = Caller { principal: "letta", groups: &groups, agent: Some("support-agent") };
    assert_eq!(b.listed(&support, "devops__deploy"), None, "an unconditional deny hides it");
    let no_agent = Caller { principal: "letta", groups: &groups, agent: None };
    assert_eq!(b.listed(&no_agent, "devops__deploy"), None, "the ops rules need the ops agent");
    assert_eq!(b.listed(&no_agent, "botfather__get_me"), Some(Listed::Open));
    let always = Bound::new(
        policy("[access]\ndefault = \"allow\"\n[[access.rule]]\ntools = [\"devops__*\"]\neffect = \"approve\""),
        TOOLS,
    );
    let anyone = Caller { principal: "x", groups: &[], agent: None };
    assert_eq!(always.listed(&anyone, "devops__deploy"), Some(Listed::Approval));
    assert_eq!(always.listed(&anyone, "health"), Some(Listed::Open));
}

#[test]
fn no_access_section_allows_everything() {
    let b = Bound::new(Arc::new(AccessPolicy::unrestricted()), TOOLS);
    let anyone = Caller { principal: "anonymous", groups: &[], agent: None };
    assert_eq!(b.decide(&anyone, "devops__deploy", &json!({})).effect, Effect::Allow);
    assert_eq!(b.listed(&anyone, "devops__deploy"), Some(Listed::Open));
}

#[test]
fn bad_sections_are_refused_naming_the_key() {
    let error = |text: &str| {
        #[derive(serde::Deserialize)]
        struct File {
            access: AccessSection,
        }
        let file: File = toml::from_str(text).expect("parses");
        file.access.compile().expect_err("refused")
    };
    let base = "[access]\ndefault = \"deny\"\n[[access.rule]]\ntools = [\"*\"]\neffect = \"allow\"\n";
    let e = error(&format!("{base}when = [{{ pointer = \"environment\", equals = \"x\" }}]"));
    assert_eq!(e.key, "access.rule[0].when[0].pointer");
    let e = error(&format!("{base}when = [{{ pointer = \"/e\", equals = \"x\", in = [\"y\"] }}]"));
    assert_eq!(e.key, "access.rule[0].when[0]");
    let e = error(&format!("{base}when = [{{ pointer = \"/e\", matches = \"(a)\\\\1\" }}]"));
    assert_eq!(e.key, "access.rule[0].when[0].matches");
    let e = error("[access]\ndefault = \"deny\"\n[[access.rule]]\ntools = []\neffect = \"allow\"");
    assert_eq!(e.key, "access.rule[0].tools");
    let e = error(&format!("{base}name = \"a\"\n[[access.rule]]\nname = \"a\"\ntools = [\"*\"]\neffect = \"deny\""));
    assert_eq!(e.key, "access.rule[1].name");
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct File {
        access: AccessSection,
    }
    assert!(toml::from_str::<File>("[access]\ndefault = \"approve\"").is_err(), "the default is allow or deny");
    assert!(toml::from_str::<File>("[access]\ndefault = \"deny\"\nrules = []").is_err(), "unknown keys");
}

#[test]
fn a_hundred_rules_decide_quickly_enough_to_not_matter() {
    // Not a timing assertion (that is the benchmark's job): the index keeps the rules a
    // decision looks at to those naming the tool.
    let mut text = String::from("[access]\ndefault = \"deny\"\n");
    for i in 0..100 {
        text.push_str(&format!(
            "[[access.rule]]\ngroups = [\"g{i}\"]\ntools = [\"plugin{i}__*\", \"devops__deploy\"]\neffect = \"allow\"\n\
             when = [{{ pointer = \"/environment\", in = [\"staging\", \"dev\"] }}]\n"
        ));
    }
    let b = Bound::new(policy(&text), TOOLS);
    let groups: Vec<Arc<str>> = vec![Arc::from("g99")];
    let caller = Caller { principal: "p", groups: &groups, agent: None };
    let decision = b.decide(&caller, "devops__deploy", &json!({"environment": "dev"}));
    assert_eq!(decision.rule.map(|r| r.index), Some(100));
    assert_eq!(b.decide(&caller, "devops__status", &json!({})).effect, Effect::Deny);
}

#[test]
fn policies_are_bounded_in_rules_and_in_what_each_rule_carries() {
    let error = |text: &str| {
        let section: AccessSection = toml::from_str(text).expect("parses");
        section.compile().expect_err("refused")
    };
    let rule = "[[rule]]\ntools = [\"*\"]\neffect = \"allow\"\n";
    let too_many = format!("default = \"deny\"\n{}", rule.repeat(1001));
    assert_eq!(error(&too_many).key, "access.rule");
    let at_limit = format!("default = \"deny\"\n{}", rule.repeat(1000));
    let section: AccessSection = toml::from_str(&at_limit).expect("parses");
    assert_eq!(section.compile().expect("1000 rules are allowed").rules().len(), 1000);
    let tools: Vec<String> = (0..65).map(|i| format!("\"t{i}\"")).collect();
    let wide = format!("default = \"deny\"\n[[rule]]\ntools = [{}]\neffect = \"allow\"\n", tools.join(", "));
    assert_eq!(error(&wide).key, "access.rule[0].tools");
    let long_agent = format!("default = \"deny\"\n{rule}agents = [\"{}\"]\n", "a".repeat(129));
    assert_eq!(error(&long_agent).key, "access.rule[0].agents");
    let long_pointer =
        format!("default = \"deny\"\n{rule}when = [{{ pointer = \"/{}\", equals = 1 }}]\n", "p".repeat(256));
    assert_eq!(error(&long_pointer).key, "access.rule[0].when[0].pointer");
}
