//! What a call produces: its result and the events it reports while it runs. Plain data the
//! runtime hands upward and the MCP layer renders.

/// A successful call's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    /// Structured result as JSON text, exactly as the plugin produced it.
    pub structured: Option<String>,
    /// True when the host cut the output to fit its limits.
    pub truncated: bool,
}

/// One content block of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    Image {
        data: Vec<u8>,
        mime_type: String,
    },
    Audio {
        data: Vec<u8>,
        mime_type: String,
    },
    /// A resource embedded in the result (MCP `EmbeddedResource`).
    Resource(EmbeddedResource),
}

/// A resource's contents with the URI that names them.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedResource {
    pub uri: String,
    pub mime_type: Option<String>,
    pub contents: ResourceContents,
}

/// What an embedded resource holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceContents {
    Text(String),
    Blob(Vec<u8>),
}

/// Something a running call reports before it finishes.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    Progress { progress: f64, total: Option<f64>, message: Option<String> },
    Log { level: LogLevel, message: String },
}

/// Severity of a plugin's log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}
