//! The one place the WIT world is bound for the host. Generated names stay inside `runtime/`.
#![allow(missing_docs, missing_debug_implementations, unreachable_pub, clippy::all)]

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: {
        "sanctum:plugin/process.run": async,
        "sanctum:plugin/jobs.start": async,
        "sanctum:plugin/jobs.cancel": async,
    },
    exports: { default: async },
});

pub(crate) use self::exports::sanctum::plugin::tools as guest_tools;
pub(crate) use self::sanctum::plugin::{config, host, jobs, process, types};
