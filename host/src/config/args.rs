//! The command line: every subcommand's flags, parsed by clap into plain values. Every flag has
//! a `SANCTUM_*` variable; a malformed value stops start-up naming the key. Values no flag or
//! variable set come from the `--config` file ([`super::file`]), then from the defaults,
//! each named once beside what it bounds (`model::limits`, `transport::limits`).
//!
//! Groups shared by several subcommands are written once: [`SourceArgs`] (where the plugins,
//! the policy and the pins are) and [`SandboxArgs`] (how calls run), so `serve`, `check`,
//! `call` and `plugins` resolve them alike; [`admin_socket`] resolves the admin socket alike
//! for `serve` and `sanctum approvals`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::approvals::{
    APPROVAL_TIMEOUT_SECS_RANGE, ApprovalSettings, DEFAULT_APPROVAL_TIMEOUT_SECS, DEFAULT_MAX_PENDING_APPROVALS,
    MAX_PENDING_APPROVALS_RANGE,
};
use crate::model::{
    CALL_TIMEOUT_MS_RANGE, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MEMORY_LIMIT_MIB, Limits, MEMORY_LIMIT_MIB_RANGE,
};
use crate::transport::limits::{
    DEFAULT_CALL_BURST, DEFAULT_CALLS_PER_MINUTE, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_SESSIONS,
    DEFAULT_MAX_SESSIONS_PER_PRINCIPAL, DEFAULT_SESSION_IDLE_SECS,
};
use crate::transport::{AuthSettings, FrontDoorLimits};

/// Default plugins directory.
pub const DEFAULT_PLUGINS_DIR: &str = "plugins";
/// Default calls that may wait behind the running one.
pub const DEFAULT_QUEUE_CAPACITY: u16 = 64;
/// Default time running calls get to finish on SIGTERM/SIGINT, in milliseconds.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// The grace periods an operator may set, in milliseconds.
pub const SHUTDOWN_GRACE_MS_RANGE: std::ops::RangeInclusive<u64> = 0..=3_600_000;

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
    Plugins(PluginsArgs),
    /// Calls held for an operator's approval on a running server: `list`, `show ID`,
    /// `approve ID`, `deny ID --reason TEXT`, over the admin socket (or `--admin-url`).
    Approvals(ApprovalsArgs),
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
    /// The language of the plugin: a Rust crate, a Python app (componentize-py) or a JavaScript
    /// module (componentize-js), each with a passing test and a pinned build.
    #[arg(long, value_enum, default_value_t = PluginLang::Rust)]
    pub lang: PluginLang,
}

/// What `new-plugin` writes a plugin in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PluginLang {
    Rust,
    Python,
    Js,
}

/// How every call runs: its limits and how the host contains it. Shared by every command that
/// runs plugin code, so `plugins list` loads with the limits `serve` would use.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Wall-clock limit of one tool call, in milliseconds.
    #[arg(long, env = "SANCTUM_CALL_TIMEOUT_MS", default_value_t = DEFAULT_CALL_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(CALL_TIMEOUT_MS_RANGE))]
    pub call_timeout_ms: u64,
    /// Memory one call may use (all its memories and tables together), in MiB.
    #[arg(long, env = "SANCTUM_MEMORY_LIMIT_MIB", default_value_t = DEFAULT_MEMORY_LIMIT_MIB,
        value_parser = clap::value_parser!(u64).range(MEMORY_LIMIT_MIB_RANGE))]
    pub memory_limit_mib: u64,
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
}

impl Default for SandboxArgs {
    fn default() -> Self {
        Self {
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            memory_limit_mib: DEFAULT_MEMORY_LIMIT_MIB,
            instance_allocator: AllocatorArg::Pooling,
            process_containment: ContainmentArg::Auto,
        }
    }
}

impl SandboxArgs {
    pub fn limits(&self) -> Limits {
        Limits::with(self.call_timeout_ms, self.memory_limit_mib)
    }
}

/// Where the plugins, their policy and what sanctum keeps between runs are. Shared by `serve`,
/// `check` and `plugins`, so `plugins approve` writes the pin file the server reads.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// A TOML configuration file (see docs/sanctum.example.toml). Flags and `SANCTUM_*`
    /// variables override what it sets; it overrides the defaults.
    #[arg(long, env = "SANCTUM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of `.wasm` plugins (not searched recursively).
    #[arg(long, env = "SANCTUM_PLUGINS_DIR", default_value = DEFAULT_PLUGINS_DIR)]
    pub plugins: PathBuf,
    /// The operator's policy (TOML): what each plugin may do. Without one, every plugin gets no
    /// capabilities and the default limits.
    #[arg(long, env = "SANCTUM_POLICY")]
    pub policy: Option<PathBuf>,
    /// The compile cache and the tool definition pins.
    #[command(flatten)]
    pub store: StoreArgs,
}

