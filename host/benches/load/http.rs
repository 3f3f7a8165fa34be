//! Raw HTTP/1.1 for the load generator: one keep-alive connection per [`Conn`] (hyper's client
//! connection API over a tokio `TcpStream`), and a server-sent-events reader for the streams
//! both MCP transports answer with.
//!
//! Deliberately lean (no pool, no redirects, no TLS): the client's own cost per call is part of
//! what the benchmark observes, and it shares the machine with the server. Knows nothing of MCP.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// A response whose headers have arrived; the body is read by the caller.
pub(crate) type Response = hyper::Response<Incoming>;

/// One keep-alive HTTP/1.1 connection. Requests on it are sequential, as HTTP/1.1 demands; a
/// response body must be read to its end before the next request (else hyper closes it).
#[derive(Debug)]
pub(crate) struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    /// The `Host` header: the server accepts only loopback names (DNS-rebinding defence).
    host: String,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        // Requests are small single writes; Nagle would only add delay (clients like reqwest
        // disable it too).
        stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let (sender, connection) =
            http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("HTTP handshake: {e}"))?;
        // hyper's connection future does the socket I/O; it ends when the connection closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender, host: addr.to_string() })
    }

    /// A request builder with this connection's `Host` header.
    pub(crate) fn request(&self, method: hyper::Method, path: &str) -> hyper::http::request::Builder {
        Request::builder().method(method).uri(path).header(hyper::header::HOST, &self.host)
    }

    pub(crate) async fn send(
        &mut self,
        request: hyper::http::request::Builder,
        body: Bytes,
    ) -> Result<Response, String> {
        let request = request.body(Full::new(body)).map_err(|e| format!("building a request: {e}"))?;
        self.sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
        self.sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))
    }
}

/// The whole body of a response.
pub(crate) async fn read_body(response: Response) -> Result<Bytes, String> {
    Ok(response.into_body().collect().await.map_err(|e| format!("reading a body: {e}"))?.to_bytes())
}

/// A response header as text, if present.
pub(crate) fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// One server-sent event (comments and `id:`/`retry:` fields are dropped: no client here
/// resumes streams).
pub(crate) use crate::sse_events::SseEvent as Event;
use crate::sse_events::SseParser;

/// Reads events off a `text/event-stream` body as they arrive.
#[derive(Debug)]
pub(crate) struct EventStream {
    body: Incoming,
    parser: SseParser,
    ready: VecDeque<Event>,
}

impl EventStream {
    pub(crate) fn new(response: Response) -> Self {
        Self { body: response.into_body(), parser: SseParser::default(), ready: VecDeque::new() }
    }

    /// The next event, or `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<Event>, String> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            let Some(frame) = self.body.frame().await else { return Ok(None) };
            let frame = frame.map_err(|e| format!("reading an event stream: {e}"))?;
            if let Ok(data) = frame.into_data() {
                self.ready.extend(self.parser.push(&data));
            }
        }
    }

    /// Read to the end of the stream, so the connection can carry the next request.
    pub(crate) async fn finish(mut self) -> Result<(), String> {
        while let Some(frame) = self.body.frame().await {
            frame.map_err(|e| format!("reading an event stream: {e}"))?;
        }
        Ok(())
    }
}
