//! The policy file as written: TOML shapes only, every table closed to unknown keys so a typo is
//! an error that names the key rather than a grant silently missing.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    #[serde(default)]
    pub(super) defaults: LimitsFile,
    #[serde(default)]
    pub(super) plugins: BTreeMap<String, PluginFile>,
    /// Who may call which tool (see `crate::access`); absent: every caller, every tool.
    #[serde(default)]
    pub(super) access: Option<crate::access::AccessSection>,
}

/// Per-call limits; absent values keep the built-in defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsFile {
    pub(super) memory_mib: Option<u64>,
    pub(super) call_timeout_ms: Option<u64>,
    pub(super) max_output_kib: Option<u64>,
    pub(super) captured_output_kib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginFile {
    #[serde(flatten)]
    pub(super) limits: LimitsFile,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    /// Strings reach the plugin as written; tables, arrays, numbers and booleans as JSON text,
    /// so a plugin can take structured settings (e.g. one table per application).
    pub(super) config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub(super) directories: Vec<DirectoryFile>,
    #[serde(default)]
    pub(super) commands: BTreeMap<String, CommandFile>,
    #[serde(default)]
    pub(super) http: Vec<HttpFile>,
    /// Serve the plugin's tools unprefixed (`test_x`, not `plugin__test_x`).
    #[serde(default)]
    pub(super) bare_tool_names: bool,
    /// The SHA-256 of the only component file that may serve as this plugin.
    pub(super) sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    pub(super) url: String,
    #[serde(default)]
    pub(super) allow_ranges: Vec<String>,
    pub(super) max_response_kib: Option<u64>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) secret: Option<SecretFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretFile {
    pub(super) name: String,
    /// The host environment variable holding the value (read once at start-up)…
    pub(super) env: Option<String>,
    /// …or a file holding it (e.g. a mounted Kubernetes secret); trailing newlines are dropped.
    pub(super) file: Option<String>,
    pub(super) header: Option<String>,
    /// Header value template; `{secret}` stands for the value. Default `{secret}`.
    pub(super) value: Option<String>,
    pub(super) path_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DirectoryFile {
    pub(super) host: String,
    pub(super) guest: String,
    #[serde(default)]
    pub(super) writable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandFile {
    pub(super) program: String,
    #[serde(default)]
    pub(super) args: Vec<String>,
    #[serde(default)]
    pub(super) allowed_args: Vec<String>,
    #[serde(default)]
    pub(super) allow_flags: bool,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) cwd: Option<String>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) max_stdout_kib: Option<u64>,
    pub(super) max_stderr_kib: Option<u64>,
    #[serde(default)]
    pub(super) stdin: bool,
    #[serde(default)]
    pub(super) full_trust: bool,
    #[serde(default)]
    pub(super) limits: ChildLimitsFile,
    pub(super) readable: Option<Vec<String>>,
    #[serde(default)]
    pub(super) writable: Vec<String>,
    pub(super) max_jobs: Option<u64>,
    pub(super) job_timeout_ms: Option<u64>,
    pub(super) job_output_kib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChildLimitsFile {
    pub(super) processes: Option<u64>,
    pub(super) cpu_seconds: Option<u64>,
    pub(super) address_space_mib: Option<u64>,
    pub(super) open_files: Option<u64>,
}
