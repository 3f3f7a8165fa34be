//! Command-line and environment configuration, parsed by clap and validated into plain values.
//! Every flag has a `SANCTUM_*` variable; a malformed value stops start-up naming the key.
//! Values a flag or variable did not set come from the `--config` file ([`crate::settings`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::Limits;
use crate::runtime::InstanceAllocator;
pub use crate::settings::LogFormat;

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
    /// Review the plugins directory: `list` (versions, tools and their pin status, grants),
    /// `inspect FILE.wasm`, `approve PLUGIN[__TOOL]` (release tools held back after a change).
    Plugins(crate::plugins_cli::PluginsArgs),
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
    /// How the processes of granted commands are contained (see `serve --help`).
    #[arg(long, env = "SANCTUM_PROCESS_CONTAINMENT", value_enum, default_value_t = ContainmentArg::Auto)]
    pub process_containment: ContainmentArg,
    /// The compile cache, as for `serve` (`off` compiles every time).
    #[arg(long, env = "SANCTUM_CACHE_DIR", value_name = "DIR|off")]
    pub cache_dir: Option<String>,
}

impl CallArgs {
    /// The compile cache directory, resolved as `serve` resolves it.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        StoreArgs { cache_dir: self.cache_dir.clone(), pins: Some("off".into()) }.cache_dir()
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see docs/sanctum.example.toml). Flags and `SANCTUM_*`
    /// variables override what it sets; it overrides the defaults.
    #[arg(long, env = "SANCTUM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    /// On SIGTERM/SIGINT, how long running and queued calls get to finish before they are
    /// cancelled, in milliseconds. New connections are refused from the signal on.
    #[arg(long, env = "SANCTUM_SHUTDOWN_GRACE_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub shutdown_grace_ms: u64,
    /// Log line format on stderr: `human` or `json` (one object per line, with span fields).
    #[arg(long, env = "SANCTUM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter: a level (`info`, `debug`, ...) or `tracing` directives (`sanctum=debug`).
    #[arg(long, env = "SANCTUM_LOG", default_value = "info")]
    pub log_level: String,
    /// Bearer tokens from the config file's `[auth]` section (no flag: a tokens file or
    /// `--auth-tokens-file` is the command-line way). Used unless a tokens file is given.
    #[arg(skip)]
    pub config_auth: Option<crate::transport::AuthSettings>,
    /// Authentication, Origin checks, session caps and rate limits.
    #[command(flatten)]
    pub front_door: FrontDoorArgs,
    /// The compile cache and the tool definition pins.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Watch the plugins directory, the policy and the pin file, and apply changes without a
    /// restart (`false` loads once at start-up).
    #[arg(long, env = "SANCTUM_WATCH", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub watch: bool,
    /// How each call's fresh instance gets its memory: `pooling` recycles slots reserved at
    /// start-up (address space only), `on-demand` maps and unmaps memory per call.
    #[arg(long, env = "SANCTUM_INSTANCE_ALLOCATOR", value_enum, default_value_t = AllocatorArg::Pooling)]
    pub instance_allocator: AllocatorArg,
    /// How every process a granted command starts is kept inside its run: `auto` uses a PID
    /// namespace per run where the kernel allows it (a user namespace too when unprivileged),
    /// else the fallback; `subreaper` forces the fallback (sanctum adopts the run's orphans and
    /// kills them when it ends). The mechanism in force is logged at start-up and shown by `check`.
    #[arg(long, env = "SANCTUM_PROCESS_CONTAINMENT", value_enum, default_value_t = ContainmentArg::Auto)]
    pub process_containment: ContainmentArg,
    /// Threads serving HTTP and MCP. Default: one per core minus the one the plugin worker
    /// keeps busy, at least one.
    #[arg(long, env = "SANCTUM_HTTP_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub http_threads: Option<u16>,
}

/// `--process-containment` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContainmentArg {
    /// Each command run in its own PID namespace where the kernel allows it, else the fallback.
    Auto,
    /// The fallback: sanctum adopts and kills a run's orphaned descendants (child subreaper).
    Subreaper,
}

impl From<ContainmentArg> for crate::runtime::ProcessContainment {
    fn from(arg: ContainmentArg) -> Self {
        match arg {
            ContainmentArg::Auto => Self::Auto,
            ContainmentArg::Subreaper => Self::Subreaper,
        }
    }
}

/// `--instance-allocator` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocatorArg {
    /// A pool of instance slots reserved at start-up and reused by every call.
    Pooling,
    /// Memory mapped for each call and unmapped after it.
    OnDemand,
}

impl From<AllocatorArg> for InstanceAllocator {
    fn from(arg: AllocatorArg) -> Self {
        match arg {
            AllocatorArg::Pooling => Self::Pooling,
            AllocatorArg::OnDemand => Self::OnDemand,
        }
    }
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
            config: None,
            shutdown_grace_ms: 10_000,
            log_format: LogFormat::Human,
            log_level: "info".into(),
            config_auth: None,
            front_door: FrontDoorArgs::default(),
            store: StoreArgs::off(),
            watch: false,
            instance_allocator: AllocatorArg::Pooling,
            process_containment: ContainmentArg::Auto,
            http_threads: None,
        }
    }

    /// How many threads serve HTTP: as asked, else every core but the worker's.
    pub fn http_threads(&self) -> usize {
        match self.http_threads {
            Some(threads) => usize::from(threads),
            None => std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1)),
        }
    }

    /// How long a shutdown waits for calls before cancelling them.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
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