impl SourceArgs {
    /// `dir`, with no config file, no policy, and neither cache nor pins.
    pub fn plugins_only(dir: impl Into<PathBuf>) -> Self {
        Self { config: None, plugins: dir.into(), policy: None, store: StoreArgs::off() }
    }

    /// The pin file, or `None` when pinning is off.
    pub fn pins_path(&self) -> Option<PathBuf> {
        self.store.pins_path(self.policy.as_deref())
    }
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
    /// Where audit records go: a file, `-` for stderr, or `off`.
    #[arg(long, default_value = "off")]
    pub audit: String,
    /// The compile cache, as for `serve` (`off` compiles every time).
    #[arg(long, env = "SANCTUM_CACHE_DIR", value_name = "DIR|off")]
    pub cache_dir: Option<String>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to bind. Loopback by default: exposing sanctum is a deliberate choice.
    #[arg(long, env = "SANCTUM_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to bind; 0 picks a free one (the chosen address is printed on stdout).
    #[arg(long, env = "SANCTUM_PORT", default_value_t = 8000)]
    pub port: u16,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Calls that may wait behind the running one before callers are told the server is busy.
    #[arg(long, env = "SANCTUM_QUEUE_CAPACITY", default_value_t = DEFAULT_QUEUE_CAPACITY,
        value_parser = clap::value_parser!(u16).range(1..))]
    pub queue_capacity: u16,
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
    #[arg(long, env = "SANCTUM_SHUTDOWN_GRACE_MS", default_value_t = DEFAULT_SHUTDOWN_GRACE_MS,
        value_parser = clap::value_parser!(u64).range(SHUTDOWN_GRACE_MS_RANGE))]
    pub shutdown_grace_ms: u64,
    /// Log line format on stderr: `human` or `json` (one object per line, with span fields).
    #[arg(long, env = "SANCTUM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter: a level (`info`, `debug`, ...) or `tracing` directives (`sanctum=debug`).
    /// The MCP library (`rmcp`) logs only warnings unless the filter names it (`info,rmcp=info`).
    #[arg(long, env = "SANCTUM_LOG", default_value = "info")]
    pub log_level: String,
    /// Authentication, Origin checks, session caps and rate limits.
    #[command(flatten)]
    pub front_door: FrontDoorArgs,
    /// Watch the plugins directory, the policy and the pin file, and apply changes without a
    /// restart (`false` loads once at start-up).
    #[arg(long, env = "SANCTUM_WATCH", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub watch: bool,
    /// Threads serving HTTP and MCP. Default: one per core minus the one the plugin worker
    /// keeps busy, at least one.
    #[arg(long, env = "SANCTUM_HTTP_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub http_threads: Option<u16>,
    /// Calls held for approval, and the operators' admin plane.
    #[command(flatten)]
    pub approvals: ApprovalArgs,
    /// Where host-supervised jobs keep their records and output (created private). Default:
    /// `$XDG_STATE_HOME/sanctum/jobs`, else `~/.local/state/sanctum/jobs`; `off` refuses jobs.
    /// One server per directory: a second one is refused.
    #[arg(long, env = "SANCTUM_JOBS_DIR", value_name = "DIR|off")]
    pub jobs_dir: Option<String>,
    /// Components at least this large (MiB; Python and JavaScript plugins are 12–18) that the
    /// compile cache does not hold yet are compiled in the background: the server serves the
    /// others meanwhile and `/readyz` waits for those present at start-up. `0`: every one.
    #[arg(long, env = "SANCTUM_BACKGROUND_COMPILE_MIB", default_value_t = DEFAULT_BACKGROUND_COMPILE_MIB)]
    pub background_compile_mib: u32,
    /// At most this many background compiles at once (each may take ~400 MB at its peak).
    #[arg(long, env = "SANCTUM_BACKGROUND_COMPILES", default_value_t = DEFAULT_BACKGROUND_COMPILES,
          value_parser = clap::value_parser!(u8).range(1..=8))]
    pub background_compiles: u8,
}

