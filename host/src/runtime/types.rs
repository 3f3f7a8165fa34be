//! Plain data the runtime hands upward: what a plugin describes, what a call returns, what a
//! running call reports. No wasmtime types cross this line, so the layers above never depend on
//! the wasm engine.

use std::time::Duration;

/// What a plugin's `describe()` returned, after size checks but before any naming or schema
/// checks (those belong to the registry).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub tools: Vec<ToolInfo>,
    pub requirements: Vec<Requirement>,
}

/// One tool as the plugin describes it. Schemas are still JSON text: the registry parses them.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: String,
    pub output_schema: Option<String>,
    pub annotations: Annotations,
}

/// MCP tool annotations; `None` means the plugin did not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Annotations {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

/// A capability a plugin says it needs (checked against grants once policies exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Command(String),
    HttpHost(String),
    Directory(String),
    Env(String),
    Secret(String),
    Config(String),
}

/// A successful call's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    /// Structured result as JSON text, exactly as the plugin produced it.
    pub structured: Option<String>,
    /// True when the host cut the output to fit its limits.
    pub truncated: bool,
}

/// The `sanctum:plugin` WIT package this host binds, as `<major>.<minor>.<patch>`. Components
/// built against another minor version cannot load (the host type-checks records and variants
/// exactly), and the loader says so by version rather than with a type error.
pub const WORLD_VERSION: &str = "0.2.0";

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

/// Per-call limits. Every one guards the host or its clients against a hostile or buggy plugin.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a call may grow to. A memory bomb fails allocation here instead of
    /// taking the host's memory.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call (the guest is interrupted at the next epoch tick after
    /// it). Below Letta's 60 s execute limit, so the agent gets our error, not its timeout.
    pub call_timeout: Duration,
    /// Budget of `describe()` at load: it must be cheap, and a plugin that loops in it must
    /// not stall start-up.
    pub describe_timeout: Duration,
    /// Bytes of guest stdout and of stderr kept per call; the rest is discarded.
    pub captured_output_bytes: usize,
    /// Total bytes of content one call may return (text, images, audio, resources and their
    /// URIs and media types); more is truncated.
    pub max_output_bytes: usize,
    /// Bytes of one log or progress message; longer ones are cut.
    pub max_message_bytes: usize,
    /// Log and progress reports one call may make; later ones are dropped and counted.
    pub max_events_per_call: u32,
    /// Total bytes of `describe()` strings (names, descriptions, schemas).
    pub max_describe_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(30),
            describe_timeout: Duration::from_secs(5),
            captured_output_bytes: 64 << 10,
            max_output_bytes: 1 << 20,
            max_message_bytes: 4 << 10,
            max_events_per_call: 1_000,
            max_describe_bytes: 1 << 20,
        }
    }
}

/// A JSON Schema a plugin declared, as the validator receives it: the text, and its SHA-256,
/// under which the validator keeps it compiled (so a table rebuilt on reload reuses what is
/// already compiled, and two schemas never share an entry).
#[derive(Debug, Clone)]
pub struct SchemaSource {
    key: [u8; 32],
    text: std::sync::Arc<str>,
}

impl SchemaSource {
    pub fn new(text: &str) -> Self {
        use sha2::Digest as _;
        Self { key: sha2::Sha256::digest(text.as_bytes()).into(), text: std::sync::Arc::from(text) }
    }

    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}
