//! The commands besides `serve`: `plugins list|inspect|approve` ([`plugins`]) and `new-plugin`
//! ([`scaffold`]). Each returns what to print; `main` prints it. They load plugins only through
//! the one start-up loader in `app`.

pub mod plugins;
pub mod scaffold;