/// Default `--background-compile-mib`: Rust plugins (0.2–2 MB) compile where they load.
pub const DEFAULT_BACKGROUND_COMPILE_MIB: u32 = 4;
/// Default `--background-compiles`: one, so the compile peak is one component's.
pub const DEFAULT_BACKGROUND_COMPILES: u8 = 1;

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines (coloured on a terminal).
    Human,
    /// One JSON object per line, with the fields of the enclosing spans (e.g. the request id).
    Json,
}

/// `--process-containment` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContainmentArg {
    /// Each command run in its own PID namespace where the kernel allows it, else the fallback.
    Auto,
    /// The fallback: sanctum adopts and kills a run's orphaned descendants (child subreaper).
    Subreaper,
}

/// `--instance-allocator` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocatorArg {
    /// A pool of instance slots reserved at start-up and reused by every call.
    Pooling,
    /// Memory mapped for each call and unmapped after it.
    OnDemand,
}

impl ServeArgs {
    /// Arguments for tests and embedders: loopback, port 0, no audit, no cache, no pins, no
    /// watching, defaults elsewhere.
    pub fn for_plugins(plugins: impl Into<PathBuf>) -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            source: SourceArgs::plugins_only(plugins),
            sandbox: SandboxArgs::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            audit: "off".into(),
            allowed_hosts: Vec::new(),
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
            log_format: LogFormat::Human,
            log_level: "info".into(),
            front_door: FrontDoorArgs::default(),
            watch: false,
            http_threads: None,
            approvals: ApprovalArgs::default(),
            jobs_dir: None,
            background_compile_mib: DEFAULT_BACKGROUND_COMPILE_MIB,
            background_compiles: DEFAULT_BACKGROUND_COMPILES,
        }
    }

    /// What `serve` compiles in the background.
    pub fn background_compiles(&self) -> crate::model::BackgroundCompiles {
        crate::model::BackgroundCompiles {
            min_bytes: usize::try_from(self.background_compile_mib).unwrap_or(usize::MAX).saturating_mul(1 << 20),
            parallel: usize::from(self.background_compiles),
        }
    }

    /// The jobs directory, and whether the operator named it; `None` when jobs are off (or no
    /// home directory exists for the default).
    pub fn jobs_dir(&self) -> Option<(PathBuf, bool)> {
        match self.jobs_dir.as_deref() {
            Some("off") => None,
            Some(dir) => Some((PathBuf::from(dir), true)),
            None => std::env::var_os("XDG_STATE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/state"))
                })
                .map(|base| (base.join("sanctum").join("jobs"), false)),
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
    /// Bearer tokens from the config file's `[auth]` section (no flag: a tokens file is the
    /// command-line way). Set by the config file only when no tokens file is given.
    #[arg(skip)]
    pub config_auth: Option<AuthSettings>,
    /// Serve a non-loopback address without tokens (refused otherwise), e.g. behind a proxy
    /// that authenticates. Logged as a warning at start-up.
    #[arg(long, env = "SANCTUM_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Browser origins accepted in `Origin` (comma-separated `scheme://host[:port]`, `:*` for any
    /// port) besides the server's own loopback origin. Requests without `Origin` are unaffected.
    #[arg(long, env = "SANCTUM_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Open sessions (legacy SSE and /mcp together) at most; more get 503.
    #[arg(long, env = "SANCTUM_MAX_SESSIONS", default_value_t = DEFAULT_MAX_SESSIONS,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions: u32,
    /// Open sessions one principal may hold; more get 429.
    #[arg(long, env = "SANCTUM_MAX_SESSIONS_PER_PRINCIPAL", default_value_t = DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions_per_principal: u32,
    /// A session with no request for this many seconds is closed.
    #[arg(long, env = "SANCTUM_SESSION_IDLE_SECS", default_value_t = DEFAULT_SESSION_IDLE_SECS,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub session_idle_secs: u64,
    /// Largest request body on any route, in bytes; larger ones get 413.
    #[arg(long, env = "SANCTUM_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES,
        value_parser = clap::value_parser!(u64).range(1024..=(256 << 20)))]
    pub max_body_bytes: u64,
    /// Tool calls per minute and principal, over every transport (0: unlimited).
    #[arg(long, env = "SANCTUM_CALLS_PER_MINUTE", default_value_t = DEFAULT_CALLS_PER_MINUTE)]
    pub calls_per_minute: u32,
    /// Tool calls a principal may make at once before the per-minute rate applies.
    #[arg(long, env = "SANCTUM_CALL_BURST", default_value_t = DEFAULT_CALL_BURST,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub call_burst: u32,
}

