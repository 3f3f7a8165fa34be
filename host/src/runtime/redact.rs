//! Scrubbing secret values out of everything a plugin sends back. A plugin never receives a
//! secret from the host, but a destination that reflects a request (an echo endpoint, an error
//! page quoting the URL) could hand it one; verbatim copies are caught here. Transformed copies
//! (encoded, split) cannot be, which `docs/security.md` states.

use crate::model::CallFailure;
use crate::model::{Content, EmbeddedResource, ResourceContents, ToolOutput};

const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not scrubbed: replacing every "a" would destroy the output and
/// a value that short protects nothing anyway.
const MIN_SECRET_LEN: usize = 8;

#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub(crate) fn new<'a>(secrets: impl Iterator<Item = &'a str>) -> Self {
        Self { secrets: secrets.filter(|s| s.len() >= MIN_SECRET_LEN).map(str::to_owned).collect() }
    }

    pub(crate) fn text(&self, text: &mut String) {
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), REDACTED);
            }
        }
    }

    pub(crate) fn output(&self, output: &mut ToolOutput) {
        if self.secrets.is_empty() {
            return;
        }
        // Every string the plugin chose is scrubbed. Binary data (images, audio, blobs) is not:
        // rewriting bytes would corrupt it; docs/security.md lists this among the limits.
        for block in &mut output.content {
            match block {
                Content::Text(text) => self.text(text),
                Content::Image { mime_type, .. } | Content::Audio { mime_type, .. } => self.text(mime_type),
                Content::Resource(EmbeddedResource { uri, mime_type, contents }) => {
                    self.text(uri);
                    if let Some(mime_type) = mime_type {
                        self.text(mime_type);
                    }
                    if let ResourceContents::Text(text) = contents {
                        self.text(text);
                    }
                }
            }
        }
        if let Some(structured) = &mut output.structured {
            self.text(structured);
        }
    }

    pub(crate) fn failure(&self, failure: &mut CallFailure) {
        if let CallFailure::Tool(m) | CallFailure::Crashed(m) | CallFailure::InvalidResult(m) = failure {
            self.text(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_secrets_are_replaced_everywhere() {
        let redactor = Redactor::new(["tok-123456789", "short"].into_iter());
        let mut output = ToolOutput {
            content: vec![Content::Text("auth: Bearer tok-123456789 ok".into())],
            structured: Some("{\"echo\":\"tok-123456789\"}".into()),
            truncated: false,
        };
        output.content.push(Content::Resource(EmbeddedResource {
            uri: "test://tok-123456789".into(),
            mime_type: None,
            contents: ResourceContents::Text("echo: tok-123456789".into()),
        }));
        redactor.output(&mut output);
        assert_eq!(
            output.content,
            vec![
                Content::Text("auth: Bearer [redacted] ok".into()),
                Content::Resource(EmbeddedResource {
                    uri: "test://[redacted]".into(),
                    mime_type: None,
                    contents: ResourceContents::Text("echo: [redacted]".into()),
                }),
            ]
        );
        assert_eq!(output.structured.as_deref(), Some("{\"echo\":\"[redacted]\"}"));
        let mut failure = CallFailure::Tool("leaked tok-123456789, short".into());
        redactor.failure(&mut failure);
        assert_eq!(failure, CallFailure::Tool("leaked [redacted], short".into()));
    }
}
