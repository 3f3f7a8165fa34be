//! Validated names: plugin names and the tool names the server exposes.
//!
//! Owns the naming rule and nothing else. Every name that reaches a client passes through
//! [`ToolName::qualified`] (or [`ToolName::bare`], for a plugin the operator lets publish
//! unprefixed names), so a plugin cannot publish a name that breaks a client.
//!
//! A plugin's identity is its file name ([`PluginName::of_file`]): `plugins/devops.wasm` is
//! plugin `devops`, whatever the component says about itself. The operator controls file names;
//! a component only controls its bytes, so grants, pins and audit records never key off a name
//! the plugin chose.

use std::fmt;

/// The longest tool name we expose. Letta caps tool names at 48 characters, and OpenAI's
/// function names allow 64; 48 keeps every known client happy.
pub const MAX_TOOL_NAME_LEN: usize = 48;

/// Separates the plugin name from the tool name in an exposed tool name.
pub const SEPARATOR: &str = "__";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name {0:?} must start with a lowercase ASCII letter")]
    BadStart(String),
    #[error("name {0:?} may only contain lowercase ASCII letters, digits and '_'")]
    BadChar(String),
    #[error("plugin name {0:?} must not contain '__' or end with '_' (it would make tool names ambiguous)")]
    AmbiguousPlugin(String),
    #[error("bare tool name {0:?} must not contain '__' (it would pass for another plugin's tool)")]
    BareSeparator(String),
    #[error("tool name {name:?} is {len} characters; the limit is {MAX_TOOL_NAME_LEN}")]
    TooLong { name: String, len: usize },
}

/// A plugin's name, as it prefixes its tools: `^[a-z][a-z0-9_]*$` without `__` or a trailing `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginName(String);

impl PluginName {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        check_identifier(name)?;
        if name.contains(SEPARATOR) || name.ends_with('_') {
            return Err(NameError::AmbiguousPlugin(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The plugin a file in the plugins directory holds: its name without `.wasm`, which must
    /// itself be a valid plugin name.
    pub fn of_file(path: &std::path::Path) -> Result<Self, NameError> {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        Self::parse(stem)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tool name as clients see it: `^[a-z][a-z0-9_]{0,47}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ToolName(String);

impl ToolName {
    /// A tool the host itself provides (such as `health`), not prefixed by a plugin.
    pub fn builtin(name: &str) -> Result<Self, NameError> {
        check_identifier(name)?;
        check_length(name)?;
        Ok(Self(name.to_owned()))
    }

    /// `<plugin>__<tool>`, refusing a tool name that is not an identifier or a result too long.
    pub fn qualified(plugin: &PluginName, tool: &str) -> Result<Self, NameError> {
        check_identifier(tool)?;
        let full = format!("{plugin}{SEPARATOR}{tool}");
        check_length(&full)?;
        Ok(Self(full))
    }

    /// `<tool>` alone, for a plugin whose policy sets `bare_tool_names`. A bare name never
    /// contains `__`, so it can never be taken for another plugin's `<plugin>__<tool>`; clashes
    /// between bare names are the registry's to refuse.
    pub fn bare(tool: &str) -> Result<Self, NameError> {
        check_identifier(tool)?;
        if tool.contains(SEPARATOR) {
            return Err(NameError::BareSeparator(tool.to_owned()));
        }
        check_length(tool)?;
        Ok(Self(tool.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Lets maps keyed by `ToolName` be searched with the `&str` a client sent. Sound because the
// derived `Ord`/`Eq`/`Hash` of `ToolName` are exactly those of its string.
impl std::borrow::Borrow<str> for ToolName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_identifier(name: &str) -> Result<(), NameError> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(NameError::Empty),
        Some(c) if c.is_ascii_lowercase() => {}
        Some(_) => return Err(NameError::BadStart(name.to_owned())),
    }
    if chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(())
    } else {
        Err(NameError::BadChar(name.to_owned()))
    }
}

fn check_length(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_TOOL_NAME_LEN {
        return Err(NameError::TooLong { name: name.to_owned(), len: name.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str) -> PluginName {
        PluginName::parse(name).expect("valid plugin name")
    }

    #[test]
    fn qualified_names_join_plugin_and_tool() {
        let name = ToolName::qualified(&plugin("devops"), "deploy").expect("valid");
        assert_eq!(name.as_str(), "devops__deploy");
    }

    #[test]
    fn plugin_names_that_would_be_ambiguous_are_refused() {
        assert_eq!(PluginName::parse("dev__ops"), Err(NameError::AmbiguousPlugin("dev__ops".into())));
        assert_eq!(PluginName::parse("devops_"), Err(NameError::AmbiguousPlugin("devops_".into())));
        assert!(PluginName::parse("dev_ops2").is_ok());
    }

    #[test]
    fn names_must_be_lowercase_identifiers() {
        assert_eq!(PluginName::parse(""), Err(NameError::Empty));
        assert_eq!(PluginName::parse("9lives"), Err(NameError::BadStart("9lives".into())));
        assert_eq!(PluginName::parse("_x"), Err(NameError::BadStart("_x".into())));
        assert_eq!(PluginName::parse("Echo"), Err(NameError::BadStart("Echo".into())));
        for bad in ["send-message", "a.b", "umlaüt", "a b", "aB"] {
            assert_eq!(ToolName::qualified(&plugin("p"), bad), Err(NameError::BadChar(bad.into())), "{bad}");
        }
    }

    #[test]
    fn the_length_limit_applies_to_the_whole_name() {
        let p = plugin("abcdefghij"); // 10 + 2 separator characters
        let ok = "t".repeat(MAX_TOOL_NAME_LEN - 12);
        assert_eq!(ToolName::qualified(&p, &ok).expect("fits").as_str().len(), MAX_TOOL_NAME_LEN);
        let long = "t".repeat(MAX_TOOL_NAME_LEN - 11);
        assert!(matches!(ToolName::qualified(&p, &long), Err(NameError::TooLong { len: 49, .. })));
        assert!(ToolName::builtin("health").is_ok());
    }

    #[test]
    fn a_plugin_is_named_by_its_file() {
        assert_eq!(PluginName::of_file(std::path::Path::new("/srv/plugins/devops.wasm")), Ok(plugin("devops")));
        assert!(PluginName::of_file(std::path::Path::new("plugins/Devops.wasm")).is_err());
        assert!(PluginName::of_file(std::path::Path::new("plugins/dev-ops.wasm")).is_err());
    }

    #[test]
    fn bare_names_are_identifiers_without_the_separator() {
        assert_eq!(ToolName::bare("test_simple_text").expect("valid").as_str(), "test_simple_text");
        assert_eq!(ToolName::bare("echo__echo"), Err(NameError::BareSeparator("echo__echo".into())));
        assert_eq!(ToolName::bare("Echo"), Err(NameError::BadStart("Echo".into())));
        assert!(matches!(ToolName::bare(&"t".repeat(MAX_TOOL_NAME_LEN + 1)), Err(NameError::TooLong { .. })));
    }
}
