//! Loading a plugin: compile, type-check against the world (`InstancePre`), run `describe()`
//! once in the sandbox, and convert what the guest returns into plain, size-checked data.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;

use super::bindings::{PluginPre, guest_tools, types as wit};
use super::error::LoadError;
use super::grants::PluginGrants;
use super::sandbox::{self, CallContext, CallSite};
use super::types::{Annotations, Content, PluginInfo, Requirement, ToolInfo, ToolOutput};
use super::{Plugin, Runtime};

pub(super) async fn load(runtime: &Runtime, path: &Path, bytes: Vec<u8>) -> Result<Plugin, LoadError> {
    let component =
        compile(runtime, path, bytes).await.map_err(|detail| LoadError::Compile { path: path.to_owned(), detail })?;
    let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld { path: path.to_owned(), detail: format!("{e:#}") };
    let instance_pre = runtime.linker.instantiate_pre(&component).map_err(wrong_world)?;
    let pre = PluginPre::new(instance_pre).map_err(wrong_world)?;

    // Until the caller applies the operator's grants, a plugin has none: `describe` must not
    // depend on capabilities.
    let grants = Arc::new(PluginGrants { limits: runtime.limits.clone(), ..PluginGrants::default() });
    let limits = &grants.limits;
    let budget = limits.describe_timeout;
    let file_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let site = CallSite { plugin: &file_name, tool: "describe", grants: &grants, audit: &runtime.audit };
    let mut store = sandbox::new_store(&runtime.engine, &site, budget, CallContext::default())
        .map_err(|reason| LoadError::Describe { path: path.to_owned(), reason })?;
    let described = sandbox::run_guarded(&mut store, budget, async |store| {
        let instance = pre.instantiate_async(&mut *store).await?;
        instance.sanctum_plugin_tools().call_describe(&mut *store).await
    })
    .await
    .map_err(|reason| LoadError::Describe { path: path.to_owned(), reason })?;

    let size = describe_size(&described);
    if size > limits.max_describe_bytes {
        return Err(LoadError::DescribeTooLarge { path: path.to_owned(), size, limit: limits.max_describe_bytes });
    }
    Ok(Plugin { path: path.to_owned(), info: convert_info(described), grants, pre })
}

/// Compile (or fetch from the cache) on a blocking thread: compiling takes hundreds of
/// milliseconds of CPU, which must not stall the async threads serving HTTP.
async fn compile(runtime: &Runtime, path: &Path, bytes: Vec<u8>) -> Result<Component, String> {
    let engine = runtime.engine.clone();
    let cache = runtime.cache.clone();
    let label = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let compiled = tokio::task::spawn_blocking(move || match cache {
        Some(cache) => cache.component(&engine, &bytes, &label),
        None => Component::new(&engine, &bytes),
    })
    .await
    .map_err(|e| format!("the compiler thread failed: {e}"))?;
    compiled.map_err(|e| format!("{e:#}"))
}

fn describe_size(info: &guest_tools::PluginInfo) -> usize {
    let tools: usize = info
        .tools
        .iter()
        .map(|t| {
            t.name.len()
                + t.title.as_ref().map_or(0, String::len)
                + t.description.len()
                + t.input_schema.len()
                + t.output_schema.as_ref().map_or(0, String::len)
        })
        .sum();
    let requirements: usize = info.requirements.iter().map(|r| requirement_name(r).len()).sum();
    info.name.len() + info.version.len() + info.description.len() + tools + requirements
}

fn requirement_name(requirement: &wit::Requirement) -> &str {
    match requirement {
        wit::Requirement::Command(s)
        | wit::Requirement::HttpHost(s)
        | wit::Requirement::Directory(s)
        | wit::Requirement::Env(s)
        | wit::Requirement::Secret(s)
        | wit::Requirement::Config(s) => s,
    }
}

fn convert_info(info: guest_tools::PluginInfo) -> PluginInfo {
    PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        tools: info
            .tools
            .into_iter()
            .map(|t| ToolInfo {
                name: t.name,
                title: t.title,
                description: t.description,
                input_schema: t.input_schema,
                output_schema: t.output_schema,
                annotations: Annotations {
                    read_only: t.annotations.read_only,
                    destructive: t.annotations.destructive,
                    idempotent: t.annotations.idempotent,
                    open_world: t.annotations.open_world,
                },
            })
            .collect(),
        requirements: info
            .requirements
            .into_iter()
            .map(|r| match r {
                wit::Requirement::Command(s) => Requirement::Command(s),
                wit::Requirement::HttpHost(s) => Requirement::HttpHost(s),
                wit::Requirement::Directory(s) => Requirement::Directory(s),
                wit::Requirement::Env(s) => Requirement::Env(s),
                wit::Requirement::Secret(s) => Requirement::Secret(s),
                wit::Requirement::Config(s) => Requirement::Config(s),
            })
            .collect(),
    }
}

/// Convert a guest result, keeping at most `max_bytes` of content. Text past the budget is cut
/// with a visible note; an image that does not fit is replaced by a note.
pub(super) fn convert_output(output: wit::ToolOutput, max_bytes: usize) -> ToolOutput {
    let mut budget = max_bytes;
    let mut truncated = false;
    let mut content = Vec::with_capacity(output.content.len());
    for block in output.content {
        match block {
            wit::Content::Text(mut text) | wit::Content::Json(mut text) => {
                if text.len() > budget {
                    let omitted = text.len() - budget;
                    super::truncate_utf8(&mut text, budget);
                    text.push_str(&format!("\n[sanctum: output truncated, {omitted} bytes omitted]"));
                    truncated = true;
                }
                budget -= text.len().min(budget);
                content.push(Content::Text(text));
            }
            wit::Content::Image(blob) => {
                if blob.data.len() > budget {
                    content.push(Content::Text(format!(
                        "[sanctum: {} image of {} bytes omitted: over the output limit]",
                        blob.mime_type,
                        blob.data.len()
                    )));
                    truncated = true;
                } else {
                    budget -= blob.data.len();
                    content.push(Content::Image { data: blob.data, mime_type: blob.mime_type });
                }
            }
        }
    }
    // Structured content cannot be cut without breaking it; it is dropped instead, which the
    // registry reports if the tool promised an output schema.
    let structured = output.structured.filter(|s| {
        let fits = s.len() <= budget;
        truncated |= !fits;
        fits
    });
    ToolOutput { content, structured, truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(content: Vec<wit::Content>, structured: Option<&str>) -> wit::ToolOutput {
        wit::ToolOutput { content, structured: structured.map(str::to_owned) }
    }

    #[test]
    fn output_within_budget_is_unchanged() {
        let out = convert_output(output(vec![wit::Content::Text("hello".into())], Some("{}")), 100);
        assert_eq!(out.content, vec![Content::Text("hello".into())]);
        assert_eq!(out.structured.as_deref(), Some("{}"));
        assert!(!out.truncated);
    }

    #[test]
    fn output_over_budget_is_cut_with_a_note() {
        let big = "x".repeat(50);
        let image = wit::Blob { data: vec![0; 10], mime_type: "image/png".into() };
        let out =
            convert_output(output(vec![wit::Content::Text(big), wit::Content::Image(image)], Some("{\"a\":1}")), 20);
        assert!(out.truncated);
        match &out.content[..] {
            [Content::Text(t), Content::Text(note)] => {
                assert!(t.starts_with(&"x".repeat(20)) && t.contains("30 bytes omitted"), "{t}");
                assert!(note.contains("image of 10 bytes omitted"), "{note}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(out.structured, None);
    }
}
