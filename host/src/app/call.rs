//! `sanctum call`: one tool of one plugin file, loaded by the one loader and called through the
//! same registry gate, worker and sandbox as the server, without serving anything.

use anyhow::Context as _;

use super::startup::Startup;
use crate::config::CallArgs;
use crate::metrics::Metrics;
use crate::model::CallContext;
use crate::registry::Registry;
use crate::worker::WorkerHandle;

/// What `sanctum call` produced: the MCP result as a client would receive it.
#[derive(Debug)]
pub enum LocalCall {
    /// A tool result; `is_error` is its `isError`.
    Result { json: serde_json::Value, is_error: bool },
    /// A JSON-RPC error a client would have received (e.g. unknown tool).
    ProtocolError(String),
}

/// Run one tool of the plugin at `args.plugin` through the same gate and sandbox as the server.
pub async fn call_file(args: &CallArgs) -> anyhow::Result<LocalCall> {
    let arguments: serde_json::Value = serde_json::from_str(&args.args).context("--args is not JSON")?;
    let serde_json::Value::Object(arguments) = arguments else { anyhow::bail!("--args must be a JSON object") };
    let metrics = Metrics::new();
    let mut loaded = Startup::call(args).load(&metrics).await?;
    // One file: admitted as `serve` admits it (named by its file, pinned bytes only), or not at all.
    if let Some(error) = loaded.load_errors.pop() {
        return Err(error.into());
    }
    let plugins = loaded.set.plugins();
    let name = plugins.first().map(|p| p.info().name.clone()).context("no plugin loaded")?;
    let worker = WorkerHandle::spawn(loaded.runtime, 1, metrics.clone()).context("starting the worker")?;
    let (registry, refusals) = Registry::build(plugins, worker, loaded.pins, metrics);
    for refusal in refusals {
        tracing::warn!(%refusal, "refused");
    }
    // A name the registry serves as given (a bare name, `health`) is not prefixed.
    let tool = if args.tool.contains(crate::ids::SEPARATOR) || registry.tools().any(|t| t.name.as_str() == args.tool) {
        args.tool.clone()
    } else {
        format!("{name}__{}", args.tool)
    };
    let outcome = registry.call(&tool, Some(arguments), CallContext::default()).await;
    Ok(match crate::mcp::render_outcome(outcome) {
        Ok(result) => {
            LocalCall::Result { is_error: result.is_error == Some(true), json: serde_json::to_value(&result)? }
        }
        Err(error) => LocalCall::ProtocolError(error.message.to_string()),
    })
}
