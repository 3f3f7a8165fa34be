//! The host services available during a call, with stand-ins off wasm.
//!
//! The generated imports exist only in a component; natively they abort. The stand-ins let
//! plugin authors unit-test their tools with a plain native `cargo test`: logs go to stderr,
//! progress is dropped and nothing is ever cancelled.

#[cfg(target_family = "wasm")]
mod imp {
    use crate::__bindings::sanctum::plugin::host;

    pub(crate) use crate::__bindings::wit::LogLevel as Level;

    pub(crate) fn log(level: Level, message: &str) {
        host::log(level, message);
    }

    pub(crate) fn progress(progress: f64, total: Option<f64>, message: Option<&str>) {
        host::progress(progress, total, message);
    }

    pub(crate) fn is_cancelled() -> bool {
        host::is_cancelled()
    }

    pub(crate) fn agent_id() -> Option<String> {
        host::agent_id()
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    pub(crate) use crate::__bindings::wit::LogLevel as Level;

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        eprintln!("[{level}] {message}");
    }

    pub(crate) fn progress(_progress: f64, _total: Option<f64>, _message: Option<&str>) {}

    pub(crate) fn is_cancelled() -> bool {
        false
    }

    pub(crate) fn agent_id() -> Option<String> {
        None
    }
}

pub(crate) use imp::{Level, agent_id, is_cancelled, log, progress};
