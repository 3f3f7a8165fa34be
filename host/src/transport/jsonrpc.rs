//! A first look at a POSTed JSON-RPC message, before rmcp parses it: its request id (for the
//! in-flight book) and the faults rmcp would misreport.
//!
//! rmcp answers `tools/call` with non-object `arguments` as "method not found" (the message no
//! longer parses as a known request), and routes responses by request id, so a second request
//! reusing an id still in flight would be answered with the first one's result, or not at all.
//! This module reads only the envelope (borrowed, no copy of the arguments) and builds the
//! JSON-RPC error a client is owed. It also tells the transport which messages end a session's
//! handshake and which are plain `tools/list` requests (answered from the serialized listing).
//! Owns no MCP semantics beyond those method names and the `tools/call` argument shape.

use rmcp::ErrorData;
use rmcp::model::{RequestId, ServerJsonRpcMessage};
use serde::Deserialize;
use serde_json::value::RawValue;

/// What the transport needs to know about one POSTed message.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The id of a request (absent for notifications, responses and anything unreadable).
    pub(crate) request_id: Option<RequestId>,
    /// A `notifications/cancelled` names the request it cancels: it is no longer in flight.
    pub(crate) cancels: Option<RequestId>,
    /// An `initialize` request (the only one that opens a session).
    pub(crate) initializes: bool,
    /// A `tools/list` request: a handshake session's is answered from the serialized listing.
    pub(crate) lists_tools: bool,
    /// `notifications/initialized`: the session's handshake is done.
    pub(crate) completes_handshake: bool,
}

/// A message that must be answered with a JSON-RPC error instead of being handled.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) id: RequestId,
    pub(crate) error: ErrorData,
}

impl Refusal {
    /// The error response as it goes on the wire.
    pub(crate) fn message(self) -> ServerJsonRpcMessage {
        ServerJsonRpcMessage::error(self.error, Some(self.id))
    }

    pub(crate) fn duplicate(id: RequestId) -> Self {
        let error = ErrorData::invalid_request(
            format!("request id {id} is already in flight on this session; a request id must not be reused"),
            None,
        );
        Self { id, error }
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    id: Option<RequestId>,
    #[serde(default, borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

/// `tools/list` parameters as far as the envelope cares: a `_meta` (a 2026-era version,
/// a progress token) is for rmcp to read.
#[derive(Deserialize)]
struct ListParams<'a> {
    #[serde(default, borrow, rename = "_meta")]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CancelParams {
    #[serde(default, rename = "requestId")]
    request_id: Option<RequestId>,
}

/// Read the envelope of `body`. Anything that is not a single JSON-RPC object (a batch, broken
/// JSON) yields an empty envelope: rmcp reports those itself.
pub(crate) fn peek(body: &[u8]) -> Result<Envelope, Refusal> {
    let Ok(message) = serde_json::from_slice::<Message<'_>>(body) else {
        return Ok(Envelope::default());
    };
    let Some(method) = message.method.as_deref() else {
        // A response or an error from the client: no request of its own.
        return Ok(Envelope::default());
    };
    let Some(id) = message.id else {
        let cancels = (method == "notifications/cancelled")
            .then(|| message.params.and_then(|p| serde_json::from_str::<CancelParams>(p.get()).ok()))
            .flatten()
            .and_then(|p| p.request_id);
        let completes_handshake = method == "notifications/initialized";
        return Ok(Envelope { cancels, completes_handshake, ..Envelope::default() });
    };
    if method == "tools/call"
        && let Some(params) = message.params
    {
        let arguments = serde_json::from_str::<CallParams<'_>>(params.get()).ok().and_then(|p| p.arguments);
        if let Some(arguments) = arguments {
            let text = arguments.get().trim_start();
            if !(text.starts_with('{') || text == "null") {
                let error = ErrorData::invalid_params(
                    "tools/call: `arguments` must be a JSON object (or absent)".to_owned(),
                    None,
                );
                return Err(Refusal { id, error });
            }
        }
    }
    Ok(Envelope {
        initializes: method == "initialize",
        lists_tools: method == "tools/list" && plain_list(message.params),
        request_id: Some(id),
        ..Envelope::default()
    })
}

/// `tools/list` parameters that are absent, `null` or an object without `_meta`.
fn plain_list(params: Option<&RawValue>) -> bool {
    match params {
        None => true,
        Some(params) if params.get().trim() == "null" => true,
        Some(params) => serde_json::from_str::<ListParams<'_>>(params.get()).is_ok_and(|p| p.meta.is_none()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ErrorCode, NumberOrString};

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let request = peek(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).expect("fine");
        assert_eq!(request.request_id, Some(NumberOrString::Number(7)));
        assert!(!request.initializes);
        assert!(request.lists_tools);
        assert!(peek(br#"{"jsonrpc":"2.0","id":0,"method":"initialize"}"#).expect("fine").initializes);
        let with_cursor = br#"{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"cursor":"x"}}"#;
        assert!(peek(with_cursor).expect("fine").lists_tools);
        let with_meta = br#"{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"_meta":{"progressToken":1}}}"#;
        assert!(!peek(with_meta).expect("fine").lists_tools, "rmcp reads _meta");
        // Only a request lists: a notification of that name has no id to answer.
        assert!(!peek(br#"{"jsonrpc":"2.0","method":"tools/list"}"#).expect("fine").lists_tools);
        let named = peek(br#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#).expect("fine");
        assert_eq!(named.request_id, Some(NumberOrString::String("a".into())));
        let notification = peek(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).expect("fine");
        assert_eq!(notification, Envelope { completes_handshake: true, ..Envelope::default() });
        let cancel =
            peek(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#).expect("fine");
        assert_eq!(cancel.cancels, Some(NumberOrString::Number(7)));
        assert_eq!(peek(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).expect("batch"), Envelope::default());
        assert_eq!(peek(b"not json").expect("broken"), Envelope::default());
    }

    #[test]
    fn call_arguments_that_are_not_an_object_are_invalid_params() {
        for arguments in [r#""text""#, "[1,2]", "42", "true"] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"x","arguments":{arguments}}}}}"#
            );
            let refusal = peek(body.as_bytes()).expect_err(arguments);
            assert_eq!(refusal.error.code, ErrorCode::INVALID_PARAMS, "{arguments}");
            assert_eq!(refusal.id, NumberOrString::Number(3));
        }
        for arguments in ["{}", r#"{"a":1}"#, "null"] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"x","arguments":{arguments}}}}}"#
            );
            assert!(peek(body.as_bytes()).is_ok(), "{arguments}");
        }
        let absent = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x"}}"#;
        assert!(peek(absent).is_ok());
    }
}
