//! The configuration file (`--config FILE` / `SANCTUM_CONFIG`): one TOML file whose values sit
//! between the defaults and the environment. Precedence: flags > `SANCTUM_*` > file > defaults.
//!
//! Parsed strictly at start-up (unknown keys are refused, every error names the key), then
//! merged by [`apply`] and [`apply_shared`] (called only from [`super::parse`]) into whatever a
//! flag or variable did not set. Start-up only: nothing here is read at
//! run time.
//!
//! Relative paths in the file (`plugins.dir`, `plugins.policy`, `audit.target`,
//! `approvals.admin_socket`) are relative to the file's own directory, so a deployment's file
//! means the same from any working directory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use serde::Deserialize;

use super::args::{LogFormat, SHUTDOWN_GRACE_MS_RANGE, SandboxArgs, ServeArgs, SourceArgs, parse_admin_listen};
use crate::approvals::{APPROVAL_TIMEOUT_SECS_RANGE, MAX_PENDING_APPROVALS_RANGE};
use crate::model::{CALL_TIMEOUT_MS_RANGE, MEMORY_LIMIT_MIB_RANGE};

/// A configuration file that cannot be used. Every message starts with the file and names the
/// key, so the operator can go straight to the line.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("config file {path}: unknown key \"{key}\"")]
    UnknownKey { path: String, key: String },
    #[error("config file {path}: invalid value for \"{key}\": {message}")]
    Invalid { path: String, key: String, message: String },
}

/// The file as written: every key optional, nothing else accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub plugins: PluginsSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub jobs: JobsSection,
    #[serde(default)]
    pub log: LogSection,
    /// Bearer tokens (`[[auth.token]]`), as in a tokens file; a tokens file given by flag or
    /// variable takes precedence.
    #[serde(default)]
    pub auth: Option<crate::transport::AuthSettings>,
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// The admin plane's own bearer tokens (`[[admin.token]]`), for `approvals.admin_listen`;
    /// none may equal an MCP token.
    #[serde(default)]
    pub admin: Option<crate::transport::AuthSettings>,
}

/// `[approvals]`: calls held for an operator, and where operators decide them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    pub timeout_secs: Option<u64>,
    pub max_pending: Option<u64>,
    /// `http(s)://…` to POST a summary of each held call to.
    pub notify_url: Option<String>,
    /// A path (relative to this file) or `off`.
    pub admin_socket: Option<String>,
    /// `HOST:PORT` or `PORT` (loopback).
    pub admin_listen: Option<String>,
    /// CIDR ranges (`10.0.0.0/8`) the webhook may reach besides public addresses.
    pub notify_allowed_ranges: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub host: Option<IpAddr>,
    pub port: Option<u16>,
    pub allowed_hosts: Option<Vec<String>>,
    pub queue_capacity: Option<u16>,
    pub shutdown_grace_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsSection {
    pub dir: Option<PathBuf>,
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub call_timeout_ms: Option<u64>,
    pub memory_limit_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSection {
    pub dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    pub target: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub format: Option<LogFormat>,
    pub level: Option<String>,
}

/// Read and validate the file at `path`.
pub fn load(path: &Path) -> Result<FileConfig, SettingsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SettingsError::Read { path: path.display().to_string(), source })?;
    parse(&text, &path.display().to_string())
}

/// Parse and validate `text`; `path` only names the file in errors.
pub fn parse(text: &str, path: &str) -> Result<FileConfig, SettingsError> {
    let value: toml::Table = toml::from_str(text)
        .map_err(|e| SettingsError::Syntax { path: path.to_owned(), message: crate::toml_error::describe(text, &e) })?;
    let config: FileConfig = serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().message().to_owned();
        // serde's own wording for `deny_unknown_fields`; the path already ends with the key.
        if message.starts_with("unknown field") {
            SettingsError::UnknownKey { path: path.to_owned(), key }
        } else {
            SettingsError::Invalid { path: path.to_owned(), key, message }
        }
    })?;
    config.validate(path)?;
    Ok(config)
}

/// Bounds shared with the flags: a file may not set what a flag could not.
const RANGES: [(&str, u64, u64); 6] = [
    ("server.queue_capacity", 1, u16::MAX as u64),
    ("server.shutdown_grace_ms", *SHUTDOWN_GRACE_MS_RANGE.start(), *SHUTDOWN_GRACE_MS_RANGE.end()),
    ("limits.call_timeout_ms", *CALL_TIMEOUT_MS_RANGE.start(), *CALL_TIMEOUT_MS_RANGE.end()),
    ("limits.memory_limit_mib", *MEMORY_LIMIT_MIB_RANGE.start(), *MEMORY_LIMIT_MIB_RANGE.end()),
    ("approvals.timeout_secs", *APPROVAL_TIMEOUT_SECS_RANGE.start(), *APPROVAL_TIMEOUT_SECS_RANGE.end()),
    ("approvals.max_pending", *MAX_PENDING_APPROVALS_RANGE.start(), *MAX_PENDING_APPROVALS_RANGE.end()),
];

