//! The commands besides `serve`: `plugins list|inspect|approve` ([`plugins`]), `new-plugin`
//! ([`scaffold`]) and `approvals` ([`approvals`], a client of a running server's admin plane).
//! Each returns what to print; `main` prints it. They load plugins only through the one
//! start-up loader in `app`.

pub mod approvals;
pub mod plugins;
pub mod scaffold;
