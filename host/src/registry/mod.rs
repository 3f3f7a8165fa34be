//! The tool registry: which tools exist, under which names, with which schemas, and the gate
//! every call passes before it reaches the worker.
//!
//! Built once from the plain [`PluginInfo`]s the runtime produced. It owns naming
//! (`<plugin>__<tool>`), schema admission, argument validation, output-schema checks and the
//! built-in `health` tool. It knows nothing of MCP or HTTP; it forwards calls to the
//! [`WorkerHandle`] and never touches wasmtime.

mod health;
mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::ids::{PluginName, ToolName};
use crate::runtime::{Annotations, CallFailure, PluginInfo};
use crate::worker::{WorkerError, WorkerHandle};

pub use crate::runtime::{CallContext, CallEvent, Content, LogLevel};
pub use health::{HealthReport, PluginHealth};
use schema::CheckedSchema;

/// Largest serialized arguments a call may pass to a plugin. They are copied into guest
/// memory, so this bounds what one call can make a plugin allocate before it even starts.
pub const MAX_ARGUMENT_BYTES: usize = 1 << 20;

/// The name of the built-in health tool.
pub const HEALTH_TOOL: &str = "health";

/// A tool as clients see it.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: ToolName,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Arc<Map<String, Value>>,
    pub output_schema: Option<Arc<Map<String, Value>>>,
    pub annotations: Annotations,
}

/// Where a plugin tool is served from, and how its calls and results are checked.
#[derive(Debug, Clone)]
struct Route {
    plugin: PluginName,
    tool: String,
    input: CheckedSchema,
    output: Option<CheckedSchema>,
}

/// A plugin or tool that was not admitted, and why. Reported at start-up; the rest serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {reason}")]
pub struct Refusal {
    pub subject: String,
    pub reason: String,
}

/// A successful call, ready to be rendered for a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub content: Vec<Content>,
    pub structured: Option<Value>,
}

/// Why a call produced no result. The MCP layer decides how each is shown.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    #[error("invalid arguments for {tool}: {}", problems.join("; "))]
    InvalidArguments { tool: String, problems: Vec<String> },
    #[error("{0}")]
    Worker(#[from] WorkerError),
    #[error("{0}")]
    Failed(#[from] CallFailure),
}

/// All tools, in name order (a `BTreeMap`, so listings are deterministic).
#[derive(Debug)]
pub struct Registry {
    specs: BTreeMap<ToolName, ToolSpec>,
    routes: BTreeMap<ToolName, Route>,
    plugins: Vec<PluginHealth>,
    worker: WorkerHandle,
}

impl Registry {
    /// Admit the tools of `plugins`, refusing (and returning) what cannot be served.
    /// A plugin whose name is invalid or already taken is refused whole; a bad tool alone.
    pub fn build(plugins: &[PluginInfo], worker: WorkerHandle) -> (Self, Vec<Refusal>) {
        let mut registry = Self { specs: BTreeMap::new(), routes: BTreeMap::new(), plugins: Vec::new(), worker };
        let mut refusals = Vec::new();
        registry.add_builtin();
        for info in plugins {
            registry.admit_plugin(info, &mut refusals);
        }
        (registry, refusals)
    }

    fn add_builtin(&mut self) {
        let name = ToolName::builtin(HEALTH_TOOL).unwrap_or_else(|e| unreachable!("constant name is valid: {e}"));
        self.specs.insert(name.clone(), health::spec(name));
    }

    fn admit_plugin(&mut self, info: &PluginInfo, refusals: &mut Vec<Refusal>) {
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
            match admit_tool(&plugin, tool) {
                Ok((spec, route)) if !self.specs.contains_key(&spec.name) => {
                    self.routes.insert(spec.name.clone(), route);
                    self.specs.insert(spec.name.clone(), spec);
                    admitted += 1;
                }
                Ok(_) => refusals.push(Refusal { subject, reason: "the plugin declares this tool twice".into() }),
                Err(reason) => refusals.push(Refusal { subject, reason }),
            }
        }
        self.plugins.push(PluginHealth { name: info.name.clone(), version: info.version.clone(), tools: admitted });
    }

    /// Every tool, sorted by name.
    pub fn tools(&self) -> impl Iterator<Item = &ToolSpec> {
        self.specs.values()
    }

    /// What `health` and `/healthz` report.
    pub fn health(&self) -> HealthReport {
        HealthReport::new(&self.plugins, self.specs.len(), &self.worker)
    }

    /// Validate `args` against the tool's schema and, only if they are valid, run the call.
    pub async fn call(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
        ctx: CallContext,
    ) -> Result<Completed, CallError> {
        if name == HEALTH_TOOL {
            return Ok(self.health().into_completed());
        }
        let Some(route) = self.routes.get(name) else {
            return Err(CallError::UnknownTool(name.to_owned()));
        };
        let args = Value::Object(drop_optional_nulls(args.unwrap_or_default(), &route.input));
        let args_json = args.to_string();
        if args_json.len() > MAX_ARGUMENT_BYTES {
            let problem = format!("the arguments are {} bytes; the limit is {MAX_ARGUMENT_BYTES}", args_json.len());
            return Err(CallError::InvalidArguments { tool: name.to_owned(), problems: vec![problem] });
        }
        let problems = route.input.violations(&args);
        if !problems.is_empty() {
            return Err(CallError::InvalidArguments { tool: name.to_owned(), problems });
        }
        let output = self.worker.call(route.plugin.as_str(), &route.tool, args_json, ctx).await??;
        let structured = match (&route.output, output.structured) {
            (None, None) => None,
            (None, Some(text)) => serde_json::from_str(&text).ok(),
            (Some(schema), structured) => Some(check_structured(schema, structured.as_deref())?),
        };
        Ok(Completed { content: output.content, structured })
    }
}

