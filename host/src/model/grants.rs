//! What the operator granted one plugin, as plain validated data. Built from the policy file at
//! start-up (`policy/`); the sandbox and the capability implementations only read it.
//! Everything absent is denied.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::Limits;

/// All grants of one plugin, and the limits its calls run under.
#[derive(Debug, Clone, Default)]
pub struct PluginGrants {
    pub limits: Limits,
    /// Subprocess commands by the name the plugin uses.
    pub commands: BTreeMap<String, CommandGrant>,
    /// Host directories visible to the guest.
    pub directories: Vec<DirectoryGrant>,
    /// The guest's entire environment.
    pub env: BTreeMap<String, String>,
    /// Values the plugin reads with `config.get`.
    pub config: BTreeMap<String, String>,
    /// Outgoing HTTP destinations.
    pub http: Vec<HttpGrant>,
    /// Serve this plugin's tools under their own names rather than `<plugin>__<tool>` (for
    /// clients that call fixed names, such as a conformance suite). Off by default: the prefix
    /// is what keeps plugins from shadowing each other. Read by the registry, which refuses a
    /// bare name that clashes; the sandbox ignores it.
    pub bare_tool_names: bool,
}

impl PluginGrants {
    /// Secret values this plugin's requests may carry: scrubbed from everything it returns.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.http.iter().filter_map(|g| g.secret.as_ref()).map(|s| s.value.as_str())
    }
}

/// One outgoing HTTP destination: scheme, host and port must all match.
#[derive(Debug, Clone)]
pub struct HttpGrant {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name or IP literal, exactly as the plugin must write it.
    pub host: String,
    pub port: u16,
    /// Non-public address ranges this destination may resolve to (internal infrastructure).
    /// Empty: only public addresses.
    pub allowed_ranges: Vec<ipnet::IpNet>,
    /// Most response body bytes the plugin may read.
    pub max_response_bytes: usize,
    /// Connect and first-byte time limit.
    pub timeout: Duration,
    /// A secret the host adds to every request to this destination.
    pub secret: Option<SecretInjection>,
}

/// Where a secret goes in a request. The plugin never sees the value.
#[derive(Clone)]
pub struct SecretInjection {
    pub name: String,
    pub value: String,
    pub place: SecretPlace,
}

/// `{secret}` in these templates stands for the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPlace {
    /// A request header, e.g. `Authorization: Bearer {secret}`.
    Header { name: String, template: String },
    /// Prepended to the request path, e.g. `/bot{secret}` for Telegram's Bot API.
    PathPrefix { template: String },
}

impl std::fmt::Debug for SecretInjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretInjection").field("name", &self.name).field("place", &self.place).finish_non_exhaustive()
    }
}

/// One subprocess command: everything about how it runs is fixed here, not by the plugin.
#[derive(Debug, Clone)]
pub struct CommandGrant {
    /// Absolute path of the program.
    pub program: PathBuf,
    /// Arguments always passed first.
    pub leading_args: Vec<String>,
    /// Each further argument must match one of these in full.
    pub allowed_args: Vec<regex::Regex>,
    /// Whether a further argument may start with `-` (option injection guard).
    pub allow_flags: bool,
    /// The child's entire environment (nothing is inherited).
    pub env: BTreeMap<String, String>,
    /// Working directory of the child.
    pub cwd: PathBuf,
    pub timeout: Duration,
    pub max_stdout_bytes: usize,
    pub max_stderr_bytes: usize,
    /// Whether the plugin may send standard input.
    pub allow_stdin: bool,
    /// Child resource limits (processes, CPU seconds, address space).
    pub rlimits: ChildLimits,
    /// Paths the child may read and execute beneath (Landlock, where the kernel has it).
    pub readable: Vec<PathBuf>,
    /// Paths the child may also write beneath. `/dev/null` is always writable.
    pub writable: Vec<PathBuf>,
    /// How the command runs when a plugin starts it as a job.
    pub jobs: JobLimits,
}

#[cfg(test)]
impl CommandGrant {
    /// A grant of `program` with no arguments allowed, an empty environment, a 5 s timeout,
    /// 1 KiB per captured stream and the whole file system readable: the unit tests' base, which
    /// each changes only where its subject lies.
    pub fn for_tests(program: &str) -> Self {
        Self {
            program: program.into(),
            leading_args: vec![],
            allowed_args: vec![],
            allow_flags: false,
            env: BTreeMap::new(),
            cwd: "/".into(),
            timeout: Duration::from_secs(5),
            max_stdout_bytes: 1024,
            max_stderr_bytes: 1024,
            allow_stdin: false,
            rlimits: ChildLimits::default(),
            readable: vec!["/".into()],
            writable: vec![],
            jobs: JobLimits::default(),
        }
    }
}

/// The limits of a command started as a host-supervised job (`sanctum:plugin/jobs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Jobs of this command that may run at once (`max_jobs`).
    pub max_running: u32,
    /// How long one may run before the host stops it (`job_timeout_ms`).
    pub timeout: Duration,
    /// Output kept in the job's file (`job_output_kib`); past it only the last 8 KiB.
    pub output_bytes: u64,
}

impl JobLimits {
    pub const DEFAULT_MAX_RUNNING: u32 = 1;
    pub const MAX_RUNNING_RANGE: std::ops::RangeInclusive<u64> = 1..=64;
    pub const DEFAULT_TIMEOUT_MS: u64 = 30 * 60 * 1000;
    pub const TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 1000..=86_400_000;
    pub const DEFAULT_OUTPUT_KIB: u64 = 1024;
    pub const OUTPUT_KIB_RANGE: std::ops::RangeInclusive<u64> = 1..=65_536;
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            max_running: Self::DEFAULT_MAX_RUNNING,
            timeout: Duration::from_millis(Self::DEFAULT_TIMEOUT_MS),
            output_bytes: Self::DEFAULT_OUTPUT_KIB << 10,
        }
    }
}

/// Resource limits applied to a child process before it executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildLimits {
    /// Processes the child's user may have (RLIMIT_NPROC): bounds fork bombs.
    pub max_processes: u64,
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Address space in bytes (RLIMIT_AS).
    pub address_space_bytes: u64,
    /// Open files (RLIMIT_NOFILE).
    pub open_files: u64,
}

impl Default for ChildLimits {
    fn default() -> Self {
        Self { max_processes: 256, cpu_seconds: 60, address_space_bytes: 2 << 30, open_files: 256 }
    }
}

/// A host directory mapped into the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}
