//! Loading a plugin: compile, type-check against the world (`InstancePre`), run `describe()`
//! once in the sandbox, and convert what the guest returns into plain, size-checked data.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;

use super::bindings::{PluginPre, guest_tools, types as wit};
use super::error::LoadError;
use super::sandbox::{self, CallSite};
use super::{Plugin, Runtime};
use crate::digest::{ComponentBytes, ComponentDigest};
use crate::model::CallContext;
use crate::model::PluginGrants;
use crate::model::{
    Annotations, Content, EmbeddedResource, PluginInfo, Requirement, ResourceContents, ToolInfo, ToolOutput,
    WORLD_VERSION,
};

pub(super) async fn load(runtime: &Runtime, path: &Path, bytes: ComponentBytes) -> Result<Plugin, LoadError> {
    let digest = bytes.digest();
    let component = compile(runtime, path, bytes.into_bytes(), digest)
        .await
        .map_err(|detail| LoadError::Compile { path: path.to_owned(), detail })?;
    // Before linking: an older or newer world fails type-checking with an obscure message, when
    // what the operator needs to know is which version it was built against.
    if let Some(found) = world_version(&runtime.engine, &component)
        && !compatible(&found, WORLD_VERSION)
    {
        return Err(LoadError::WorldVersion { path: path.to_owned(), found });
    }
    let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld { path: path.to_owned(), detail: format!("{e:#}") };
    let instance_pre = runtime.linker.instantiate_pre(&component).map_err(wrong_world)?;
    let pre = PluginPre::new(instance_pre).map_err(wrong_world)?;

    // Until the caller applies the operator's grants, a plugin has none: `describe` must not
    // depend on capabilities.
    let grants = Arc::new(PluginGrants { limits: runtime.limits.clone(), ..PluginGrants::default() });
    let limits = &grants.limits;
    let budget = limits.describe_timeout;
    let file_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let site =
        CallSite { plugin: &file_name, digest, tool: "describe", grants: &grants, audit: &runtime.audit, jobs: None };
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
    Ok(Plugin { path: path.to_owned(), digest, info: convert_info(described), grants, pre })
}

/// Compile (or fetch from the cache) on a blocking thread: compiling takes hundreds of
/// milliseconds of CPU, which must not stall the async threads serving HTTP.
async fn compile(runtime: &Runtime, path: &Path, bytes: Vec<u8>, digest: ComponentDigest) -> Result<Component, String> {
    if let Some(compiled) = runtime.background.as_ref().and_then(|b| b.take(digest)) {
        return compiled;
    }
    let compile = compiler(runtime, path, digest);
    tokio::task::spawn_blocking(move || compile(bytes)).await.map_err(|e| format!("the compiler thread failed: {e}"))?
}

/// What compiles `digest`'s bytes (through the compile cache when there is one), to run on a
/// blocking thread.
pub(super) fn compiler(
    runtime: &Runtime,
    path: &Path,
    digest: ComponentDigest,
) -> impl FnOnce(Vec<u8>) -> Result<Component, String> + Send + 'static {
    let engine = runtime.engine.clone();
    let cache = runtime.cache.clone();
    let label = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    move |bytes| {
        let compiled = match cache {
            Some(cache) => cache.component(&engine, &bytes, digest, &label),
            None => Component::new(&engine, &bytes),
        };
        release_freed_memory();
        compiled.map_err(|e| format!("{e:#}"))
    }
}

/// Hand the compiler's freed working memory back to the system. Compiling an 18 MB component
/// peaks near 400 MB, and glibc keeps what was freed in the compiling thread's arena: measured
/// here, a server stayed at 450 MB after one Python plugin's compile, against 80 MB when the
/// same plugin came from the compile cache.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` only returns free pages of the allocator's heaps to the kernel; it
    // touches no memory in use and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The version of the `sanctum:plugin` package whose `tools` interface `component` exports, if
/// it exports one (a component that does not is refused later as the wrong world).
fn world_version(engine: &wasmtime::Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .exports(engine)
        .find_map(|(name, _)| name.strip_prefix("sanctum:plugin/tools@").map(str::to_owned))
}

/// Whether a component built against package version `found` can link with one built for
/// `current`: semver-compatible, where (as in cargo and wasmtime) a `0.x` minor is breaking.
fn compatible(found: &str, current: &str) -> bool {
    fn key(version: &str) -> Option<(u64, u64)> {
        let mut parts = version.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, if major == 0 { minor } else { 0 }))
    }
    key(found).is_some_and(|k| Some(k) == key(current))
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

/// Convert a guest result, keeping at most `max_bytes` of content (every byte a client
/// receives counts: text, binary data, URIs and media types). Text past the budget is cut with a
/// visible note; an image, audio clip or resource that does not fit whole is replaced by a note,
/// since half of one is useless (and cut JSON or base64 would mislead).
pub(super) fn convert_output(output: wit::ToolOutput, max_bytes: usize) -> ToolOutput {
    let mut budget = Budget { left: max_bytes, truncated: false };
    let content = output.content.into_iter().map(|block| budget.convert(block)).collect();
    // Structured content cannot be cut without breaking it; it is dropped instead, which the
    // registry reports if the tool promised an output schema.
    let structured = output.structured.filter(|s| {
        let fits = s.len() <= budget.left;
        budget.truncated |= !fits;
        fits
    });
    ToolOutput { content, structured, truncated: budget.truncated }
}

