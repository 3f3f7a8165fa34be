//! Why a call ended without a result. Every variant becomes an `isError` tool result
//! upstream (`mcp/outcome.rs` decides how it is shown); messages are written for the model.

use std::time::Duration;

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
