//! sanctum: an MCP server that turns WebAssembly component plugins into sandboxed tools.
//!
//! # Layout
//!
//! Requests flow one way, and each layer imports only the layers below it:
//!
//! ```text
//! transport (axum: /mcp, /sse, /messages, /healthz)
//!   └─▶ mcp (rmcp ServerHandler; JSON-RPC error vs isError decided in mcp/outcome.rs)
//!         └─▶ registry (names, schemas, argument validation, health)
//!               └─▶ worker (one call at a time, bounded queue, "busy" when full)
//!                     └─▶ runtime (wasmtime: engine, sandbox, limits, host imports)
//! ```
//!
//! - [`ids`]: validated plugin and tool names; a plugin is named by its file (a leaf, used by
//!   any layer). [`digest`]: the SHA-256 that identifies a component's bytes (a leaf).
//! - [`config`]: CLI and environment. [`policy`]: the operator's grants, parsed from TOML into
//!   plain runtime data. [`app`]: start-up wiring shared by `main` and tests.
//! - [`audit`]: JSON-lines records of every call and capability use (a leaf, like `ids`).
//! - [`principal`]: who is calling (set by the transport's authentication) and their tool-call
//!   budget (a leaf, like `ids`).
//! - [`reload`]: plugins at run time: watches `plugins/`, the policy and the pin file and swaps
//!   changed plugins into the registry (wiring, like `app`). [`pins`]: approved tool
//!   definitions (a leaf). [`plugins_cli`]: `sanctum plugins list|inspect|approve`.
//! - [`scaffold`]: `sanctum new-plugin`, a new plugin crate from templates (writes files, serves nothing).
//! - [`settings`]: the `--config` TOML file, merged under flags and environment. [`metrics`]:
//!   the Prometheus registry (a leaf any layer may record into). [`shutdown`]: readiness and
//!   the drain on SIGTERM/SIGINT (a leaf).
//!
//! # Invariants
//!
//! - All wasmtime code is under [`runtime`]; it returns plain data and never imports upward.
//! - Arguments from the wire are validated against the tool's schema in [`registry`] before
//!   anything below it sees them.
//! - Every call gets a fresh sandbox with only what the policy grants its plugin (nothing by
//!   default), a memory cap and a deadline. Nothing reachable over MCP changes a grant.
//! - A full queue answers "busy" at once; the HTTP side never waits for the worker's queue.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod digest;
pub mod ids;
pub mod mcp;
pub mod metrics;
pub mod model;
pub mod pins;
pub mod policy;
pub mod principal;
pub mod registry;
pub mod runtime;
pub mod shutdown;
mod toml_error;
pub mod transport;
pub mod worker;
