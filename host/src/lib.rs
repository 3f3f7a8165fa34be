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
//! Beside the layers:
//! - leaves any layer may use: [`model`] (the plain data every layer passes around: plugin
//!   descriptions, grants, limits and their defaults, the call context, outputs, failures),
//!   [`ids`] (plugin and tool names; a plugin is named by its file), [`digest`] (the SHA-256 of
//!   a component), [`audit`], [`metrics`], [`principal`], [`pins`] (approved tool definitions)
//!   and [`shutdown`] (readiness and the drain);
//! - start-up data: [`config`] (flags, `SANCTUM_*` and the `--config` file, merged once) and
//!   [`policy`] (the operator's grants, parsed into `model` data); neither imports a layer;
//! - wiring: [`app`] (the one start-up loader, the plugin set, hot reload, `build` and `run`)
//!   and [`cli`] (`sanctum plugins` and `new-plugin`), the only modules besides `main` that
//!   see every layer.
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
