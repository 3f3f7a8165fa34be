//! A raw legacy SSE session (`GET /sse`, then POSTs), for tests that check the wire shape.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use super::TestServer;
use super::sse_client::{SseEvent, SseParser};

/// A raw `GET /sse` stream.
pub struct RawSession {
    pub events: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    pending: Vec<SseEvent>,
    pub raw: String,
    pub post_url: String,
}

impl RawSession {
    pub async fn open(server: &TestServer) -> Self {
        let response = reqwest::get(server.url("/sse")).await.expect("GET /sse");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/event-stream"));
        let mut session = Self {
            events: Box::pin(response.bytes_stream()),
            parser: SseParser::default(),
            pending: Vec::new(),
            raw: String::new(),
            post_url: String::new(),
        };
        let first = session.next_event().await;
        assert_eq!(first.event, "endpoint", "the first event names the POST endpoint");
        assert!(first.data.starts_with("/messages?sessionId="), "relative URL: {}", first.data);
        session.post_url = server.url(&first.data);
        session
    }

    pub async fn next_event(&mut self) -> SseEvent {
        loop {
            if !self.pending.is_empty() {
                return self.pending.remove(0);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.events.next())
                .await
                .expect("an event within 20 s")
                .expect("stream open")
                .expect("chunk");
            self.raw.push_str(&String::from_utf8_lossy(&chunk));
            self.pending.extend(self.parser.push(&chunk));
        }
    }

    pub async fn post(&self, body: &Value) -> reqwest::StatusCode {
        reqwest::Client::new().post(&self.post_url).json(body).send().await.expect("POST").status()
    }

    pub async fn post_as(&self, agent: &str, body: &Value) -> reqwest::StatusCode {
        let request = reqwest::Client::new().post(&self.post_url).header("x-agent-id", agent).json(body);
        request.send().await.expect("POST").status()
    }

    pub async fn initialize(&mut self) {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
        assert_eq!(self.post(&init).await, 202);
        let reply: Value = serde_json::from_str(&self.next_event().await.data).expect("JSON");
        assert_eq!(reply["result"]["protocolVersion"], "2024-11-05", "the client's version is echoed");
        assert_eq!(self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await, 202);
    }

    /// The next `message` event's JSON, skipping other events.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let event = self.next_event().await;
            if event.event == "message" {
                return serde_json::from_str(&event.data).expect("JSON");
            }
        }
    }
}
