//! One immutable generation of the tool table: what is listed, where each call goes, which
//! tools are held back because their definition changed since it was approved, and which bare
//! tool names clash.
//!
//! A hot reload builds a whole new [`Table`] and the registry swaps it in at once; calls already
//! routed keep the `Arc` of the plugin version they started with.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{HEALTH_TOOL, PluginHealth, Refusal, Route, ToolSpec, admit_tool, health};
use crate::access::{AccessPolicy, Bound};
use crate::ids::{PluginName, ToolName};
use crate::pins::{PinStatus, Pins, definition_hash};
use crate::runtime::Plugin;

/// A tool withheld from clients until an operator approves its new definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldTool {
    pub tool: String,
    pub plugin: String,
}

#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) specs: BTreeMap<ToolName, ToolSpec>,
    pub(super) routes: BTreeMap<ToolName, Route>,
    pub(super) held: BTreeMap<String, HeldTool>,
    pub(super) plugins: Vec<PluginHealth>,
    /// The plugins this table serves, to rebuild it when only the pins change.
    pub(super) sources: Vec<Arc<Plugin>>,
    /// Served name → definition hash of every listed plugin tool: two tables list the same
    /// tools exactly when these are equal (what decides whether clients hear `list_changed`).
    pub(super) listing: BTreeMap<String, String>,
    /// What this table refused, kept so `health` reports it for as long as it is true.
    pub(super) refusals: Vec<Refusal>,
    /// The access rules bound to this table's tool names: swapped in with the tools, so no
    /// call ever sees new tools under old rules.
    pub(super) access: Bound,
}

/// Bare tool name → the plugins that would serve a tool under it.
type BareClaims = BTreeMap<String, Vec<String>>;

impl Table {
    /// Admit the tools of `plugins`, refusing (and returning) what cannot be served, and
    /// holding back tools whose definition differs from its pin. Tools seen for the first time
    /// are pinned in `pins` (the caller saves them).
    pub(super) fn build(
        plugins: Vec<Arc<Plugin>>,
        pins: &mut Pins,
        access: &Arc<AccessPolicy>,
    ) -> (Self, Vec<Refusal>) {
        let mut table = Self {
            specs: BTreeMap::new(),
            routes: BTreeMap::new(),
            held: BTreeMap::new(),
            plugins: Vec::new(),
            sources: Vec::new(),
            listing: BTreeMap::new(),
            refusals: Vec::new(),
            access: Bound::new(Arc::clone(access), []),
        };
        let mut refusals = Vec::new();
        let name = ToolName::builtin(HEALTH_TOOL).unwrap_or_else(|e| unreachable!("constant name is valid: {e}"));
        table.specs.insert(name.clone(), health::spec(name));
        let files = name_claims(&plugins);
        let claims = bare_claims(&plugins, &files);
        for plugin in &plugins {
            table.admit_plugin(plugin, &files, &claims, pins, &mut refusals);
        }
        table.sources = plugins;
        table.refusals.clone_from(&refusals);
        table.access = Bound::new(Arc::clone(access), table.specs.keys().map(ToolName::as_str));
        (table, refusals)
    }

