//! Command-line and environment configuration, parsed by clap and validated into plain values.
//! Every flag has a `SANCTUM_*` variable; a malformed value stops start-up naming the key.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::runtime::Limits;

#[derive(Debug, Parser)]
#[command(name = "sanctum", version, about = "Serve WebAssembly component plugins as sandboxed MCP tools")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the plugins over MCP (Streamable HTTP at /mcp, legacy SSE at /sse).
    Serve(ServeArgs),
    /// Validate the policy and the plugins against it, print what each plugin is granted,
    /// misses and leaves unused, and exit non-zero on any problem. Serves nothing.
    Check(ServeArgs),
    /// Run one tool of one plugin file in the same sandbox the server uses, print the MCP
    /// result as JSON, and exit 0 (success), 2 (tool error) or 1 (anything else).
    Call(CallArgs),
    /// Create a new plugin crate, PARENT/NAME, from the template: one typed tool with a unit
    /// test, ready for `cargo test` and `cargo build --release --target wasm32-wasip2`.
    NewPlugin(NewPluginArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NewPluginArgs {
    /// The plugin's name (and the crate's): lowercase ASCII letters, digits and single `_`,
    /// starting with a letter, at most 40 characters. Clients see its tools as `NAME__<tool>`.
    pub name: String,
    /// Where to create the crate's directory; it must exist, and NAME must not exist in it.
    #[arg(long, value_name = "PARENT", default_value = ".")]
    pub dir: PathBuf,
    /// The guest SDK (`guest-sdk/` of a sanctum checkout). Defaults to the one this binary was
    /// built from.
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct CallArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// The tool: its name within the plugin (`echo`) or as served (`echo__echo`).
    pub tool: String,
    /// The arguments, as a JSON object.
    #[arg(long, default_value = "{}")]
    pub args: String,
    /// The operator's policy, for the grants the call runs with (none without it).
    #[arg(long, env = "SANCTUM_POLICY")]
    pub policy: Option<PathBuf>,
    /// Wall-clock limit of the call, in milliseconds.
    #[arg(long, env = "SANCTUM_CALL_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub call_timeout_ms: u64,
    /// Linear memory the call may use, in MiB.
    #[arg(long, env = "SANCTUM_MEMORY_LIMIT_MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub memory_limit_mib: u64,
    /// Where audit records go: a file, `-` for stderr, or `off`.
    #[arg(long, default_value = "off")]
    pub audit: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to bind. Loopback by default: exposing sanctum is a deliberate choice.
    #[arg(long, env = "SANCTUM_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (the chosen address is printed on stdout).
    #[arg(long, env = "SANCTUM_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Directory of `.wasm` plugins (not searched recursively).
    #[arg(long, env = "SANCTUM_PLUGINS_DIR", default_value = "plugins")]
    pub plugins: PathBuf,
    /// Calls that may wait behind the running one before callers are told the server is busy.
    #[arg(long, env = "SANCTUM_QUEUE_CAPACITY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub queue_capacity: u16,
    /// Wall-clock limit of one tool call, in milliseconds.
    #[arg(long, env = "SANCTUM_CALL_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub call_timeout_ms: u64,
    /// Linear memory one call may use, in MiB.
    #[arg(long, env = "SANCTUM_MEMORY_LIMIT_MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub memory_limit_mib: u64,
    /// The operator's policy (TOML): what each plugin may do. Without one, every plugin gets no
    /// capabilities and the default limits.
    #[arg(long, env = "SANCTUM_POLICY")]
    pub policy: Option<PathBuf>,
    /// Where audit records go, one JSON object per line: a file path (appended), `-` for
    /// stderr, or `off`.
    #[arg(long, env = "SANCTUM_AUDIT", default_value = "-")]
    pub audit: String,
    /// Extra accepted `Host` names besides localhost, 127.0.0.1 and ::1 (comma-separated),
    /// e.g. the name other containers use to reach sanctum.
    #[arg(long, env = "SANCTUM_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}

impl ServeArgs {
    /// Arguments for tests and embedders: loopback, port 0, defaults elsewhere.
    pub fn for_plugins(plugins: impl Into<PathBuf>) -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            plugins: plugins.into(),
            queue_capacity: 64,
            call_timeout_ms: 30_000,
            memory_limit_mib: 64,
            allowed_hosts: Vec::new(),
            policy: None,
            audit: "off".into(),
        }
    }

    pub fn limits(&self) -> Limits {
        limits(self.call_timeout_ms, self.memory_limit_mib)
    }
}

impl CallArgs {
    pub fn limits(&self) -> Limits {
        limits(self.call_timeout_ms, self.memory_limit_mib)
    }
}

fn limits(call_timeout_ms: u64, memory_limit_mib: u64) -> Limits {
    Limits {
        call_timeout: Duration::from_millis(call_timeout_ms),
        memory_bytes: usize::try_from(memory_limit_mib << 20).unwrap_or(usize::MAX),
        ..Limits::default()
    }
}
