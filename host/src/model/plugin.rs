//! What a plugin says about itself: its `describe()` after the runtime's size checks, before
//! any naming or schema checks (those belong to the registry). Plain data: no wasmtime types,
//! so every layer can pass it around.

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

/// The `sanctum:plugin` WIT package this host binds, as `<major>.<minor>.<patch>`. Components
/// built against another minor version cannot load (the host type-checks records and variants
/// exactly), and the loader says so by version rather than with a type error.
pub const WORLD_VERSION: &str = "0.2.0";
