//! The error a tool returns when a call fails.

use std::fmt;

/// Why a tool call failed, in words the model can act on.
///
/// The host shows it to the client as a tool result with `isError: true`, so the message is
/// written for a model deciding what to try next: say what was wrong and, if possible, how to
/// fix it. Keep it short and free of secrets; it leaves the sandbox verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    message: String,
}

impl ToolError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    /// The message the model will see.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

impl From<String> for ToolError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for ToolError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<ToolError> for crate::__bindings::wit::ToolError {
    fn from(error: ToolError) -> Self {
        Self { message: error.message }
    }
}
