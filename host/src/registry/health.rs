//! The built-in `health` tool and the report behind it (also served as `GET /healthz`).

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::{Completed, ToolSpec};
use crate::ids::ToolName;
use crate::model::{Annotations, Content};
use crate::worker::WorkerHandle;

/// One loaded plugin, as health reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginHealth {
    pub name: String,
    pub version: String,
    /// The file it was loaded from (its name is the plugin's), and the SHA-256 of its bytes.
    pub file: String,
    pub sha256: String,
    /// Tools admitted from this plugin.
    pub tools: usize,
}

/// The server's state at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    pub server: &'static str,
    pub version: &'static str,
    pub plugins: Vec<PluginHealth>,
    pub tool_count: usize,
    pub queue_depth: usize,
    pub worker_busy: bool,
    /// Plugin files that failed to load or reload (a failed reload keeps the old version).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Tools held back until an operator approves their changed definition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<String>,
}

impl HealthReport {
    pub(super) fn new(plugins: &[PluginHealth], tool_count: usize, worker: &WorkerHandle) -> Self {
        Self {
            status: "ok",
            server: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            plugins: plugins.to_vec(),
            tool_count,
            queue_depth: worker.queue_depth(),
            worker_busy: worker.is_running(),
            problems: Vec::new(),
            held_back: Vec::new(),
        }
    }

    pub(super) fn with_reload_state(self, problems: Vec<String>, held_back: Vec<String>) -> Self {
        Self { problems, held_back, ..self }
    }

    /// The view for `GET /healthz`, which answers anyone who reaches the port (no token, no
    /// Host check, for probes): problem texts can quote file paths and policy lines, so only
    /// their number is shown. The full report is the authenticated `health` tool and the log.
    pub fn public(mut self) -> Self {
        let count = self.problems.len();
        self.problems = match count {
            0 => Vec::new(),
            n => vec![format!("{n} problem(s); details in the `health` tool and the server log")],
        };
        self
    }

    pub(super) fn into_completed(self) -> Completed {
        let structured = serde_json::to_value(&self).unwrap_or_default();
        Completed { content: vec![Content::Text(structured.to_string())], structured: None }
    }
}

pub(super) fn spec(name: ToolName) -> ToolSpec {
    let schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
    let serde_json::Value::Object(schema) = schema else { unreachable!("literal object") };
    ToolSpec {
        name,
        title: Some("Server health".into()),
        description: "Report sanctum's status: loaded plugins and their versions, the number of tools, \
                      and how many calls are waiting for the worker."
            .into(),
        input_schema: Arc::new(schema),
        output_schema: None,
        annotations: Annotations {
            read_only: Some(true),
            destructive: Some(false),
            idempotent: Some(true),
            open_world: Some(false),
        },
    }
}
