//! The operator's policy: what each plugin may do. Parsed from TOML at start-up into plain
//! [`PluginGrants`]; nothing at run time can change it, and no MCP request can reach it.
//!
//! Deny by default: a plugin the policy does not name gets no capabilities and the default
//! limits; a grant the policy does not spell out does not exist.

mod command;
mod file;
mod http;
mod reserved;
mod review;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::access::AccessPolicy;
use crate::digest::ComponentDigest;
use crate::model::{
    CALL_TIMEOUT_MS_RANGE, DirectoryGrant, Limits, MEMORY_LIMIT_MIB_RANGE, PluginGrants, memory_bytes_of,
};
pub use reserved::ReservedPaths;
pub use review::GrantReview;

/// Why a policy file was not accepted. Messages name the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("policy {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// The validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    defaults: Limits,
    plugins: BTreeMap<String, PluginGrants>,
    /// Plugins pinned to one component file (`plugins.<id>.sha256`).
    digests: BTreeMap<String, ComponentDigest>,
    /// Who may call which tool.
    access: Arc<AccessPolicy>,
}

impl Policy {
    /// No grants at all; every plugin runs with `defaults`.
    pub fn deny_all(defaults: Limits) -> Self {
        Self { defaults, plugins: BTreeMap::new(), digests: BTreeMap::new(), access: Arc::default() }
    }