impl Default for FrontDoorArgs {
    fn default() -> Self {
        Self {
            auth_tokens_file: None,
            auth_token: None,
            config_auth: None,
            allow_unauthenticated: false,
            allowed_origins: Vec::new(),
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_sessions_per_principal: DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
            session_idle_secs: DEFAULT_SESSION_IDLE_SECS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            calls_per_minute: DEFAULT_CALLS_PER_MINUTE,
            call_burst: DEFAULT_CALL_BURST,
        }
    }
}

impl FrontDoorArgs {
    pub fn limits(&self) -> FrontDoorLimits {
        FrontDoorLimits::new(
            self.max_body_bytes,
            self.max_sessions,
            self.max_sessions_per_principal,
            self.session_idle_secs,
            self.calls_per_minute,
            self.call_burst,
        )
    }
}

/// Calls an access rule holds for an operator (`effect = "approve"`), and the admin plane
/// operators decide them through: a Unix socket, and optionally an HTTP listener of its own.
#[derive(Debug, Clone, Args)]
pub struct ApprovalArgs {
    /// How long a call held for approval waits for an operator, in seconds; then its caller is
    /// told it expired. Keep it under the clients' own tool-call timeouts.
    #[arg(long, env = "SANCTUM_APPROVAL_TIMEOUT_SECS", default_value_t = DEFAULT_APPROVAL_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(APPROVAL_TIMEOUT_SECS_RANGE))]
    pub approval_timeout_secs: u64,
    /// Calls that may wait for approval at once; more are refused at once.
    #[arg(long, env = "SANCTUM_MAX_PENDING_APPROVALS", default_value_t = DEFAULT_MAX_PENDING_APPROVALS,
        value_parser = clap::value_parser!(u64).range(MAX_PENDING_APPROVALS_RANGE))]
    pub max_pending_approvals: u64,
    /// The admin socket (mode 0600, in a directory of mode 0700 sanctum creates if missing).
    /// Default: `$XDG_RUNTIME_DIR/sanctum/admin.sock`, else `/run/sanctum/admin.sock` for root,
    /// else `$TMPDIR/sanctum-<uid>/admin.sock`; `off` serves none.
    #[arg(long, env = "SANCTUM_ADMIN_SOCKET", value_name = "PATH|off")]
    pub admin_socket: Option<String>,
    /// Also serve the admin API over HTTP at `HOST:PORT` (a bare `PORT` is loopback), with the
    /// admin tokens of the config file's `[[admin.token]]`. Off by default.
    #[arg(long, env = "SANCTUM_ADMIN_LISTEN", value_name = "ADDR", value_parser = parse_admin_listen)]
    pub admin_listen: Option<SocketAddr>,
    /// Admin bearer tokens (`[[admin.token]]` in the config file only), distinct from every MCP
    /// token; required by `--admin-listen`.
    #[arg(skip)]
    pub admin_tokens: Option<AuthSettings>,
    /// Where to POST a summary (never argument values) of every call held for approval
    /// (`[approvals] notify_url` in the config file only).
    #[arg(skip)]
    pub notify_url: Option<String>,
    /// Non-public ranges the webhook may reach (`[approvals] notify_allowed_ranges`); public
    /// addresses only by default, as for a plugin's HTTP.
    #[arg(skip)]
    pub notify_allowed_ranges: Vec<ipnet::IpNet>,
}

impl Default for ApprovalArgs {
    /// The defaults, except that no admin socket is served: tests and embedders run many
    /// servers at once, which must not compete for the one default path.
    fn default() -> Self {
        Self {
            approval_timeout_secs: DEFAULT_APPROVAL_TIMEOUT_SECS,
            max_pending_approvals: DEFAULT_MAX_PENDING_APPROVALS,
            admin_socket: Some("off".into()),
            admin_listen: None,
            admin_tokens: None,
            notify_url: None,
            notify_allowed_ranges: Vec::new(),
        }
    }
}

impl ApprovalArgs {
    /// The approvals book's settings.
    pub fn settings(&self) -> ApprovalSettings {
        ApprovalSettings {
            timeout: Duration::from_secs(self.approval_timeout_secs),
            max_pending: usize::try_from(self.max_pending_approvals).unwrap_or(usize::MAX),
        }
    }

