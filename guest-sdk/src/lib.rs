//! Write [sanctum](https://example.invalid/sanctum) plugins in Rust.
//!
//! A plugin is a WebAssembly component that offers tools to MCP clients through the sanctum
//! host. Each tool is a type implementing [`Tool`]: a name, a typed `Args` struct (`serde` +
//! `schemars`, whose doc comments become the tool's and the arguments' descriptions), and a
//! `call` function returning an [`Output`] or a [`ToolError`]. The [`plugin!`] macro lists the
//! tools and produces the component's exports; nothing else in a plugin deals with the
//! component model.
//!
//! ```no_run
//! use sanctum_guest::{Annotations, Output, Tool, ToolError};
//!
//! struct Greet;
//!
//! /// Say hello to someone by name.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct GreetArgs {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! impl Tool for Greet {
//!     const NAME: &'static str = "greet";
//!     const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true);
//!     type Args = GreetArgs;
//!
//!     fn call(args: GreetArgs) -> Result<Output, ToolError> {
//!         sanctum_guest::log::info("greeting");
//!         Ok(format!("hello, {}", args.name).into())
//!     }
//! }
//!
//! sanctum_guest::plugin! {
//!     name: "greeter",
//!     version: env!("CARGO_PKG_VERSION"),
//!     description: "Greets people.",
//!     tools: [Greet],
//! }
//! ```
//!
//! Build it as a `cdylib` with `cargo build --release --target wasm32-wasip2` (or `cargo
//! component build --release`); the `.wasm` that comes out is the component the host loads.
//!
//! Each call runs in a fresh instance with only what the operator granted. Besides its
//! arguments a tool may use [`log`], [`progress`], [`is_cancelled`] and [`agent_id`], and, when
//! granted, [`process`] (named commands), [`jobs`] (named commands run in the background and
//! followed from later calls), [`http`] (named origins) and [`config`]; granted directories and
//! environment variables are reached with plain `std::fs` and `std::env`. Off wasm these
//! services fall back to stderr, no-ops and "not available" errors, and jobs to a fake
//! supervisor the test scripts ([`jobs::stand_in`]), so tools can be unit-tested natively by
//! calling [`Tool::call`] directly.

// Lets the generated code name this crate by the same absolute path (`::sanctum_guest`) both
// here and in plugin crates, where the `plugin!` macro expands.
extern crate self as sanctum_guest;

mod args;
pub mod config;
mod error;
mod host;
pub mod http;
pub mod jobs;
pub mod log;
mod macros;
mod names;
mod output;
mod plugin;
pub mod process;
mod requirement;
pub mod schema;
mod tool;

#[doc(hidden)]
#[allow(unsafe_code, unreachable_pub, missing_debug_implementations, clippy::all)]
#[path = "bindings.rs"]
pub mod __bindings;

/// Used by the expansion of [`plugin!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::plugin::{Plugin, ToolEntry};
}

pub use error::ToolError;
pub use output::{Output, Resource};
pub use requirement::Requirement;
pub use tool::{Annotations, NoArgs, Tool};

/// Re-exported so plugins name the same versions the SDK uses; plugin crates still depend on
/// `serde` and `schemars` themselves for their derive macros.
pub use {schemars, serde_json};

/// Report progress of the running call to its client, if the client asked for progress.
///
/// `progress` should grow with every report; `total` is the final value when it is known, which
/// lets clients show a percentage. Reports are cheap but not free: send one per meaningful step.
pub fn progress(progress: f64, total: Option<f64>, message: Option<&str>) {
    host::progress(progress, total, message);
}

/// True once the client has cancelled the running call.
///
/// The host stops a cancelled call on its own shortly after; checking this in long loops lets a
/// tool stop at a clean point first and say so.
pub fn is_cancelled() -> bool {
    host::is_cancelled()
}

/// The agent this call is for, as the client identified it (`X-Agent-Id`), if it did.
///
/// Meant for records ("deployed by"), not for access decisions: the host does not verify it.
pub fn agent_id() -> Option<String> {
    host::agent_id()
}
