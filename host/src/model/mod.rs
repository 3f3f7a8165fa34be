//! Plain data every layer passes around: what a plugin declares, what the operator grants it,
//! the limits a call runs under, what a call is given and what it returns or why it failed.
//!
//! A leaf: it imports no other sanctum module and knows nothing of wasmtime, HTTP or MCP, so
//! the policy, the pins, the configuration, the registry and the MCP layer can share these
//! types without importing the runtime that produces them.

mod call;
mod failure;
mod grants;
mod limits;
mod output;
mod plugin;
mod schema;

pub use call::CallContext;
pub use failure::CallFailure;
pub use grants::{
    ChildLimits, CommandGrant, DirectoryGrant, HttpGrant, JobLimits, PluginGrants, SecretInjection, SecretPlace,
};
pub use limits::{
    BackgroundCompiles, CALL_TIMEOUT_MS_RANGE, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MEMORY_LIMIT_MIB, Limits,
    MEMORY_LIMIT_MIB_RANGE, memory_bytes_of,
};
pub use output::{CallEvent, Content, EmbeddedResource, LogLevel, ResourceContents, ToolOutput};
pub use plugin::{Annotations, PluginInfo, Requirement, ToolInfo, WORLD_VERSION};
pub use schema::SchemaSource;