/// Bytes of content a call may still return.
struct Budget {
    left: usize,
    truncated: bool,
}

impl Budget {
    fn convert(&mut self, block: wit::Content) -> Content {
        match block {
            wit::Content::Text(mut text) | wit::Content::Json(mut text) => {
                if text.len() > self.left {
                    let omitted = text.len() - self.left;
                    super::truncate_utf8(&mut text, self.left);
                    text.push_str(&format!("\n[sanctum: output truncated, {omitted} bytes omitted]"));
                    self.truncated = true;
                }
                self.left -= text.len().min(self.left);
                Content::Text(text)
            }
            wit::Content::Image(blob) => match self.charge(blob.data.len() + blob.mime_type.len()) {
                Ok(()) => Content::Image { data: blob.data, mime_type: blob.mime_type },
                Err(size) => omitted(&format!("{} image", short(&blob.mime_type)), size),
            },
            wit::Content::Audio(blob) => match self.charge(blob.data.len() + blob.mime_type.len()) {
                Ok(()) => Content::Audio { data: blob.data, mime_type: blob.mime_type },
                Err(size) => omitted(&format!("{} audio", short(&blob.mime_type)), size),
            },
            wit::Content::Resource(wit::EmbeddedResource { uri, mime_type, contents }) => {
                let (data, contents) = match contents {
                    wit::ResourceContents::Text(text) => (text.len(), ResourceContents::Text(text)),
                    wit::ResourceContents::Blob(bytes) => (bytes.len(), ResourceContents::Blob(bytes)),
                };
                match self.charge(data + uri.len() + mime_type.as_ref().map_or(0, String::len)) {
                    Ok(()) => Content::Resource(EmbeddedResource { uri, mime_type, contents }),
                    Err(size) => omitted(&format!("resource {}", short(&uri)), size),
                }
            }
        }
    }

    /// Take `size` bytes for a block that is kept whole or not at all; `Err(size)` when they
    /// are not left.
    fn charge(&mut self, size: usize) -> Result<(), usize> {
        if size > self.left {
            self.truncated = true;
            return Err(size);
        }
        self.left -= size;
        Ok(())
    }
}

/// The note that replaces a block of `size` bytes that did not fit.
fn omitted(what: &str, size: usize) -> Content {
    Content::Text(format!("[sanctum: {what} of {size} bytes omitted: over the output limit]"))
}

/// A plugin-chosen label (media type, URI) cut for a note, which must stay short.
fn short(label: &str) -> &str {
    const MAX: usize = 200;
    let mut end = label.len().min(MAX);
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    &label[..end]
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
                assert!(note.contains("image/png image of 19 bytes omitted"), "{note}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(out.structured, None);
    }

    #[test]
    fn audio_and_resources_are_kept_whole_or_replaced_by_a_note() {
        let audio = || wit::Content::Audio(wit::Blob { data: vec![0; 10], mime_type: "audio/wav".into() });
        let resource = |contents| {
            wit::Content::Resource(wit::EmbeddedResource {
                uri: "test://r".into(),
                mime_type: Some("text/plain".into()),
                contents,
            })
        };
        let text = || resource(wit::ResourceContents::Text("hello".into()));
        let blob = || resource(wit::ResourceContents::Blob(vec![1; 4]));
        // audio 10 + 9, text resource 5 + 8 + 10, blob resource 4 + 8 + 10: 64 bytes in all.
        let all = convert_output(output(vec![audio(), text(), blob()], None), 64);
        assert!(!all.truncated);
        let expected_resource = |contents| {
            Content::Resource(EmbeddedResource {
                uri: "test://r".into(),
                mime_type: Some("text/plain".into()),
                contents,
            })
        };
        assert_eq!(
            all.content,
            vec![
                Content::Audio { data: vec![0; 10], mime_type: "audio/wav".into() },
                expected_resource(ResourceContents::Text("hello".into())),
                expected_resource(ResourceContents::Blob(vec![1; 4])),
            ]
        );

        let cut = convert_output(output(vec![audio(), text(), blob()], None), 63);
        assert!(cut.truncated);
        assert!(matches!(&cut.content[..2], [Content::Audio { .. }, Content::Resource(_)]), "{cut:?}");
        assert!(
            matches!(&cut.content[2], Content::Text(n) if n.contains("resource test://r of 22 bytes omitted")),
            "{cut:?}"
        );
        let none = convert_output(output(vec![audio()], None), 18);
        assert!(matches!(&none.content[..], [Content::Text(n)] if n.contains("audio/wav audio of 19 bytes")));
    }

    #[test]
    fn only_the_same_minor_version_of_a_0_x_world_is_compatible() {
        assert!(compatible("0.2.0", "0.2.0"));
        assert!(compatible("0.2.3", "0.2.0"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(!compatible("0.3.0", "0.2.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("garbage", "0.2.0"));
    }

    #[test]
    fn the_world_version_constant_matches_the_wit_package() {
        let wit = include_str!("../../../wit/plugin.wit");
        assert!(wit.contains(&format!("package sanctum:plugin@{WORLD_VERSION};")), "wit/plugin.wit");
    }
}
