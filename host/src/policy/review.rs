//! Comparing what a plugin says it needs with what the operator granted, so the operator sees
//! per plugin what is granted, what is missing and what is granted but unused.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::model::{PluginGrants, PluginInfo, Requirement};

/// The comparison for one plugin. Entries read like `command deploy`, `config apps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantReview {
    pub plugin: String,
    pub granted: Vec<String>,
    pub missing: Vec<String>,
    pub unused: Vec<String>,
}

impl GrantReview {
    pub fn new(info: &PluginInfo, grants: &PluginGrants) -> Self {
        let offered: BTreeSet<String> = grants
            .commands
            .keys()
            .map(|k| format!("command {k}"))
            .chain(grants.directories.iter().map(|d| format!("directory {}", d.guest)))
            .chain(grants.env.keys().map(|k| format!("env {k}")))
            .chain(grants.config.keys().map(|k| format!("config {k}")))
            .chain(grants.http.iter().map(|g| format!("http {}", g.host)))
            .chain(grants.http.iter().filter_map(|g| g.secret.as_ref()).map(|s| format!("secret {}", s.name)))
            .collect();
        let needed: BTreeSet<String> = info.requirements.iter().map(describe).collect();
        Self {
            plugin: info.name.clone(),
            granted: needed.intersection(&offered).cloned().collect(),
            missing: needed.difference(&offered).cloned().collect(),
            unused: offered.difference(&needed).cloned().collect(),
        }
    }
}

fn describe(requirement: &Requirement) -> String {
    match requirement {
        Requirement::Command(name) => format!("command {name}"),
        // A declared `host:port` is matched by host: grants carry the port themselves.
        Requirement::HttpHost(host) => format!("http {}", host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h)),
        Requirement::Directory(path) => format!("directory {path}"),
        Requirement::Env(name) => format!("env {name}"),
        Requirement::Secret(name) => format!("secret {name}"),
        Requirement::Config(key) => format!("config {key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_and_grants_are_sorted_into_granted_missing_unused() {
        let info = PluginInfo {
            name: "devops".into(),
            version: "1".into(),
            description: "d".into(),
            tools: vec![],
            requirements: vec![Requirement::Command("deploy".into()), Requirement::Config("apps".into())],
        };
        let mut grants = PluginGrants::default();
        grants.config.insert("apps".into(), "web".into());
        grants.env.insert("TZ".into(), "UTC".into());
        let review = GrantReview::new(&info, &grants);
        assert_eq!(review.granted, vec!["config apps"]);
        assert_eq!(review.missing, vec!["command deploy"]);
        assert_eq!(review.unused, vec!["env TZ"]);
    }
}