impl FileConfig {
    fn validate(&self, path: &str) -> Result<(), SettingsError> {
        let values = [
            self.server.queue_capacity.map(u64::from),
            self.server.shutdown_grace_ms,
            self.limits.call_timeout_ms,
            self.limits.memory_limit_mib,
            self.approvals.timeout_secs,
            self.approvals.max_pending,
        ];
        for ((key, min, max), value) in RANGES.into_iter().zip(values) {
            if let Some(value) = value.filter(|v| !(min..=max).contains(v)) {
                return Err(SettingsError::Invalid {
                    path: path.to_owned(),
                    key: key.into(),
                    message: format!("{value} is not between {min} and {max}"),
                });
            }
        }
        let invalid =
            |key: &str, message: String| SettingsError::Invalid { path: path.to_owned(), key: key.into(), message };
        if let Some(listen) = &self.approvals.admin_listen {
            parse_admin_listen(listen).map_err(|message| invalid("approvals.admin_listen", message))?;
        }
        for range in self.approvals.notify_allowed_ranges.iter().flatten() {
            range
                .parse::<ipnet::IpNet>()
                .map_err(|e| invalid("approvals.notify_allowed_ranges", format!("{range:?}: {e}")))?;
        }
        if let Some(url) = &self.approvals.notify_url {
            check_notify_url(url).map_err(|message| invalid("approvals.notify_url", message.into()))?;
        }
        if let Some(level) = &self.log.level
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(level)
        {
            return Err(SettingsError::Invalid {
                path: path.to_owned(),
                key: "log.level".into(),
                message: e.to_string(),
            });
        }
        Ok(())
    }
}

/// A webhook address: an absolute `http` or `https` URL without credentials in it.
fn check_notify_url(url: &str) -> Result<(), &'static str> {
    let uri: http::Uri = url.parse().map_err(|_| "not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("use an http:// or https:// URL");
    }
    match uri.authority() {
        None => Err("the URL names no host"),
        Some(authority) if authority.as_str().contains('@') => Err("credentials in the URL are refused"),
        Some(_) => Ok(()),
    }
}

/// Which values the command line (flag or variable) set: those the file must not touch.
struct Given<'a>(&'a clap::ArgMatches);

impl Given<'_> {
    fn unset(&self, id: &str) -> bool {
        !matches!(self.0.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
    }
}

/// The file `source.config` names, if any, with the directory its relative paths start from.
fn read(source: &SourceArgs) -> Result<Option<(FileConfig, PathBuf)>, SettingsError> {
    let Some(path) = &source.config else { return Ok(None) };
    let file = load(path)?;
    Ok(Some((file, path.parent().unwrap_or_else(|| Path::new(".")).to_owned())))
}

/// `serve` and `check`: fill in from the config file every value that no flag or variable set.
/// `matches` are the subcommand's parsed arguments, which say where each value came from.
pub(super) fn apply(args: &mut ServeArgs, matches: &clap::ArgMatches) -> Result<(), SettingsError> {
    let Some((file, base)) = read(&args.source)? else { return Ok(()) };
    let given = Given(matches);
    merge_shared(&file, &base, &given, &mut args.source, &mut args.sandbox);
    let server = file.server;
    if let Some(v) = server.host.filter(|_| given.unset("host")) {
        args.host = v;
    }
    if let Some(v) = server.port.filter(|_| given.unset("port")) {
        args.port = v;
    }
    if let Some(v) = server.allowed_hosts.filter(|_| given.unset("allowed_hosts")) {
        args.allowed_hosts = v;
    }
    if let Some(v) = server.queue_capacity.filter(|_| given.unset("queue_capacity")) {
        args.queue_capacity = v;
    }
    if let Some(v) = server.shutdown_grace_ms.filter(|_| given.unset("shutdown_grace_ms")) {
        args.shutdown_grace_ms = v;
    }
    if let Some(v) = file.audit.target.filter(|_| given.unset("audit")) {
        args.audit = if matches!(v.as_str(), "-" | "off") { v } else { base.join(v).display().to_string() };
    }
    if let Some(v) = file.jobs.dir.filter(|_| given.unset("jobs_dir")) {
        args.jobs_dir = Some(if v == "off" { v } else { base.join(v).display().to_string() });
    }
    if let Some(v) = file.log.format.filter(|_| given.unset("log_format")) {
        args.log_format = v;
    }
    if let Some(v) = file.log.level.filter(|_| given.unset("log_level")) {
        args.log_level = v;
    }
    // A tokens file (flag or variable) replaces the file's `[auth]` whole; `SANCTUM_AUTH_TOKEN`
    // adds to whichever is used.
    if let Some(auth) = file.auth.filter(|_| given.unset("auth_tokens_file")) {
        args.front_door.config_auth = Some(auth);
    }
    let approvals = file.approvals;
    if let Some(v) = approvals.timeout_secs.filter(|_| given.unset("approval_timeout_secs")) {
        args.approvals.approval_timeout_secs = v;
    }
    if let Some(v) = approvals.max_pending.filter(|_| given.unset("max_pending_approvals")) {
        args.approvals.max_pending_approvals = v;
    }
    if let Some(v) = approvals.admin_socket.filter(|_| given.unset("admin_socket")) {
        args.approvals.admin_socket = Some(relative_socket(&base, v));
    }
    // Validated above, so the parse cannot fail here.
    if let Some(v) = approvals.admin_listen.filter(|_| given.unset("admin_listen")) {
        args.approvals.admin_listen = parse_admin_listen(&v).ok();
    }
    args.approvals.notify_url = approvals.notify_url;
    // Validated above: every range parses.
    args.approvals.notify_allowed_ranges =
        approvals.notify_allowed_ranges.iter().flatten().filter_map(|r| r.parse().ok()).collect();
    args.approvals.admin_tokens = file.admin;
    Ok(())
}

