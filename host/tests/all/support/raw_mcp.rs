//! A raw `/mcp` handshake session, for tests that check the wire shape.

use serde_json::{Value, json};

use super::TestServer;

pub const ACCEPT: &str = "application/json, text/event-stream";

/// A raw `/mcp` handshake session.
pub struct McpSession {
    pub http: reqwest::Client,
    pub url: String,
    pub id: String,
}

impl McpSession {
    pub async fn open(server: &TestServer) -> Self {
        let http = reqwest::Client::new();
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}});
        let response = http.post(server.url("/mcp")).header("accept", ACCEPT).json(&init).send().await.expect("POST");
        let id = response.headers()["mcp-session-id"].to_str().expect("ascii").to_owned();
        let session = Self { http, url: server.url("/mcp"), id };
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(session.send(&initialized).await.status(), 202);
        session
    }

    pub async fn send(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("accept", ACCEPT)
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-11-25")
            .json(body)
            .send()
            .await
            .expect("POST /mcp")
    }

    /// The JSON-RPC message that answers `body` (a JSON body or the last event of a stream).
    pub async fn ask(&self, body: &Value) -> Value {
        let response = self.send(body).await;
        assert_eq!(response.status(), 200, "{body}");
        last_message(&response.text().await.expect("body"))
    }
}

pub fn last_message(body: &str) -> Value {
    if let Ok(value) = serde_json::from_str(body) {
        return value;
    }
    let data = body.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).rfind(|d| !d.is_empty());
    serde_json::from_str(data.unwrap_or_else(|| panic!("no message in {body:?}"))).expect("JSON")
}
