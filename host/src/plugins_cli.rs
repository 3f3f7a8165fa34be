//! `sanctum plugins …`: the operator's view of the plugins directory, without serving it.
//!
//! - `list`: each plugin's version, its tools with their pin status (approved, changed, new)
//!   and what it needs against what the policy grants;
//! - `inspect FILE.wasm`: whether a file is a sanctum plugin, and everything it declares;
//! - `approve PLUGIN[__TOOL]…`: pin the current definitions, releasing held-back tools (a
//!   running server picks the pin file change up through its watcher).
//!
//! Each command returns its report as text; `main` prints it. Start-up-level code, like `app`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::audit::Audit;
use crate::config::StoreArgs;
use crate::model::{Limits, Requirement};
use crate::pins::{PinStatus, Pins, definition_hash};
use crate::policy::{GrantReview, Policy};
use crate::registry::served_name;
use crate::reload::PluginSet;
use crate::runtime::{Plugin, Runtime};

#[derive(Debug, Clone, Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    pub command: PluginsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PluginsCommand {
    /// List the plugins in the directory: version, tools with pin status, needs versus grants.
    List(DirArgs),
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
        dir: DirArgs,
    },
}

/// Where the plugins, the policy and the pins are (the same flags, config file and defaults as
/// `serve`, so `approve` writes the pin file the server reads).
#[derive(Debug, Clone, Args)]
pub struct DirArgs {
    /// The TOML configuration file `serve` uses: its `plugins.dir` and `plugins.policy` apply
    /// where no flag or variable sets them.
    #[arg(long, env = "SANCTUM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of `.wasm` plugins. Default: `plugins`.
    #[arg(long, env = "SANCTUM_PLUGINS_DIR")]
    pub plugins: Option<PathBuf>,
    /// The operator's policy (for grants, and for the default pin file next to it).
    #[arg(long, env = "SANCTUM_POLICY")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Run one `plugins` subcommand and return what to print.
pub async fn run(args: &PluginsArgs) -> anyhow::Result<String> {
    match &args.command {
        PluginsCommand::List(dir) => list(dir).await,
        PluginsCommand::Inspect { file } => inspect(file).await,
        PluginsCommand::Approve { targets, dir } => approve(targets, dir).await,
    }
}

/// The directory's plugins as `serve` would load them, and the pins.
struct Loaded {
    plugins: Vec<Arc<Plugin>>,
    errors: Vec<String>,
    pins: Pins,
}

/// The plugins directory and the policy as `serve` resolves them: flag or variable, else the
/// config file (relative to its own directory, as in [`crate::settings::apply`]), else the
/// default.
fn resolve(dir: &DirArgs) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let (mut plugins, mut policy) = (dir.plugins.clone(), dir.policy.clone());
    if let Some(path) = &dir.config {
        let file = crate::settings::load(path)?;
        let base = path.parent().unwrap_or_else(|| std::path::Path::new("."));
        plugins = plugins.or_else(|| file.plugins.dir.map(|v| base.join(v)));
        policy = policy.or_else(|| file.plugins.policy.map(|v| base.join(v)));
    }
    Ok((plugins.unwrap_or_else(|| PathBuf::from("plugins")), policy))
}

async fn load(dir: &DirArgs) -> anyhow::Result<Loaded> {
    let (plugins_dir, policy_path) = resolve(dir)?;
    let limits = Limits::default();
    let policy = match &policy_path {
        Some(path) => Policy::load(path, limits.clone())?,
        None => Policy::deny_all(limits.clone()),
    };
    let mut runtime = Runtime::new(limits.clone(), Audit::disabled()).context("starting the wasm runtime")?;
    if let Some(cache) = dir.store.cache_dir()
        && let Err(e) = runtime.enable_compile_cache(&cache)
    {
        tracing::warn!(error = %e, "compile cache off");
    }
    let mut set = PluginSet::new(plugins_dir, policy_path.clone(), policy, limits);
    let errors: Vec<String> = set.scan(&runtime, false).await.iter().map(ToString::to_string).collect();
    let plugins = set.plugins();
    let pins = match dir.store.pins_path(policy_path.as_deref()) {
        Some(path) => Pins::load(&path)?,
        None => Pins::disabled(),
    };
    Ok(Loaded { plugins, errors, pins })
}

async fn list(dir: &DirArgs) -> anyhow::Result<String> {
    let loaded = load(dir).await?;
    let mut out = String::new();
    match loaded.pins.path() {
        Some(path) => writeln!(out, "pins: {}", path.display())?,
        None => writeln!(out, "pins: off")?,
    }
    for plugin in &loaded.plugins {
        let info = plugin.info();
        writeln!(out, "plugin {} {} ({})", info.name, info.version, plugin.path().display())?;
        writeln!(out, "  sha256: {}", plugin.digest())?;
        for tool in &info.tools {
            let name = served_name(plugin, &tool.name);
            let status = loaded.pins.status(&name, &definition_hash(&name, tool));
            writeln!(out, "  tool {name}: {status}")?;
        }
        let review = GrantReview::new(info, plugin.grants());
        let summary = |entries: &[String]| if entries.is_empty() { "-".to_owned() } else { entries.join(", ") };
        writeln!(
            out,
            "  grants: granted {}; missing {}; unused {}",
            summary(&review.granted),
            summary(&review.missing),
            summary(&review.unused)
        )?;
    }
    for error in &loaded.errors {
        writeln!(out, "error: {error}")?;
    }
    Ok(out)
}