/// The file's `approvals.admin_socket`, relative to the file (`off` stays `off`).
fn relative_socket(base: &Path, value: String) -> String {
    if value == "off" { value } else { base.join(value).display().to_string() }
}

/// `sanctum approvals`: the file's admin socket, when no flag or variable named one.
pub(super) fn admin_socket(config: &Path) -> Result<Option<String>, SettingsError> {
    let file = load(config)?;
    let base = config.parent().unwrap_or_else(|| Path::new("."));
    Ok(file.approvals.admin_socket.map(|v| relative_socket(base, v)))
}

/// `plugins list|approve`: the same file, for what they share with `serve`.
pub(super) fn apply_shared(
    source: &mut SourceArgs,
    sandbox: &mut SandboxArgs,
    matches: &clap::ArgMatches,
) -> Result<(), SettingsError> {
    let Some((file, base)) = read(source)? else { return Ok(()) };
    merge_shared(&file, &base, &Given(matches), source, sandbox);
    Ok(())
}

fn merge_shared(file: &FileConfig, base: &Path, given: &Given<'_>, source: &mut SourceArgs, sandbox: &mut SandboxArgs) {
    if let Some(v) = file.plugins.dir.as_ref().filter(|_| given.unset("plugins")) {
        source.plugins = base.join(v);
    }
    if let Some(v) = file.plugins.policy.as_ref().filter(|_| given.unset("policy")) {
        source.policy = Some(base.join(v));
    }
    if let Some(v) = file.limits.call_timeout_ms.filter(|_| given.unset("call_timeout_ms")) {
        sandbox.call_timeout_ms = v;
    }
    if let Some(v) = file.limits.memory_limit_mib.filter(|_| given.unset("memory_limit_mib")) {
        sandbox.memory_limit_mib = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_sets_every_section() {
        let text = include_str!("../../../docs/sanctum.example.toml");
        let config = parse(text, "sanctum.example.toml").expect("the example is valid");
        assert_eq!(config.server.port, Some(8000));
        assert!(config.server.shutdown_grace_ms.is_some());
        assert!(config.plugins.dir.is_some());
        assert!(config.limits.call_timeout_ms.is_some());
        assert!(config.audit.target.is_some());
        assert_eq!(config.log.format, Some(LogFormat::Human));
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        let config = parse("", "empty.toml").expect("empty is valid");
        assert!(config.server.port.is_none() && config.log.level.is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&str, &str); 11] = [
            (
                "[[auth.token]]\nprincipal = \"a\"\nvalu = \"x\"\n",
                r#"config file s.toml: unknown key "auth.token[0].valu""#,
            ),
            ("[server]\nprot = 1\n", r#"config file s.toml: unknown key "server.prot""#),
            ("[serve]\nport = 1\n", r#"config file s.toml: unknown key "serve""#),
            ("[server]\nport = \"x\"\n", r#"config file s.toml: invalid value for "server.port""#),
            ("[server]\nport = 70000\n", r#"config file s.toml: invalid value for "server.port""#),
            ("[limits]\ncall_timeout_ms = 0\n", r#"config file s.toml: invalid value for "limits.call_timeout_ms""#),
            ("[log]\nformat = \"xml\"\n", r#"config file s.toml: invalid value for "log.format""#),
            ("[approvals]\ntimeout_secs = 0\n", r#"config file s.toml: invalid value for "approvals.timeout_secs""#),
            (
                "[approvals]\nadmin_listen = \"x\"\n",
                r#"config file s.toml: invalid value for "approvals.admin_listen""#,
            ),
            (
                "[approvals]\nnotify_url = \"ftp://h/\"\n",
                r#"config file s.toml: invalid value for "approvals.notify_url""#,
            ),
            (
                "[[admin.token]]\nprincipal = \"a\"\nvalu = \"x\"\n",
                r#"config file s.toml: unknown key "admin.token[0].valu""#,
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text, "s.toml").expect_err(text).to_string();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
        assert!(matches!(parse("[server", "s.toml"), Err(SettingsError::Syntax { .. })));
    }
}
