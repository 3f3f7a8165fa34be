//! The one place that decides how a call's outcome is shown to an MCP client.
//!
//! | outcome | reply |
//! |---|---|
//! | unknown tool | JSON-RPC error `-32602` (a protocol fault: the client named nothing we serve) |
//! | arguments violate the schema | tool result, `isError: true`, listing each problem (SEP-1303) |
//! | busy, timeout, trap, memory, cancelled, plugin error | tool result, `isError: true`, short text |
//! | over the principal's call rate | tool result, `isError: true`: "rate limited, retry after N s" |
//! | success | tool result with content blocks and, if present, `structuredContent` |
//!
//! Everything a model can act on is a tool result; JSON-RPC errors are for protocol faults.

use base64::Engine as _;
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents as McpResourceContents};

use crate::model::{Content, EmbeddedResource, ResourceContents};
use crate::registry::{CallError, Completed};

pub(crate) fn render(outcome: Result<Completed, CallError>) -> Result<CallToolResult, ErrorData> {
    match outcome {
        Ok(completed) => Ok(success(completed)),
        Err(CallError::UnknownTool(name)) => Err(ErrorData::invalid_params(format!("unknown tool: {name}"), None)),
        Err(error) => Ok(CallToolResult::error(vec![ContentBlock::text(error.to_string())])),
    }
}

/// The caller's principal is over its tool-call rate. A tool result rather than a JSON-RPC
/// error, like "busy": the model can act on it (wait and retry), and every client shows it.
pub(crate) fn rate_limited(retry_after: std::time::Duration) -> CallToolResult {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    CallToolResult::error(vec![ContentBlock::text(format!("rate limited, retry after {seconds} s"))])
}

fn success(completed: Completed) -> CallToolResult {
    let content = completed.content.into_iter().map(block).collect();
    let mut result = CallToolResult::success(content);
    result.structured_content = completed.structured;
    result
}

/// One content block as MCP carries it: binary data base64-encoded.
fn block(content: Content) -> ContentBlock {
    let base64 = |data: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(data);
    match content {
        Content::Text(text) => ContentBlock::text(text),
        Content::Image { data, mime_type } => ContentBlock::image(base64(data), mime_type),
        Content::Audio { data, mime_type } => ContentBlock::audio(base64(data), mime_type),
        Content::Resource(EmbeddedResource { uri, mime_type, contents }) => ContentBlock::resource(match contents {
            ResourceContents::Text(text) => {
                McpResourceContents::TextResourceContents { uri, mime_type, text, meta: None }
            }
            ResourceContents::Blob(data) => {
                McpResourceContents::BlobResourceContents { uri, mime_type, blob: base64(data), meta: None }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallFailure;
    use crate::worker::WorkerError;

    fn text_of(result: &CallToolResult) -> String {
        match result.content.first() {
            Some(ContentBlock::Text(t)) => t.text.clone(),
            other => panic!("expected a text block, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_tool_is_a_protocol_error() {
        let err = render(Err(CallError::UnknownTool("nope".into()))).expect_err("protocol error");
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        assert!(err.message.contains("unknown tool: nope"));
    }

    #[test]
    fn everything_the_model_can_act_on_is_a_tool_error() {
        let cases = [
            (
                CallError::InvalidArguments { tool: "t".into(), problems: vec!["at /a: bad".into()] },
                "invalid arguments for t: at /a: bad",
            ),
            (CallError::Worker(WorkerError::Busy { capacity: 4 }), "busy"),
            (CallError::Failed(CallFailure::Tool("failed as asked: x".into())), "failed as asked: x"),
            (CallError::Failed(CallFailure::Cancelled), "cancelled"),
        ];
        for (error, expected) in cases {
            let result = render(Err(error)).expect("tool result");
            assert_eq!(result.is_error, Some(true));
            assert!(text_of(&result).contains(expected), "{}", text_of(&result));
        }
    }

    #[test]
    fn success_carries_content_and_structured_content() {
        let completed = Completed {
            content: vec![
                Content::Text("hi".into()),
                Content::Image { data: vec![1, 2, 3], mime_type: "image/png".into() },
            ],
            structured: Some(serde_json::json!({"a": 1})),
        };
        let result = render(Ok(completed)).expect("success");
        assert_eq!(result.is_error, Some(false));
        assert_eq!(text_of(&result), "hi");
        assert!(matches!(&result.content[1], ContentBlock::Image(i) if i.data == "AQID" && i.mime_type == "image/png"));
        assert_eq!(result.structured_content, Some(serde_json::json!({"a": 1})));
    }

    #[test]
    fn audio_and_resources_render_as_the_mcp_blocks() {
        let resource = |mime_type: Option<&str>, contents| {
            Content::Resource(EmbeddedResource {
                uri: "test://r".into(),
                mime_type: mime_type.map(Into::into),
                contents,
            })
        };
        let completed = Completed {
            content: vec![
                Content::Audio { data: vec![1, 2, 3], mime_type: "audio/wav".into() },
                resource(Some("text/plain"), ResourceContents::Text("hello".into())),
                resource(None, ResourceContents::Blob(vec![1, 2, 3])),
            ],
            structured: None,
        };
        let wire = serde_json::to_value(render(Ok(completed)).expect("success")).expect("serializes");
        assert_eq!(
            wire["content"],
            serde_json::json!([
                {"type": "audio", "data": "AQID", "mimeType": "audio/wav"},
                {"type": "resource", "resource": {"uri": "test://r", "mimeType": "text/plain", "text": "hello"}},
                {"type": "resource", "resource": {"uri": "test://r", "blob": "AQID"}},
            ])
        );
    }
}