    /// The admin socket, or `None` when it is off.
    pub fn admin_socket(&self) -> Option<PathBuf> {
        admin_socket(self.admin_socket.as_deref())
    }
}

/// `--admin-listen`: `HOST:PORT`, `[V6]:PORT`, or a bare `PORT` on loopback (the safe default
/// for an operators' endpoint).
pub fn parse_admin_listen(value: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = value.trim().parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    value.trim().parse().map_err(|_| format!("{value:?} is not PORT, HOST:PORT or [V6]:PORT"))
}

/// `--admin-socket` resolved: `off` is none, a value is that path, nothing is the default
/// under the runtime directory (the same for the server and `sanctum approvals`).
pub fn admin_socket(value: Option<&str>) -> Option<PathBuf> {
    match value {
        Some("off") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => Some(default_admin_socket()),
    }
}

/// `$XDG_RUNTIME_DIR/sanctum/admin.sock` (the user's private runtime directory), else
/// `/run/sanctum/admin.sock` for root, else `$TMPDIR/sanctum-<uid>/admin.sock` (sanctum makes
/// the directory 0700 and refuses one it does not own).
pub fn default_admin_socket() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(runtime) = var("XDG_RUNTIME_DIR") {
        return runtime.join("sanctum").join("admin.sock");
    }
    let uid = rustix::process::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/sanctum/admin.sock");
    }
    var("TMPDIR").unwrap_or_else(|| PathBuf::from("/tmp")).join(format!("sanctum-{}", uid.as_raw())).join("admin.sock")
}

/// `sanctum approvals`: one subcommand, and where the server's admin plane is.
#[derive(Debug, Clone, Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    pub command: ApprovalsCommand,
    #[command(flatten)]
    pub admin: AdminClientArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ApprovalsCommand {
    /// The calls waiting for approval, oldest first.
    List,
    /// One entry, with its arguments while it is pending.
    Show {
        /// The entry's id, as `list` shows it (e.g. `K7QD-3`).
        id: String,
    },
    /// Let the held call run, once, with the arguments shown.
    Approve {
        /// The entry's id.
        id: String,
    },
    /// Refuse the held call; its caller gets the reason.
    Deny {
        /// The entry's id.
        id: String,
        /// Why: the caller (and the audit log) gets it.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

/// How `sanctum approvals` reaches the server's admin plane.
#[derive(Debug, Clone, Args)]
pub struct AdminClientArgs {
    /// The server's admin socket (default as for `serve`, or the config file's
    /// `approvals.admin_socket`).
    #[arg(long, env = "SANCTUM_ADMIN_SOCKET", value_name = "PATH", global = true)]
    pub admin_socket: Option<String>,
    /// Use the admin HTTP listener at this URL instead (`http://127.0.0.1:9001`), with the
    /// token in `SANCTUM_ADMIN_TOKEN`.
    #[arg(long, env = "SANCTUM_ADMIN_URL", value_name = "URL", global = true)]
    pub admin_url: Option<String>,
    /// The server's config file, for its `approvals.admin_socket`.
    #[arg(long, env = "SANCTUM_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
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
        cache_dir(self.cache_dir.as_deref())
    }

    /// The pin file, or `None` when pinning is off.
    pub fn pins_path(&self, policy: Option<&Path>) -> Option<PathBuf> {
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

/// `--cache-dir` resolved: `off` is none, a value is that directory, nothing is the user's
/// cache directory.
pub fn cache_dir(value: Option<&str>) -> Option<PathBuf> {
    match value {
        Some("off") => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
            .map(|base| base.join("sanctum")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    pub command: PluginsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PluginsCommand {
    /// List the plugins in the directory: version, tools with pin status, needs versus grants.
    List(PluginsDirArgs),
    /// Check one component file and show what it declares: plugin info, tools with schemas,
    /// needed capabilities.
    Inspect {
        /// The component (`.wasm`).
        file: PathBuf,
    },
    /// Approve the current definition of the named tools (`PLUGIN__TOOL`) or of every tool of
    /// a plugin (`PLUGIN`), writing the pin file.
    Approve {
        /// What to approve: `PLUGIN` or `PLUGIN__TOOL`, one or more.
        #[arg(required = true)]
        targets: Vec<String>,
        #[command(flatten)]
        dir: PluginsDirArgs,
    },
}

/// The plugins as `serve` would load them: the same flags, config file and defaults.
#[derive(Debug, Clone, Args)]
pub struct PluginsDirArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}