async fn approve(targets: &[String], dir: &DirArgs) -> anyhow::Result<String> {
    let mut loaded = load(dir).await?;
    if !loaded.pins.is_enabled() {
        anyhow::bail!("pinning is off (--pins off); there is nothing to approve");
    }
    let mut out = String::new();
    for target in targets {
        let mut matched = false;
        for plugin in &loaded.plugins {
            let info = plugin.info();
            for tool in &info.tools {
                let name = served_name(plugin, &tool.name);
                if *target != info.name && *target != name {
                    continue;
                }
                matched = true;
                let hash = definition_hash(&name, tool);
                let before = loaded.pins.status(&name, &hash);
                loaded.pins.approve(&name, &hash);
                match before {
                    PinStatus::Approved => writeln!(out, "{name}: already approved")?,
                    PinStatus::New | PinStatus::Changed => writeln!(out, "{name}: approved ({before} definition)")?,
                }
            }
        }
        if !matched {
            anyhow::bail!("no loaded plugin or tool is named {target:?} (see `sanctum plugins list`)");
        }
    }
    loaded.pins.save_if_changed()?;
    if let Some(path) = loaded.pins.path() {
        writeln!(out, "pins written to {}", path.display())?;
    }
    Ok(out)
}

async fn inspect(file: &std::path::Path) -> anyhow::Result<String> {
    let runtime = Runtime::new(Limits::default(), Audit::disabled()).context("starting the wasm runtime")?;
    let plugin = runtime.load(file).await?;
    let info = plugin.info();
    let mut out = String::new();
    writeln!(out, "file: {}", file.display())?;
    writeln!(out, "sha256: {}", plugin.digest())?;
    writeln!(out, "world: sanctum:plugin/plugin@{} (ok)", crate::model::WORLD_VERSION)?;
    writeln!(out, "plugin: {} {}", info.name, info.version)?;
    // Served only from a file named after the plugin; say so before an operator installs it.
    match crate::ids::PluginName::of_file(file) {
        Ok(id) if id.as_str() == info.name => {}
        _ => writeln!(
            out,
            "warning: a plugin is named by its file; install this one as {}.wasm, or it is refused",
            info.name
        )?,
    }
    writeln!(out, "description: {}", info.description)?;
    if info.requirements.is_empty() {
        writeln!(out, "needs: nothing")?;
    } else {
        writeln!(out, "needs:")?;
        for requirement in &info.requirements {
            let (kind, value) = match requirement {
                Requirement::Command(v) => ("command", v),
                Requirement::HttpHost(v) => ("http", v),
                Requirement::Directory(v) => ("directory", v),
                Requirement::Env(v) => ("env", v),
                Requirement::Secret(v) => ("secret", v),
                Requirement::Config(v) => ("config", v),
            };
            writeln!(out, "  {kind} {value}")?;
        }
    }
    for tool in &info.tools {
        let name = served_name(&plugin, &tool.name);
        writeln!(out, "tool {name}")?;
        if let Some(title) = &tool.title {
            writeln!(out, "  title: {title}")?;
        }
        writeln!(out, "  description: {}", tool.description)?;
        let a = tool.annotations;
        writeln!(
            out,
            "  annotations: read_only={:?} destructive={:?} idempotent={:?} open_world={:?}",
            a.read_only, a.destructive, a.idempotent, a.open_world
        )?;
        writeln!(out, "  input schema: {}", pretty(&tool.input_schema))?;
        if let Some(schema) = &tool.output_schema {
            writeln!(out, "  output schema: {}", pretty(schema))?;
        }
        writeln!(out, "  definition sha256: {}", definition_hash(&name, tool))?;
    }
    Ok(out)
}

/// A schema indented under its tool; left as it came if it is not JSON.
fn pretty(schema: &str) -> String {
    serde_json::from_str::<serde_json::Value>(schema)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .map_or_else(|_| schema.to_owned(), |text| text.replace('\n', "\n    "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_sets_what_no_flag_did_relative_to_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("sanctum.toml");
        std::fs::write(&config, "[plugins]\ndir = \"wasm\"\npolicy = \"policy.toml\"\n").expect("write");
        let args = |plugins: Option<&str>| DirArgs {
            config: Some(config.clone()),
            plugins: plugins.map(PathBuf::from),
            policy: None,
            store: crate::config::StoreArgs::off(),
        };
        let (plugins, policy) = resolve(&args(None)).expect("resolves");
        assert_eq!(plugins, dir.path().join("wasm"));
        assert_eq!(policy, Some(dir.path().join("policy.toml")), "so the default pin file is the server's");
        let (plugins, _) = resolve(&args(Some("elsewhere"))).expect("resolves");
        assert_eq!(plugins, PathBuf::from("elsewhere"), "a flag wins over the file");
        let none = DirArgs { config: None, plugins: None, policy: None, store: crate::config::StoreArgs::off() };
        assert_eq!(resolve(&none).expect("resolves"), (PathBuf::from("plugins"), None));
    }
}
