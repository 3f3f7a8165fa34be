//! `sanctum plugins …`: the operator's view of the plugins directory, without serving it.
//!
//! - `list`: each plugin's version, its tools with their pin status (approved, changed, new)
//!   and what it needs against what the policy grants;
//! - `inspect FILE.wasm`: whether a file is a sanctum plugin, and everything it declares;
//! - `approve PLUGIN[__TOOL]…`: pin the current definitions, releasing held-back tools (a
//!   running server picks the pin file change up through its watcher).
//!
//! Each command returns its report as text; `main` prints it. Plugins are loaded by the one
//! start-up loader, with the server's flags, config file, limits and pins.

use crate::app::startup::{Loaded, Startup};
use crate::config::{PluginsArgs, PluginsCommand, PluginsDirArgs};
use crate::metrics::Metrics;
use crate::model::Requirement;
use crate::pins::{PinStatus, definition_hash};
use crate::policy::GrantReview;
use crate::registry::served_name;
use std::fmt::Write as _;

/// Run one `plugins` subcommand and return what to print.
pub async fn run(args: &PluginsArgs) -> anyhow::Result<String> {
    match &args.command {
        PluginsCommand::List(dir) => list(dir).await,
        PluginsCommand::Inspect { file } => inspect(file).await,
        PluginsCommand::Approve { targets, dir } => approve(targets, dir).await,
    }
}

/// The directory's plugins as `serve` would load them, and the pins.
async fn load(dir: &PluginsDirArgs) -> anyhow::Result<Loaded> {
    Startup::plugins(dir).load(&Metrics::new()).await
}

async fn list(dir: &PluginsDirArgs) -> anyhow::Result<String> {
    let loaded = load(dir).await?;
    let mut out = String::new();
    match loaded.pins.path() {
        Some(path) => writeln!(out, "pins: {}", path.display())?,
        None => writeln!(out, "pins: off")?,
    }
    for plugin in &loaded.set.plugins() {
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
    for error in &loaded.load_errors {
        writeln!(out, "error: {error}")?;
    }
    Ok(out)
}

async fn approve(targets: &[String], dir: &PluginsDirArgs) -> anyhow::Result<String> {
    let mut loaded = load(dir).await?;
    if !loaded.pins.is_enabled() {
        anyhow::bail!("pinning is off (--pins off); there is nothing to approve");
    }
    let plugins = loaded.set.plugins();
    let mut out = String::new();
    for target in targets {
        let mut matched = false;
        for plugin in &plugins {
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
    let runtime = Startup::inspect().start_runtime(&Metrics::new())?;
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
