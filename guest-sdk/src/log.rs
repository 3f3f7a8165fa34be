//! Log messages to the host.
//!
//! A message goes to the host's log and, as an MCP logging notification, to the client whose
//! call is running. The host truncates long messages and throttles chatty plugins, so log what
//! helps someone understand a call, not every step of a loop.
//!
//! Plain `println!`/`eprintln!` are not a substitute: the sandbox's stdout and stderr are not
//! connected to the client.

use crate::host;

/// Log at debug level: detail that is useful only when diagnosing the plugin.
pub fn debug(message: &str) {
    host::log(host::Level::Debug, message);
}

/// Log at info level: what the call is doing.
pub fn info(message: &str) {
    host::log(host::Level::Info, message);
}

/// Log at warning level: something unexpected that the call worked around.
pub fn warn(message: &str) {
    host::log(host::Level::Warning, message);
}

/// Log at error level: something failed.
pub fn error(message: &str) {
    host::log(host::Level::Error, message);
}