/// The front door of `serve`: who may connect, and how much any one client may hold.
#[derive(Debug, Clone, Args)]
pub struct FrontDoorArgs {
    /// A TOML file of bearer tokens: `[[token]] principal = "letta"` with one of `env = "VAR"`,
    /// `file = "/run/secrets/x"` or (for tests) `value = "..."`.
    #[arg(long, env = "SANCTUM_AUTH_TOKENS_FILE", value_name = "FILE")]
    pub auth_tokens_file: Option<PathBuf>,
    /// One bearer token, for principal `default`. Prefer the variable: a flag's value is
    /// visible in the process list.
    #[arg(long, env = "SANCTUM_AUTH_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Serve a non-loopback address without tokens (refused otherwise), e.g. behind a proxy
    /// that authenticates. Logged as a warning at start-up.
    #[arg(long, env = "SANCTUM_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Browser origins accepted in `Origin` (comma-separated `scheme://host[:port]`, `:*` for any
    /// port) besides the server's own loopback origin. Requests without `Origin` are unaffected.
    #[arg(long, env = "SANCTUM_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Open sessions (legacy SSE and /mcp together) at most; more get 503.
    #[arg(long, env = "SANCTUM_MAX_SESSIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions: u32,
    /// Open sessions one principal may hold; more get 429.
    #[arg(long, env = "SANCTUM_MAX_SESSIONS_PER_PRINCIPAL", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions_per_principal: u32,
    /// A session with no request for this many seconds is closed.
    #[arg(long, env = "SANCTUM_SESSION_IDLE_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub session_idle_secs: u64,
    /// Largest request body on any route, in bytes; larger ones get 413.
    #[arg(long, env = "SANCTUM_MAX_BODY_BYTES", default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1024..=(256 << 20)))]
    pub max_body_bytes: u64,
    /// Tool calls per minute and principal, over every transport (0: unlimited).
    #[arg(long, env = "SANCTUM_CALLS_PER_MINUTE", default_value_t = 600)]
    pub calls_per_minute: u32,
    /// Tool calls a principal may make at once before the per-minute rate applies.
    #[arg(long, env = "SANCTUM_CALL_BURST", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub call_burst: u32,
}

impl Default for FrontDoorArgs {
    fn default() -> Self {
        Self {
            auth_tokens_file: None,
            auth_token: None,
            allow_unauthenticated: false,
            allowed_origins: Vec::new(),
            max_sessions: 1024,
            max_sessions_per_principal: 256,
            session_idle_secs: 300,
            max_body_bytes: 4 << 20,
            calls_per_minute: 600,
            call_burst: 60,
        }
    }
}

impl FrontDoorArgs {
    pub fn limits(&self) -> crate::transport::FrontDoorLimits {
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        crate::transport::FrontDoorLimits {
            max_body_bytes: to_usize(self.max_body_bytes),
            max_sessions: to_usize(self.max_sessions.into()),
            max_sessions_per_principal: to_usize(self.max_sessions_per_principal.into()),
            session_idle: Duration::from_secs(self.session_idle_secs),
            calls_per_minute: (self.calls_per_minute > 0).then_some(self.calls_per_minute),
            call_burst: self.call_burst,
        }
    }
}

/// Where sanctum keeps what it learns about plugins between runs.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Directory of compiled plugins, reused across restarts (keyed by the `.wasm`'s SHA-256
    /// and the engine). Default: `$XDG_CACHE_HOME/sanctum`, else `~/.cache/sanctum`; `off`
    /// compiles every time.
    #[arg(long, env = "SANCTUM_CACHE_DIR", value_name = "DIR|off")]
    pub cache_dir: Option<String>,
    /// The pin file: approved tool definitions (JSON). A tool whose definition changes is held
    /// back until `sanctum plugins approve`. Default: `<policy>.pins.json` next to the policy,
    /// else `pins.json` in the cache directory; `off` serves every definition as it is.
    #[arg(long, env = "SANCTUM_PINS", value_name = "FILE|off")]
    pub pins: Option<String>,
}

impl StoreArgs {
    /// No cache, no pins (tests and embedders that want neither).
    pub fn off() -> Self {
        Self { cache_dir: Some("off".into()), pins: Some("off".into()) }
    }

    /// The compile cache directory, or `None` when it is off (or no home directory exists).
    pub fn cache_dir(&self) -> Option<PathBuf> {
        match self.cache_dir.as_deref() {
            Some("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
                .map(|base| base.join("sanctum")),
        }
    }

    /// The pin file, or `None` when pinning is off.
    pub fn pins_path(&self, policy: Option<&std::path::Path>) -> Option<PathBuf> {
        match self.pins.as_deref() {
            Some("off") => None,
            Some(file) => Some(PathBuf::from(file)),
            None => match policy {
                Some(policy) => {
                    let stem = policy.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    Some(policy.with_file_name(format!("{stem}.pins.json")))
                }
                None => self.cache_dir().map(|dir| dir.join("pins.json")),
            },
        }
    }
}
