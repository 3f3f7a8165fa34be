//! Capabilities a plugin declares it needs from the operator.

use crate::__bindings::wit;

/// A capability the plugin needs. The host compares these with the operator's grants when it
/// loads the plugin and reports what is missing or unused, so declare exactly what the code
/// uses. Listed in the `requirements: [...]` option of [`plugin!`](crate::plugin).
///
/// Names are `'static` because `describe` must not depend on anything decided at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// A subprocess command, by the name the operator defines (never a program path).
    Command(&'static str),
    /// An outgoing HTTP destination, as `host` or `host:port`.
    HttpHost(&'static str),
    /// A directory, by the guest path the plugin expects.
    Directory(&'static str),
    /// An environment variable, by name.
    Env(&'static str),
    /// A secret, by name. The plugin never sees its value.
    Secret(&'static str),
    /// A plugin configuration value, by key.
    Config(&'static str),
}

impl From<Requirement> for wit::Requirement {
    fn from(requirement: Requirement) -> Self {
        match requirement {
            Requirement::Command(name) => Self::Command(name.to_owned()),
            Requirement::HttpHost(host) => Self::HttpHost(host.to_owned()),
            Requirement::Directory(path) => Self::Directory(path.to_owned()),
            Requirement::Env(name) => Self::Env(name.to_owned()),
            Requirement::Secret(name) => Self::Secret(name.to_owned()),
            Requirement::Config(key) => Self::Config(key.to_owned()),
        }
    }
}
