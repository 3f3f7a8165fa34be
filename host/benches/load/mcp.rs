//! The MCP side of one virtual client: opens its session on one of the three transports and
//! sends `tools/call` requests, returning each JSON-RPC result. Written from the wire shapes in
//! `docs/ARCHITECTURE.md` and `host/src/transport/`, not with rmcp's client, so the client's own
//! cost stays small and visible.
//!
//! Every virtual client has its own session and its own keep-alive connections (legacy SSE: one
//! for the event stream, one for the POSTs). Checking a result's content is `workload.rs`'s job.

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::http::{self, Conn, EventStream};

/// The newest protocol version with the `initialize` handshake.
const HANDSHAKE_VERSION: &str = "2025-11-25";
/// The stateless era: no handshake, version and capabilities on every request.
const STATELESS_VERSION: &str = "2026-07-28";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// What a 2026-07-28 request must carry in `params._meta`.
const STATELESS_META: &str =
    r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// `GET /sse` + `POST /messages`: responses ride the session's one open stream.
    LegacySse,
    /// `/mcp` after `initialize`, with `Mcp-Session-Id`.
    Session,
    /// `/mcp` in the 2026-07-28 era: every POST stands alone.
    Stateless,
}

impl Transport {
    pub(crate) const ALL: [Self; 3] = [Self::LegacySse, Self::Session, Self::Stateless];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::LegacySse => "legacy SSE",
            Self::Session => "Streamable, session",
            Self::Stateless => "Streamable, stateless",
        }
    }
}

/// A JSON-RPC message from the server; fields other than these (a notification's method and
/// params) are skipped while parsing.
#[derive(Deserialize)]
struct Message {
    id: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
}

/// One virtual client: its session and connections.
#[derive(Debug)]
pub(crate) struct Client {
    kind: Kind,
    next_id: u64,
}

#[derive(Debug)]
enum Kind {
    LegacySse {
        /// Carries the `GET /sse` response; kept so its stream is not torn down early.
        _stream_conn: Conn,
        stream: EventStream,
        posts: Conn,
        /// Where to POST: the `endpoint` event's relative URL.
        endpoint: String,
    },
    Session {
        conn: Conn,
        session: String,
    },
    Stateless {
        conn: Conn,
    },
}

impl Client {
    /// Open a session (`initialize` + `notifications/initialized` where the transport has them).
    pub(crate) async fn connect(addr: SocketAddr, transport: Transport) -> Result<Self, String> {
        let kind = match transport {
            Transport::LegacySse => {
                let mut stream_conn = Conn::open(addr).await?;
                let get = stream_conn.request(Method::GET, "/sse").header("accept", "text/event-stream");
                let response = stream_conn.send(get, Bytes::new()).await?;
                if response.status() != 200 {
                    return Err(format!("GET /sse: HTTP {}", response.status()));
                }
                let mut stream = EventStream::new(response);
                let endpoint = match stream.next().await? {
                    Some(event) if event.event == "endpoint" => event.data,
                    other => return Err(format!("GET /sse: expected an endpoint event, got {other:?}")),
                };
                let posts = Conn::open(addr).await?;
                Kind::LegacySse { _stream_conn: stream_conn, stream, posts, endpoint }
            }
            Transport::Session => {
                let mut conn = Conn::open(addr).await?;
                let response = conn.send(mcp_post(&conn, None, None), initialize_body()).await?;
                let session = http::header(&response, "mcp-session-id")
                    .ok_or_else(|| format!("initialize: HTTP {} without Mcp-Session-Id", response.status()))?
                    .to_owned();
                response_to(response, 0).await?;
                Kind::Session { conn, session }
            }
            Transport::Stateless => Kind::Stateless { conn: Conn::open(addr).await? },
        };
        let mut client = Self { kind, next_id: 1 };
        if let Kind::LegacySse { .. } = client.kind {
            client.legacy_request(0, initialize_body()).await?;
        }
        client.notify_initialized().await?;
        Ok(client)
    }

