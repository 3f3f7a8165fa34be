//! Errors at the runtime boundary: why a plugin would not load, and why a call ended without
//! a result. Messages are written for operators (load) and for the model (calls).

use std::path::PathBuf;
use std::time::Duration;

/// A plugin file that could not be turned into a servable plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a valid WebAssembly component: {detail}")]
    Compile { path: PathBuf, detail: String },
    #[error(
        "{path}: not a sanctum plugin (it must target the world sanctum:plugin/plugin@{}): {detail}",
        super::types::WORLD_VERSION
    )]
    WrongWorld { path: PathBuf, detail: String },
    /// A sanctum plugin built against another, incompatible version of the world.
    #[error("{path}: built against sanctum:plugin@{found}; {}", version_advice(found))]
    WorldVersion { path: PathBuf, found: String },
    #[error("{path}: describe() failed: {reason}")]
    Describe { path: PathBuf, reason: CallFailure },
    /// A plugin is named by its file, so the file name must be a plugin name.
    #[error("{path}: the file name is not a plugin name ({reason}); a plugin is named by its file, e.g. devops.wasm")]
    FileName { path: PathBuf, reason: crate::ids::NameError },
    /// The component calls itself something other than its file name. Identity comes from the
    /// operator's file name, never from the component, so it is refused rather than renamed.
    #[error(
        "{path}: the component declares the plugin name {declared:?} (the plugin of {declared}.wasm), but this \
         file holds plugin {id:?}: a plugin is named by its file, so it is refused"
    )]
    NameMismatch { path: PathBuf, id: String, declared: String },
    /// The policy pins this plugin to other bytes.
    #[error(
        "{path}: SHA-256 {found} differs from the digest the policy pins plugin {id:?} to ({pinned}, \
         plugins.{id}.sha256); refused"
    )]
    DigestMismatch {
        path: PathBuf,
        id: String,
        found: crate::digest::ComponentDigest,
        pinned: crate::digest::ComponentDigest,
    },
    #[error("{path}: describe() returned {size} bytes of text; the limit is {limit}")]
    DescribeTooLarge { path: PathBuf, size: usize, limit: usize },
}

/// What to do about a plugin built against world version `found`.
fn version_advice(found: &str) -> String {
    let current = super::types::WORLD_VERSION;
    let number = |v: &str| v.split('.').map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    if number(found) < number(current) {
        format!("this host serves sanctum:plugin@{current}; rebuild the plugin with the current guest SDK")
    } else {
        format!("this host serves only sanctum:plugin@{current}; upgrade sanctum to load it")
    }
}

/// A call that produced no result. Every variant becomes an `isError` tool result upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    /// The plugin itself reported the failure; the message is its own.
    #[error("{0}")]
    Tool(String),
    #[error("the call exceeded its time limit of {} ms and was stopped", .0.as_millis())]
    Timeout(Duration),
    #[error("the call was cancelled by the client")]
    Cancelled,
    #[error("the plugin exceeded its memory limit of {} MiB and was stopped", .0 >> 20)]
    MemoryLimit(usize),
    #[error("the plugin exhausted its stack and was stopped")]
    StackOverflow,
    /// The guest trapped (a panic in Rust guests, an uncaught exception in Python/JS ones).
    #[error("the plugin crashed: {0}")]
    Crashed(String),
    /// The plugin returned something the host cannot use (e.g. invalid UTF-8 in JSON content).
    #[error("the plugin returned an invalid result: {0}")]
    InvalidResult(String),
    /// A host-side failure setting up the sandbox; not the plugin's fault.
    #[error("the sandbox could not be prepared: {0}")]
    Sandbox(String),
    /// The arguments violate the tool's input schema (checked before the plugin ran).
    #[error("invalid arguments: {}", .0.join("; "))]
    InvalidArguments(Vec<String>),
    /// Checking the arguments against the tool's input schema was stopped at its budget (or the
    /// schema cannot be evaluated at all): the schema, not the caller, is at fault.
    #[error("the arguments could not be validated: {0}")]
    ValidationStopped(String),
}

impl CallFailure {
    /// `ok`, or the kind of failure: the outcome name logs and audit records use.
    pub fn outcome<T>(result: &Result<T, Self>) -> &'static str {
        result.as_ref().map_or_else(Self::kind, |_| "ok")
    }

    /// A short stable name for logs, metrics and audit records.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Tool(_) => "tool_error",
            Self::Timeout(_) => "timeout",
            Self::Cancelled => "cancelled",
            Self::MemoryLimit(_) => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Crashed(_) => "crashed",
            Self::InvalidResult(_) => "invalid_result",
            Self::Sandbox(_) => "sandbox_error",
            Self::InvalidArguments(_) => "invalid_arguments",
            Self::ValidationStopped(_) => "validation_stopped",
        }
    }
}
