//! What a successful tool call returns.

use serde::Serialize;

use crate::__bindings::wit;
use crate::ToolError;

/// The result of a successful call: content blocks for the model, in order, and optionally a
/// structured value for clients that read it.
///
/// Build it with chained calls:
///
/// ```
/// # use sanctum_guest::{Output, ToolError};
/// # fn f() -> Result<Output, ToolError> {
/// let stats = serde_json::json!({"count": 2});
/// Ok(Output::new().json(&stats)?.structured(&stats)?)
/// # }
/// ```
///
/// A plain string converts into an output with one text block: `Ok("done".into())`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    content: Vec<Content>,
    structured: Option<String>,
}

/// One block of an [`Output`]. Kept private to the SDK's API surface so blocks are only made
/// through the builder, which is what keeps JSON blocks valid JSON.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    Text(String),
    Json(String),
    Image { data: Vec<u8>, mime_type: String },
    Audio { data: Vec<u8>, mime_type: String },
    Resource(Resource),
}

/// A resource embedded in an [`Output`]: contents with the URI that names them, for results
/// that are a document rather than prose (a log file, a generated report, a binary artefact).
/// Clients show it as an attachment; the URI only labels it (the host serves no resources to
/// fetch).
///
/// ```
/// # use sanctum_guest::{Output, Resource};
/// let report = Resource::text("file:///reports/deploy.md", "# Deploy\nok").mime_type("text/markdown");
/// let output = Output::new().text("The report is attached.").resource(report);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    uri: String,
    mime_type: Option<String>,
    contents: ResourceContents,
}

/// What a [`Resource`] holds.
#[derive(Debug, Clone, PartialEq)]
enum ResourceContents {
    Text(String),
    Blob(Vec<u8>),
}

impl Resource {
    /// A text resource (a file's contents, a JSON document) named by `uri`.
    pub fn text(uri: impl Into<String>, text: impl Into<String>) -> Self {
        Self { uri: uri.into(), mime_type: None, contents: ResourceContents::Text(text.into()) }
    }

    /// A binary resource named by `uri`; clients receive it base64-encoded.
    pub fn blob(uri: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self { uri: uri.into(), mime_type: None, contents: ResourceContents::Blob(data.into()) }
    }

    /// Set the media type of the contents, e.g. `text/plain` or `application/json`. Clients use
    /// it to decide how to show the resource; without it they may not show it at all.
    #[must_use]
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }
}

impl Output {
    /// An output with no content yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a plain-text block.
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.content.push(Content::Text(text.into()));
        self
    }

    /// Append a block holding `value` serialized as JSON. Clients show it as text; use it when
    /// the model should read data rather than prose.
    ///
    /// Fails only if `value`'s `Serialize` implementation fails (e.g. a map with non-string keys).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, ToolError> {
        self.content.push(Content::Json(to_json(value, "JSON block")?));
        Ok(self)
    }

    /// Append an image block with its media type, e.g. `image/png`.
    #[must_use]
    pub fn image(mut self, data: impl Into<Vec<u8>>, mime_type: impl Into<String>) -> Self {
        self.content.push(Content::Image { data: data.into(), mime_type: mime_type.into() });
        self
    }

    /// Append an audio block with its media type, e.g. `audio/wav`.
    #[must_use]
    pub fn audio(mut self, data: impl Into<Vec<u8>>, mime_type: impl Into<String>) -> Self {
        self.content.push(Content::Audio { data: data.into(), mime_type: mime_type.into() });
        self
    }

    /// Append an embedded resource (see [`Resource`]).
    #[must_use]
    pub fn resource(mut self, resource: Resource) -> Self {
        self.content.push(Content::Resource(resource));
        self
    }

    /// Set the structured result. A tool that declares an output schema must set it on every
    /// success, and the value must conform to that schema (the host checks).
    pub fn structured<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, ToolError> {
        self.structured = Some(to_json(value, "structured result")?);
        Ok(self)
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, ToolError> {
    serde_json::to_string(value)
        .map_err(|e| ToolError::new(format!("internal error: could not serialize the {what}: {e}")))
}

impl From<String> for Output {
    fn from(text: String) -> Self {
        Self::new().text(text)
    }
}

impl From<&str> for Output {
    fn from(text: &str) -> Self {
        Self::new().text(text)
    }
}

impl From<Output> for wit::ToolOutput {
    fn from(output: Output) -> Self {
        Self { content: output.content.into_iter().map(Into::into).collect(), structured: output.structured }
    }
}

impl From<Content> for wit::Content {
    fn from(content: Content) -> Self {
        match content {
            Content::Text(text) => Self::Text(text),
            Content::Json(json) => Self::Json(json),
            Content::Image { data, mime_type } => Self::Image(wit::Blob { data, mime_type }),
            Content::Audio { data, mime_type } => Self::Audio(wit::Blob { data, mime_type }),
            Content::Resource(Resource { uri, mime_type, contents }) => {
                let contents = match contents {
                    ResourceContents::Text(text) => wit::ResourceContents::Text(text),
                    ResourceContents::Blob(data) => wit::ResourceContents::Blob(data),
                };
                Self::Resource(wit::EmbeddedResource { uri, mime_type, contents })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks_keep_their_order_and_kind() {
        let out: wit::ToolOutput = Output::new()
            .text("a")
            .json(&json!({"k": 1}))
            .and_then(|o| o.structured(&json!([1, 2])))
            .map(|o| o.image([1u8, 2], "image/png"))
            .expect("serializing a Value cannot fail")
            .into();
        assert_eq!(out.structured.as_deref(), Some("[1,2]"));
        assert!(matches!(&out.content[0], wit::Content::Text(t) if t == "a"));
        assert!(matches!(&out.content[1], wit::Content::Json(j) if j == r#"{"k":1}"#));
        assert!(matches!(&out.content[2], wit::Content::Image(b) if b.data == [1, 2] && b.mime_type == "image/png"));
    }

    #[test]
    fn audio_and_resources_become_their_wit_blocks() {
        let out: wit::ToolOutput = Output::new()
            .audio([7u8], "audio/wav")
            .resource(Resource::text("test://a", "hello").mime_type("text/plain"))
            .resource(Resource::blob("test://b", [1u8, 2]))
            .into();
        assert!(matches!(&out.content[0], wit::Content::Audio(b) if b.data == [7] && b.mime_type == "audio/wav"));
        assert!(matches!(
            &out.content[1],
            wit::Content::Resource(wit::EmbeddedResource {
                uri, mime_type: Some(m), contents: wit::ResourceContents::Text(t)
            }) if uri == "test://a" && m == "text/plain" && t == "hello"
        ));
        assert!(matches!(
            &out.content[2],
            wit::Content::Resource(wit::EmbeddedResource {
                uri, mime_type: None, contents: wit::ResourceContents::Blob(d)
            }) if uri == "test://b" && d == &[1, 2]
        ));
    }

    #[test]
    fn unserializable_value_is_a_tool_error() {
        let map = std::collections::HashMap::from([((1, 2), 3)]);
        let err = Output::new().json(&map).expect_err("tuple keys are not JSON");
        assert!(err.message().starts_with("internal error: could not serialize the JSON block"));
    }

    #[test]
    fn a_string_is_one_text_block() {
        assert_eq!(Output::from("done"), Output::new().text("done"));
    }
}
