//! One immutable generation of the tool table: what is listed, where each call goes, and which
//! tools are held back because their definition changed since it was approved.
//!
//! A hot reload builds a whole new [`Table`] and the registry swaps it in at once; calls already
//! routed keep the `Arc` of the plugin version they started with.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{HEALTH_TOOL, PluginHealth, Refusal, Route, ToolSpec, admit_tool, health};
use crate::ids::{PluginName, ToolName};
use crate::pins::{PinStatus, Pins, definition_hash};
use crate::runtime::Plugin;

/// A tool withheld from clients until an operator approves its new definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldTool {
    pub tool: String,
    pub plugin: String,
}

#[derive(Debug, Default)]
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
}

impl Table {
    /// Admit the tools of `plugins`, refusing (and returning) what cannot be served, and
    /// holding back tools whose definition differs from its pin. Tools seen for the first time
    /// are pinned in `pins` (the caller saves them).
    pub(super) fn build(plugins: Vec<Arc<Plugin>>, pins: &mut Pins) -> (Self, Vec<Refusal>) {
        let mut table = Self::default();
        let mut refusals = Vec::new();
        let name = ToolName::builtin(HEALTH_TOOL).unwrap_or_else(|e| unreachable!("constant name is valid: {e}"));
        table.specs.insert(name.clone(), health::spec(name));
        for plugin in &plugins {
            table.admit_plugin(plugin, pins, &mut refusals);
        }
        table.sources = plugins;
        (table, refusals)
    }

    fn admit_plugin(&mut self, source: &Arc<Plugin>, pins: &mut Pins, refusals: &mut Vec<Refusal>) {
        let info = source.info();
        let plugin = match PluginName::parse(&info.name) {
            Ok(name) => name,
            Err(e) => {
                refusals.push(Refusal { subject: format!("plugin {:?}", info.name), reason: e.to_string() });
                return;
            }
        };
        if self.plugins.iter().any(|p| p.name == info.name) {
            refusals.push(Refusal {
                subject: format!("plugin {plugin}"),
                reason: "another loaded plugin already has this name".into(),
            });
            return;
        }
        let mut admitted = 0;
        for tool in &info.tools {
            let subject = format!("tool {plugin}/{}", tool.name);
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
        self.plugins.push(PluginHealth { name: info.name.clone(), version: info.version.clone(), tools: admitted });
    }
}