    fn admit_plugin(
        &mut self,
        source: &Arc<Plugin>,
        files: &NameClaims,
        claims: &BareClaims,
        pins: &mut Pins,
        refusals: &mut Vec<Refusal>,
    ) {
        let info = source.info();
        let plugin = match PluginName::parse(&info.name) {
            Ok(name) => name,
            Err(e) => {
                refusals.push(Refusal { subject: format!("plugin {:?}", info.name), reason: e.to_string() });
                return;
            }
        };
        // The plugin set names each plugin by its file, so this takes two directories' worth of
        // plugins; refused for every claimant all the same, so the order of files never decides.
        if let Some(claimants) = files.get(info.name.as_str()).filter(|c| c.len() > 1) {
            refusals.push(Refusal {
                subject: format!("plugin {plugin} ({})", source.path().display()),
                reason: format!(
                    "the name is claimed by {}; none of them is served until only one does",
                    claimants.join(" and ")
                ),
            });
            return;
        }
        let mut admitted = 0;
        for tool in &info.tools {
            let subject = format!("tool {plugin}/{}", tool.name);
            if source.grants().bare_tool_names
                && let Some(reason) = bare_clash(&tool.name, &info.name, claims)
            {
                tracing::error!(tool = %tool.name, plugin = %plugin, %reason, "bare tool name refused");
                refusals.push(Refusal { subject, reason });
                continue;
            }
            match admit_tool(&plugin, tool, source) {
                Ok((spec, _)) if self.specs.contains_key(&spec.name) => {
                    refusals.push(Refusal { subject, reason: "the plugin declares this tool twice".into() });
                }
                Ok((spec, route)) => {
                    let served = spec.name.as_str().to_owned();
                    let hash = definition_hash(&served, tool);
                    match pins.status(&served, &hash) {
                        PinStatus::Changed => {
                            tracing::warn!(tool = %served, "tool definition changed since it was approved; held back");
                            self.held.insert(served.clone(), HeldTool { tool: served, plugin: info.name.clone() });
                            continue;
                        }
                        PinStatus::New => {
                            pins.approve(&served, &hash);
                            tracing::info!(tool = %served, "new tool pinned");
                        }
                        PinStatus::Approved => {}
                    }
                    self.listing.insert(served, hash);
                    self.routes.insert(spec.name.clone(), route);
                    self.specs.insert(spec.name.clone(), spec);
                    admitted += 1;
                }
                Err(reason) => refusals.push(Refusal { subject, reason }),
            }
        }
        self.plugins.push(PluginHealth {
            name: info.name.clone(),
            version: info.version.clone(),
            file: source.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            sha256: source.digest().hex(),
            tools: admitted,
        });
    }
}

/// Plugin name → the files of the plugins that carry it.
type NameClaims = BTreeMap<String, Vec<String>>;

fn name_claims(plugins: &[Arc<Plugin>]) -> NameClaims {
    let mut claims = NameClaims::new();
    for plugin in plugins {
        claims.entry(plugin.info().name.clone()).or_default().push(plugin.path().display().to_string());
    }
    claims
}

/// Every bare name the plugins that would be admitted claim (a plugin refused whole for its name
/// claims nothing), each with its claimants in load order.
fn bare_claims(plugins: &[Arc<Plugin>], files: &NameClaims) -> BareClaims {
    let mut claims = BareClaims::new();
    for plugin in plugins {
        let info = plugin.info();
        if PluginName::parse(&info.name).is_err() || files.get(&info.name).is_some_and(|f| f.len() > 1) {
            continue;
        }
        if plugin.grants().bare_tool_names {
            for tool in &info.tools {
                let claimants = claims.entry(tool.name.clone()).or_default();
                if !claimants.contains(&info.name) {
                    claimants.push(info.name.clone());
                }
            }
        }
    }
    claims
}

/// Why `tool` of `plugin` may not be served under its bare name, if it may not: it is the
/// built-in tool's name, or another plugin claims it too. A clash refuses every claimant, not
/// the later one: which plugin loads first must not decide which tool a client reaches, and a
/// plugin added later must not take over a name silently.
fn bare_clash(tool: &str, plugin: &str, claims: &BareClaims) -> Option<String> {
    if tool == HEALTH_TOOL {
        return Some(format!("the bare name {tool:?} is the built-in {HEALTH_TOOL} tool's"));
    }
    let others: Vec<&str> =
        claims.get(tool).into_iter().flatten().map(String::as_str).filter(|p| *p != plugin).collect();
    if others.is_empty() {
        return None;
    }
    Some(format!(
        "the bare name {tool:?} is also claimed by plugin {} (bare_tool_names); neither is served until only \
         one plugin claims it",
        others.join(", plugin ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(entries: &[(&str, &[&str])]) -> BareClaims {
        entries
            .iter()
            .map(|(tool, plugins)| ((*tool).to_owned(), plugins.iter().map(|p| (*p).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn a_bare_name_clashes_with_every_other_claimant_and_with_the_builtin() {
        let claims = claims(&[("solo", &["a"]), ("shared", &["a", "b", "c"])]);
        assert_eq!(bare_clash("solo", "a", &claims), None);
        let shared = bare_clash("shared", "b", &claims).expect("clash");
        assert!(shared.contains("plugin a, plugin c") && !shared.contains("plugin b"), "{shared}");
        let builtin = bare_clash(HEALTH_TOOL, "a", &claims).expect("the built-in's name");
        assert!(builtin.contains("built-in"), "{builtin}");
    }
}