    /// Read and validate the policy at `path`, on top of `base` limits (from the command line);
    /// no directory grant may reach a `reserved` path.
    pub fn load(path: &Path, base: Limits, reserved: &ReservedPaths) -> Result<Self, PolicyError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_owned(), source })?;
        let policy = Self::parse(&text, path, base)?;
        policy.refuse_reserved(reserved)?;
        Ok(policy)
    }

    /// The first directory grant that reaches a path the host owns, as an error.
    fn refuse_reserved(&self, reserved: &ReservedPaths) -> Result<(), PolicyError> {
        for (name, grants) in &self.plugins {
            for (i, dir) in grants.directories.iter().enumerate() {
                if let Some(why) = reserved.conflict(&dir.host) {
                    return Err(PolicyError::Invalid {
                        key: format!("plugins.{name}.directories[{i}]"),
                        reason: format!("host path {:?} cannot be granted: {why}", dir.host),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn parse(text: &str, path: &Path, base: Limits) -> Result<Self, PolicyError> {
        let parsed: file::PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            path: path.to_owned(),
            message: crate::toml_error::describe(text, &e),
        })?;
        let defaults = apply_limits("defaults", base, &parsed.defaults)?;
        let mut plugins = BTreeMap::new();
        let mut digests = BTreeMap::new();
        for (name, plugin) in &parsed.plugins {
            let key = format!("plugins.{name}");
            if let Some(text) = &plugin.sha256 {
                let digest = ComponentDigest::parse(text)
                    .map_err(|reason| PolicyError::Invalid { key: format!("{key}.sha256"), reason })?;
                digests.insert(name.clone(), digest);
            }
            let mut grants = PluginGrants {
                limits: apply_limits(&key, defaults.clone(), &plugin.limits)?,
                env: plugin.env.clone(),
                config: plugin.config.iter().map(|(k, v)| (k.clone(), config_text(v))).collect(),
                bare_tool_names: plugin.bare_tool_names,
                ..PluginGrants::default()
            };
            for (i, dir) in plugin.directories.iter().enumerate() {
                grants.directories.push(directory(&format!("{key}.directories[{i}]"), dir)?);
            }
            for (i, grant) in plugin.http.iter().enumerate() {
                grants.http.push(http::validate(&format!("{key}.http[{i}]"), grant, &|name| std::env::var(name).ok())?);
            }
            for (command_name, command) in &plugin.commands {
                let command_key = format!("{key}.commands.{command_name}");
                grants.commands.insert(command_name.clone(), command::validate(&command_key, command)?);
            }
            plugins.insert(name.clone(), grants);
        }
        let access = match &parsed.access {
            Some(section) => section.compile().map_err(|e| PolicyError::Invalid { key: e.key, reason: e.reason })?,
            None => AccessPolicy::unrestricted(),
        };
        Ok(Self { defaults, plugins, digests, access: Arc::new(access) })
    }

    /// Who may call which tool (unrestricted when the policy has no `[access]` section).
    pub fn access(&self) -> &Arc<AccessPolicy> {
        &self.access
    }

    /// The digest the policy pins plugin `name` to, if it pins one: then no other file may
    /// serve as that plugin.
    pub fn pinned_digest(&self, name: &str) -> Option<ComponentDigest> {
        self.digests.get(name).copied()
    }

    /// What plugin `name` may do (deny-all with the default limits if the policy omits it).
    pub fn grants_for(&self, name: &str) -> PluginGrants {
        self.plugins
            .get(name)
            .cloned()
            .unwrap_or_else(|| PluginGrants { limits: self.defaults.clone(), ..PluginGrants::default() })
    }

    /// Plugins the policy names.
    pub fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }
}

fn range_message(range: &std::ops::RangeInclusive<u64>) -> String {
    format!("must be between {} and {}", range.start(), range.end())
}

fn apply_limits(key: &str, mut limits: Limits, file: &file::LimitsFile) -> Result<Limits, PolicyError> {
    let invalid =
        |field: &str, reason: &str| PolicyError::Invalid { key: format!("{key}.{field}"), reason: reason.into() };
    if let Some(mib) = file.memory_mib {
        if !MEMORY_LIMIT_MIB_RANGE.contains(&mib) {
            return Err(invalid("memory_mib", &range_message(&MEMORY_LIMIT_MIB_RANGE)));
        }
        limits.memory_bytes = memory_bytes_of(mib);
    }
    if let Some(ms) = file.call_timeout_ms {
        if !CALL_TIMEOUT_MS_RANGE.contains(&ms) {
            return Err(invalid("call_timeout_ms", &range_message(&CALL_TIMEOUT_MS_RANGE)));
        }
        limits.call_timeout = Duration::from_millis(ms);
    }
    if let Some(kib) = file.max_output_kib {
        limits.max_output_bytes = usize::try_from(kib.saturating_mul(1024)).unwrap_or(usize::MAX);
    }
    if let Some(kib) = file.captured_output_kib {
        limits.captured_output_bytes = usize::try_from(kib.saturating_mul(1024)).unwrap_or(usize::MAX);
    }
    Ok(limits)
}

fn directory(key: &str, dir: &file::DirectoryFile) -> Result<DirectoryGrant, PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid { key: key.to_owned(), reason };
    let host = PathBuf::from(&dir.host);
    if !host.is_absolute() {
        return Err(invalid(format!("host path {:?} must be absolute", dir.host)));
    }
    if !host.is_dir() {
        return Err(invalid(format!("host path {:?} is not a directory", dir.host)));
    }
    if !dir.guest.starts_with('/') || dir.guest.split('/').any(|part| part == "..") {
        return Err(invalid(format!("guest path {:?} must be absolute, without '..'", dir.guest)));
    }
    Ok(DirectoryGrant { host, guest: dir.guest.clone(), writable: dir.writable })
}

/// A config value as the plugin reads it: strings verbatim, anything else as JSON.
fn config_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        // A TOML value always has a JSON form (datetimes become strings).
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("test.toml"), Limits::default())
    }

    #[test]
    fn an_empty_policy_denies_everything() {
        let grants = parse("").expect("valid").grants_for("anything");
        assert!(grants.commands.is_empty() && grants.directories.is_empty() && grants.env.is_empty());
        assert_eq!(grants.limits.memory_bytes, Limits::default().memory_bytes);
    }

    #[test]
    fn config_strings_pass_verbatim_and_tables_as_json() {
        let policy = parse(
            "[plugins.devops.config]\nregion = \"eu\"\nretries = 3\n[plugins.devops.config.apps.web]\nenvironments = [\"staging\"]\n",
        )
        .expect("valid");
        let config = &policy.grants_for("devops").config;
        assert_eq!(config["region"], "eu");
        assert_eq!(config["retries"], "3");
        assert_eq!(config["apps"], r#"{"web":{"environments":["staging"]}}"#);
    }

    #[test]
    fn bare_tool_names_are_off_unless_the_plugin_table_says_so() {
        let policy = parse("[plugins.conformance]\nbare_tool_names = true\n[plugins.echo]\n").expect("valid");
        assert!(policy.grants_for("conformance").bare_tool_names);
        assert!(!policy.grants_for("echo").bare_tool_names);
        assert!(!policy.grants_for("unnamed").bare_tool_names);
        let misplaced = parse("[defaults]\nbare_tool_names = true\n").expect_err("not a limit").to_string();
        assert!(misplaced.contains("bare_tool_names"), "{misplaced}");
    }

    #[test]
    fn a_plugin_can_be_pinned_to_one_digest() {
        let digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let policy = parse(&format!("[plugins.devops]\nsha256 = \"{}\"\n", digest.to_uppercase())).expect("valid");
        assert_eq!(policy.pinned_digest("devops").map(|d| d.hex()).as_deref(), Some(digest));
        assert_eq!(policy.pinned_digest("echo"), None);
        let bad = parse("[plugins.devops]\nsha256 = \"abc\"\n").expect_err("not a digest").to_string();
        assert!(bad.starts_with("plugins.devops.sha256:"), "{bad}");
    }

    #[test]
    fn limits_layer_defaults_then_plugin() {
        let policy =
            parse("[defaults]\nmemory_mib = 32\ncall_timeout_ms = 5000\n[plugins.devops]\ncall_timeout_ms = 9000\n")
                .expect("valid");
        let devops = policy.grants_for("devops");
        assert_eq!(devops.limits.memory_bytes, 32 << 20);
        assert_eq!(devops.limits.call_timeout, Duration::from_millis(9000));
        assert_eq!(policy.grants_for("other").limits.call_timeout, Duration::from_millis(5000));
    }

    #[test]
    fn the_documented_example_uses_only_real_keys() {
        let example = include_str!("../../../docs/policy.example.toml");
        let parsed: file::PolicyFile = toml::from_str(example).expect("docs/policy.example.toml parses");
        let devops = &parsed.plugins["devops"];
        assert_eq!(devops.commands.len(), 2);
        assert_eq!(devops.directories.len(), 2);
        assert_eq!(devops.http.len(), 2);
        assert!(parsed.plugins["botfather"].http[0].secret.is_some());
        assert!(!devops.bare_tool_names);
    }

    #[test]
    fn errors_name_the_key() {
        let unknown = parse("[plugins.devops]\nmemory_mb = 3\n").expect_err("unknown key").to_string();
        assert!(unknown.contains("memory_mb"), "{unknown}");
        let range = parse("[plugins.devops]\nmemory_mib = 0\n").expect_err("range").to_string();
        assert!(range.starts_with("plugins.devops.memory_mib:"), "{range}");
        let shell = parse("[plugins.p.commands.run]\nprogram = \"/bin/sh\"\n").expect_err("shell").to_string();
        assert!(shell.starts_with("plugins.p.commands.run:"), "{shell}");
        let dir = parse("[[plugins.p.directories]]\nhost = \"/\"\nguest = \"/../x\"\n").expect_err("dir").to_string();
        assert!(dir.starts_with("plugins.p.directories[0]:"), "{dir}");
    }
}
