//! Write [sanctum](https://example.invalid/sanctum) plugins in Rust.
//!
//! A plugin is a WebAssembly component that offers tools to MCP clients through the sanctum
//! host. Each tool is a type implementing [`Tool`]: its metadata, the JSON Schema of its
//! arguments, a typed `Args` struct, and a `call` function returning an [`Output`] or a
//! [`ToolError`]. The [`plugin!`] macro lists the tools and produces the component's exports;
//! nothing else in a plugin deals with the component model.
//!
//! ```no_run
//! use sanctum_guest::{Annotations, Output, Tool, ToolError};
//! use serde_json::{Value, json};
//!
//! struct Greet;
//!
//! #[derive(serde::Deserialize)]
//! struct GreetArgs {
//!     name: String,
//! }
//!
//! impl Tool for Greet {
//!     const NAME: &'static str = "greet";
//!     const DESCRIPTION: &'static str = "Say hello to someone by name.";
//!     const ANNOTATIONS: Annotations = Annotations::NONE.read_only(true);
//!     type Args = GreetArgs;
//!
//!     fn input_schema() -> Value {
//!         json!({
//!             "type": "object",
//!             "properties": {"name": {"type": "string", "description": "Who to greet."}},
//!             "required": ["name"],
//!             "additionalProperties": false,
//!         })
//!     }
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
//! Build it as a `cdylib` with `cargo build --release --target wasm32-wasip2`; the `.wasm` that
//! comes out is the component the host loads.
//!
//! Each call runs in a fresh instance with no files, environment or network: a tool gets its
//! arguments, may use the host services in [`log`], [`progress`] and [`is_cancelled`], and
//! returns. Off wasm those services fall back to stderr and no-ops, so tools can be unit-tested
//! natively by calling [`Tool::call`] directly.

// Lets the generated code name this crate by the same absolute path (`::sanctum_guest`) both
// here and in plugin crates, where the `plugin!` macro expands.
extern crate self as sanctum_guest;

mod args;
pub mod config;
mod error;
mod host;
pub mod log;
mod macros;
mod names;
mod output;
mod plugin;
pub mod process;
mod requirement;
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
pub use output::Output;
pub use requirement::Requirement;
pub use tool::{Annotations, NoArgs, Tool};

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
