//! A first look at a POSTed JSON-RPC message, before rmcp parses it: its request id (for the
//! in-flight book) and the faults rmcp would misreport.
//!
//! rmcp answers `tools/call` with non-object `arguments` as "method not found" (the message no
//! longer parses as a known request), and routes responses by request id, so a second request
//! reusing an id still in flight would be answered with the first one's result, or not at all.
//! This module reads only the envelope (borrowed, no copy of the arguments) and builds the
//! JSON-RPC error a client is owed. It also tells the transport which messages end a session's
//! handshake and which are plain `tools/list` requests (answered from the serialized listing).
//! Owns no MCP semantics beyond those method names, the `tools/call` argument shape and which
//! `tools/list` requests are plain.

use rmcp::ErrorData;
use rmcp::model::{RequestId, ServerJsonRpcMessage};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::mcp::ListingEra;

/// What the transport needs to know about one POSTed message.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// The id of a request (absent for notifications, responses and anything unreadable).
    pub(crate) request_id: Option<RequestId>,
    /// A `notifications/cancelled` names the request it cancels: it is no longer in flight.
    pub(crate) cancels: Option<RequestId>,
    /// An `initialize` request (the only one that opens a session).
    pub(crate) initializes: bool,
    /// A plain `tools/list` request of one protocol era, which the transport may answer from
    /// the serialized listing (anything else about the request is rmcp's to read).
    pub(crate) lists_tools: Option<ListingEra>,
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
    #[serde(default, borrow)]
    jsonrpc: Option<std::borrow::Cow<'a, str>>,
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

/// `tools/list` parameters as far as the envelope cares: the `_meta`, which tells the eras
/// apart (`cursor` is ignored: the list is one page). Raw, so that a `_meta` that is present
/// but `null` is told from an absent one.
type ListParams<'a> = std::collections::HashMap<std::borrow::Cow<'a, str>, &'a RawValue>;

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
    let well_formed = message.jsonrpc.as_deref() == Some("2.0");
    Ok(Envelope {
        initializes: method == "initialize",
        lists_tools: (well_formed && method == "tools/list").then(|| plain_list(message.params)).flatten(),
        request_id: Some(id),
        ..Envelope::default()
    })
}

/// The era of a `tools/list` whose parameters are plain: absent, `null` or an object without
/// `_meta` (handshake era), or an object whose `_meta` carries exactly the 2026-07-28 request
/// metadata, well formed by rmcp's own reading, and nothing else (stateless era). Anything else
/// (a progress token, another version, a malformed field) is for rmcp to answer or refuse.
fn plain_list(params: Option<&RawValue>) -> Option<ListingEra> {
    let Some(params) = params else { return Some(ListingEra::Handshake) };
    let text = params.get().trim();
    if text == "null" {
        return Some(ListingEra::Handshake);
    }
    if !text.starts_with('{') {
        return None;
    }
    let params = serde_json::from_str::<ListParams<'_>>(text).ok()?;
    let Some(meta) = params.get("_meta") else { return Some(ListingEra::Handshake) };
    let meta = serde_json::from_str(meta.get()).ok()?;
    stateless_meta(meta).then_some(ListingEra::Stateless)
}

const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// The `_meta` keys a plain stateless request may carry: the two required ones and these two.
const STATELESS_META_KEYS: [&str; 4] =
    ["io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientCapabilities", CLIENT_INFO, LOG_LEVEL];

fn stateless_meta(meta: serde_json::Map<String, serde_json::Value>) -> bool {
    use rmcp::model::{MetaObject, ProtocolVersion, RequestMetaObject};
    if !meta.keys().all(|key| STATELESS_META_KEYS.contains(&key.as_str())) {
        return false;
    }
    let (has_info, has_level) = (meta.contains_key(CLIENT_INFO), meta.contains_key(LOG_LEVEL));
    let meta = RequestMetaObject(MetaObject(meta));
    meta.protocol_version().is_some_and(|v| v == ProtocolVersion::V_2026_07_28)
        && meta.missing_required_keys(&ProtocolVersion::V_2026_07_28).is_empty()
        && (!has_info || meta.client_info().is_some())
        && (!has_level || meta.log_level().is_some())
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
        assert_eq!(request.lists_tools, Some(ListingEra::Handshake));
        assert!(peek(br#"{"jsonrpc":"2.0","id":0,"method":"initialize"}"#).expect("fine").initializes);
        // Only a request lists: a notification of that name has no id to answer.
        assert_eq!(peek(br#"{"jsonrpc":"2.0","method":"tools/list"}"#).expect("fine").lists_tools, None);
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

    fn era(body: &str) -> Option<ListingEra> {
        peek(body.as_bytes()).expect("not refused").lists_tools
    }

    const V2026: &str = r#""io.modelcontextprotocol/protocolVersion":"2026-07-28""#;
    const CAPS: &str = r#""io.modelcontextprotocol/clientCapabilities":{}"#;

    #[test]
    fn only_plain_lists_of_either_era_are_told_apart_and_the_rest_is_left_to_rmcp() {
        let list =
            |params: &str| era(&format!(r#"{{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{params}}}"#));
        assert_eq!(list("null"), Some(ListingEra::Handshake));
        assert_eq!(list(r#"{"cursor":"x"}"#), Some(ListingEra::Handshake));
        assert_eq!(list(&format!(r#"{{"_meta":{{{V2026},{CAPS}}}}}"#)), Some(ListingEra::Stateless));
        let info = r#""io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}"#;
        let level = r#""io.modelcontextprotocol/logLevel":"info""#;
        assert_eq!(list(&format!(r#"{{"_meta":{{{V2026},{CAPS},{info},{level}}}}}"#)), Some(ListingEra::Stateless));
        for rmcp_s in [
            r#"{"_meta":{"progressToken":1}}"#.to_owned(),
            format!(r#"{{"_meta":{{{V2026},{CAPS},"progressToken":1}}}}"#),
            format!(r#"{{"_meta":{{{V2026}}}}}"#),
            format!(r#"{{"_meta":{{{CAPS}}}}}"#),
            format!(r#"{{"_meta":{{{},{CAPS}}}}}"#, V2026.replace("2026-07-28", "2025-11-25")),
            format!(r#"{{"_meta":{{{V2026},{}}}}}"#, CAPS.replace("{}", "[]")),
            format!(r#"{{"_meta":{{{V2026},{CAPS},"io.modelcontextprotocol/clientInfo":7}}}}"#),
            format!(r#"{{"_meta":{{{V2026},{CAPS},"io.modelcontextprotocol/logLevel":"loud"}}}}"#),
            r#"{"_meta":null}"#.to_owned(),
            "[]".to_owned(),
            "7".to_owned(),
        ] {
            assert_eq!(list(&rmcp_s), None, "{rmcp_s}");
        }
        // Not JSON-RPC 2.0: rmcp's to refuse.
        assert_eq!(era(r#"{"id":8,"method":"tools/list"}"#), None);
        assert_eq!(era(r#"{"jsonrpc":"1.0","id":8,"method":"tools/list"}"#), None);
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
