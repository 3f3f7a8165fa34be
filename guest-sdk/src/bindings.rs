//! Code generated from `wit/plugin.wit`.
//!
//! It is public only because the `plugin!` macro expands in the plugin's crate and must reach the
//! generated `Guest` trait and export macro; authors use the SDK's own types instead, so a change
//! in the generator's naming never breaks plugin code.

wit_bindgen::generate!({
    world: "plugin",
    path: "../wit",
    // The export macro is invoked from the plugin's crate, so it must be exported and must find
    // these bindings through the SDK rather than through a `wit_bindgen` dependency of its own.
    pub_export_macro: true,
    export_macro_name: "__export",
    default_bindings_module: "::sanctum_guest::__bindings",
    runtime_path: "::sanctum_guest::__bindings::rt",
});

/// The generator's runtime, re-exported so plugin crates need no `wit-bindgen` dependency.
pub use wit_bindgen::rt;

pub use exports::sanctum::plugin::tools::Guest;
pub use sanctum::plugin::types as wit;