/// Strict-mode clients (Letta) send optional arguments as explicit `null`; treat those as
/// absent so plugins need not declare every optional property nullable.
fn drop_optional_nulls(mut args: Map<String, Value>, schema: &CheckedSchema) -> Map<String, Value> {
    let required: Vec<&str> = schema.required().collect();
    args.retain(|key, value| !value.is_null() || required.contains(&key.as_str()));
    args
}

fn check_structured(schema: &CheckedSchema, structured: Option<&str>) -> Result<Value, CallFailure> {
    let text = structured.ok_or_else(|| {
        CallFailure::InvalidResult("the tool declares an output schema but returned no structured content".into())
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| CallFailure::InvalidResult(format!("structured content is not valid JSON: {e}")))?;
    let problems = schema.violations(&value);
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(CallFailure::InvalidResult(format!(
            "structured content violates the output schema: {}",
            problems.join("; ")
        )))
    }
}

fn admit_tool(plugin: &PluginName, tool: &crate::runtime::ToolInfo) -> Result<(ToolSpec, Route), String> {
    let name = ToolName::qualified(plugin, &tool.name).map_err(|e| e.to_string())?;
    if tool.description.trim().is_empty() {
        return Err("the tool has no description; models choose tools by it".into());
    }
    let input = CheckedSchema::admit(&tool.input_schema).map_err(|e| format!("input schema: {e}"))?;
    let output = tool
        .output_schema
        .as_deref()
        .map(CheckedSchema::admit)
        .transpose()
        .map_err(|e| format!("output schema: {e}"))?;
    let spec = ToolSpec {
        name,
        title: tool.title.clone(),
        description: tool.description.clone(),
        input_schema: Arc::clone(&input.json),
        output_schema: output.as_ref().map(|o| Arc::clone(&o.json)),
        annotations: tool.annotations,
    };
    Ok((spec, Route { plugin: plugin.clone(), tool: tool.name.clone(), input, output }))
}
