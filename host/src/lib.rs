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
//!   a component), [`egress`] (the host's own vetted outgoing HTTP), [`audit`], [`metrics`],
//!   [`principal`], [`pins`] (approved tool definitions), [`shutdown`] (readiness and the
//!   drain) and [`access`] (who may call what: the operator's rules and one call's decision,
//!   asked by the registry for every call and listing);
//! - the approvals book, [`approvals`] (calls an access rule holds for an operator, before the
//!   worker queue), is a leaf too; the operators' admin plane, [`admin`] (a JSON API over it on
//!   a Unix socket and an optional HTTP listener of its own), imports leaves and the front
//!   door's token checking, and only the wiring imports it: nothing on the MCP listener approves;
//! - start-up data: [`config`] (flags, `SANCTUM_*` and the `--config` file, merged once) and
//!   [`policy`] (the operator's grants, parsed into `model` data); neither imports a layer;
//! - wiring: [`app`] (the one start-up loader, the plugin set, hot reload, `build` and `run`)
//!   and [`cli`] (`sanctum plugins`, `new-plugin` and `approvals`), the only modules besides
//!   `main` that see every layer.
//!
//! # Invariants
//!
//! - All wasmtime code is under [`runtime`]; it returns plain data and never imports upward.
//! - Arguments from the wire are validated against the tool's schema in [`registry`] before
//!   anything below it sees them, and every call passes the access rules there first.
//! - Every call gets a fresh sandbox with only what the policy grants its plugin (nothing by
//!   default), a memory cap and a deadline. Nothing reachable over MCP changes a grant.
//! - A full queue answers "busy" at once; the HTTP side never waits for the worker's queue.

pub mod access;
pub mod admin;
pub mod app;
pub mod approvals;
pub mod audit;
pub mod cli;
pub mod config;
pub mod digest;
pub mod egress;
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