    /// `tools/call`; `arguments` is the JSON object as text. Returns the JSON-RPC `result`.
    pub(crate) async fn call(&mut self, tool: &str, arguments: &str) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        match &mut self.kind {
            Kind::LegacySse { .. } => {
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
                );
                self.legacy_request(id, body.into()).await
            }
            Kind::Session { conn, session } => {
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
                );
                let request = mcp_post(conn, Some(session), None);
                response_to(conn.send(request, body.into()).await?, id).await
            }
            Kind::Stateless { conn } => stateless_request(conn, id, "tools/call", Some(tool), arguments).await,
        }
    }

    /// `tools/list`: the JSON-RPC `result`, whose `tools` the caller checks.
    pub(crate) async fn list_tools(&mut self) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{}}}}"#);
        match &mut self.kind {
            Kind::LegacySse { .. } => self.legacy_request(id, body.into()).await,
            Kind::Session { conn, session } => {
                let request = mcp_post(conn, Some(session), None);
                response_to(conn.send(request, body.into()).await?, id).await
            }
            Kind::Stateless { conn } => stateless_request(conn, id, "tools/list", None, "").await,
        }
    }

    /// End the session the way a well-behaved client does (`DELETE` on `/mcp`; dropping the
    /// stream for legacy SSE), so sessions do not pile up across cells.
    pub(crate) async fn close(self) {
        if let Kind::Session { mut conn, session } = self.kind {
            let request = conn.request(Method::DELETE, "/mcp").header("mcp-session-id", session);
            if let Ok(response) = conn.send(request, Bytes::new()).await {
                let _ = http::read_body(response).await;
            }
        }
    }

    async fn notify_initialized(&mut self) -> Result<(), String> {
        let body = Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let response = match &mut self.kind {
            Kind::LegacySse { posts, endpoint, .. } => {
                let request = posts.request(Method::POST, endpoint).header("content-type", "application/json");
                posts.send(request, body).await?
            }
            Kind::Session { conn, session } => {
                let request = mcp_post(conn, Some(session), None);
                conn.send(request, body).await?
            }
            Kind::Stateless { .. } => return Ok(()),
        };
        let status = response.status();
        http::read_body(response).await?;
        if status == 202 { Ok(()) } else { Err(format!("notifications/initialized: HTTP {status}")) }
    }

    /// POST a request to the legacy endpoint (answered 202) and read its response off the stream.
    async fn legacy_request(&mut self, id: u64, body: Bytes) -> Result<Value, String> {
        let Kind::LegacySse { stream, posts, endpoint, .. } = &mut self.kind else {
            return Err("not a legacy SSE client".to_owned());
        };
        let request = posts.request(Method::POST, endpoint).header("content-type", "application/json");
        let response = posts.send(request, body).await?;
        let status = response.status();
        let text = http::read_body(response).await?;
        if status != 202 {
            return Err(format!("POST {endpoint}: HTTP {status}: {}", String::from_utf8_lossy(&text)));
        }
        while let Some(event) = stream.next().await? {
            if event.event != "message" {
                continue;
            }
            if let Some(result) = result_for(&event.data, id)? {
                return Ok(result);
            }
        }
        Err("the SSE stream ended before the response".to_owned())
    }
}

/// One 2026-07-28 request on `conn` (no session); `name` is the `Mcp-Name` header's value
/// (the tool, for `tools/call`). Returns the JSON-RPC `result`.
pub(crate) async fn stateless_request(
    conn: &mut Conn,
    id: u64,
    method: &str,
    name: Option<&str>,
    arguments: &str,
) -> Result<Value, String> {
    let params = match name {
        Some(name) => format!(r#"{{"name":"{name}","arguments":{arguments},"_meta":{STATELESS_META}}}"#),
        None => format!(r#"{{"_meta":{STATELESS_META}}}"#),
    };
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#);
    let mut request = mcp_post(conn, None, Some(method)).header("mcp-protocol-version", STATELESS_VERSION);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    response_to(conn.send(request, body.into()).await?, id).await
}

/// A POST to `/mcp`: with the session's headers, or (with `stateless_method`) the method header.
fn mcp_post(conn: &Conn, session: Option<&str>, stateless_method: Option<&str>) -> hyper::http::request::Builder {
    let mut request =
        conn.request(Method::POST, "/mcp").header("accept", ACCEPT_BOTH).header("content-type", "application/json");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session).header("mcp-protocol-version", HANDSHAKE_VERSION);
    }
    if let Some(method) = stateless_method {
        request = request.header("mcp-method", method);
    }
    request
}

fn initialize_body() -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{HANDSHAKE_VERSION}","capabilities":{{}},"clientInfo":{{"name":"sanctum-load","version":"0"}}}}}}"#
    ))
}

/// The result of request `id` from a Streamable HTTP response, which is either one JSON object
/// or an event stream (read to its end, so the connection is reusable).
async fn response_to(response: http::Response, id: u64) -> Result<Value, String> {
    let status = response.status();
    let streamed = http::header(&response, "content-type").is_some_and(|t| t.starts_with("text/event-stream"));
    if status != 200 {
        let body = http::read_body(response).await.unwrap_or_default();
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
    }
    if !streamed {
        let body = http::read_body(response).await?;
        let text = std::str::from_utf8(&body).map_err(|e| format!("response is not UTF-8: {e}"))?;
        return result_for(text, id)?.ok_or_else(|| format!("the response is not for request {id}: {text}"));
    }
    let mut stream = EventStream::new(response);
    let mut found = None;
    while let Some(event) = stream.next().await? {
        if let Some(result) = result_for(&event.data, id)? {
            found = Some(result);
            break;
        }
    }
    stream.finish().await?;
    found.ok_or_else(|| format!("the event stream ended without the response to request {id}"))
}

/// `Some(result)` if `data` is the response to request `id`; `None` for other messages
/// (notifications, empty priming events); an error for a JSON-RPC error response.
fn result_for(data: &str, id: u64) -> Result<Option<Value>, String> {
    if data.trim().is_empty() {
        return Ok(None);
    }
    let message: Message = serde_json::from_str(data).map_err(|e| format!("not JSON-RPC ({e}): {data}"))?;
    if message.id.as_ref().and_then(Value::as_u64) != Some(id) {
        return Ok(None);
    }
    match (message.result, message.error) {
        (Some(result), None) => Ok(Some(result)),
        (_, Some(error)) => Err(format!("JSON-RPC error: {error}")),
        (None, None) => Err(format!("a response with neither result nor error: {data}")),
    }
}
