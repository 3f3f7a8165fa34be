//! A plain `tools/list` (in a finished handshake, or stateless 2026-07-28) is answered from the
//! listing serialized once per registry generation and tool set, on both transports. What a
//! client gets must be exactly what rmcp's handler answers (a list with a progress token, or
//! with an `Accept` parameter, still goes that way, so the two are compared on one server), per
//! caller; a request rmcp would refuse is still refused; and no serialized list may outlive a
//! hot reload or a policy change.

use serde_json::{Value, json};

use crate::reload::{install, until};
use crate::support::raw_mcp::{ACCEPT, McpSession, last_message};
use crate::support::raw_sse::RawSession;
use crate::support::{TestServer, plugin_file, plugins_dir};

/// Agents see different tools: the listing is per caller.
const POLICY: &str = r#"
[access]
default = "deny"

[[access.rule]]
name = "ops-all"
agents = ["ops-agent"]
tools = ["*"]
effect = "allow"

[[access.rule]]
name = "support-stats"
agents = ["support-agent"]
tools = ["echo__stats", "health"]
effect = "allow"
"#;

fn list(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

/// The same request in the form that goes through rmcp's handler (`_meta` is rmcp's to read).
fn list_through_rmcp(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {"_meta": {"progressToken": "p"}}})
}

fn names(result: &Value) -> Vec<String> {
    let tools = result["tools"].as_array().unwrap_or_else(|| panic!("a tools array: {result}"));
    tools.iter().map(|t| t["name"].as_str().expect("a name").to_owned()).collect()
}

async fn server(files: &[&str], policy: Option<&str>) -> (TestServer, std::path::PathBuf) {
    let extra: Vec<(&str, &[u8])> = policy.map(|p| ("policy.toml", p.as_bytes())).into_iter().collect();
    let dir = plugins_dir(files, &extra);
    let path = dir.path().to_owned();
    let policy_path = policy.map(|_| path.join("policy.toml"));
    let server = TestServer::start_with(dir, move |args| {
        args.source.policy = policy_path;
        args.watch = true;
    })
    .await;
    (server, path)
}

/// A raw `/mcp` session sending `X-Agent-Id`; returns the response's content type and message.
async fn mcp_list(session: &McpSession, agent: &str, body: &Value) -> (String, Value) {
    let response = session
        .http
        .post(&session.url)
        .header("accept", ACCEPT)
        .header("mcp-session-id", &session.id)
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-agent-id", agent)
        .json(body)
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(response.status(), 200, "{body}");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    (content_type, last_message(&response.text().await.expect("body")))
}

/// The 2026-07-28 request metadata a stateless client sends with every request.
fn stateless_meta() -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
           "io.modelcontextprotocol/clientCapabilities": {},
           "io.modelcontextprotocol/clientInfo": {"name": "listing-test", "version": "1"}})
}

fn stateless_list(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {"_meta": stateless_meta()}})
}

/// A stateless `/mcp` POST with the 2026 headers; `accept` decides whether rmcp answers (a
/// media-type parameter, which rmcp ignores, is not a plain request). Returns the status, the
/// content type and the message.
async fn stateless_post(
    server: &TestServer,
    agent: &str,
    accept: &str,
    method_header: &str,
    body: &Value,
) -> (u16, String, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("accept", accept)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method_header)
        .header("x-agent-id", agent)
        .json(body)
        .send()
        .await
        .expect("POST /mcp");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().expect("ascii").to_owned());
    (status, content_type.unwrap_or_default(), last_message(&response.text().await.expect("body")))
}

const THROUGH_RMCP: &str = "application/json;q=1, text/event-stream";

/// The answer to `body`, passing over notifications (a reload sends `list_changed` on the same stream).
async fn sse_list(session: &mut RawSession, agent: &str, body: &Value) -> Value {
    assert_eq!(session.post_as(agent, body).await, 202);
    loop {
        let message = session.next_message().await;
        if message.get("id") == body.get("id") {
            return message;
        }
        assert!(message.get("id").is_none(), "an answer to another request: {message}");
    }
}

#[tokio::test]
async fn a_listing_is_the_same_bytes_rmcp_would_send_for_each_caller_on_both_transports() {
    let (server, _) = server(&["echo.wasm", "probe.wasm"], Some(POLICY)).await;
    let mcp = McpSession::open(&server).await;
    let mut sse = RawSession::open(&server).await;
    sse.initialize().await;
    let mut seen = Vec::new();
    for agent in ["ops-agent", "support-agent", "nobody"] {
        let (fast_type, fast) = mcp_list(&mcp, agent, &list(1)).await;
        let (slow_type, slow) = mcp_list(&mcp, agent, &list_through_rmcp(2)).await;
        assert!(fast_type.starts_with("application/json"), "answered from the serialized list: {fast_type}");
        assert!(slow_type.starts_with("text/event-stream"), "answered by rmcp: {slow_type}");
        assert_eq!(fast["id"], 1);
        assert_eq!(fast["result"], slow["result"], "{agent} over /mcp");

        let fast_sse = sse_list(&mut sse, agent, &list(3)).await;
        let slow_sse = sse_list(&mut sse, agent, &list_through_rmcp(4)).await;
        assert_eq!(fast_sse["id"], 3);
        assert_eq!(fast_sse["result"], slow_sse["result"], "{agent} over legacy SSE");
        assert_eq!(fast_sse["result"], fast["result"], "{agent}: both transports list the same");
        seen.push(names(&fast["result"]));
    }
    assert!(seen[0].len() > seen[1].len() && seen[1].len() > seen[2].len(), "each caller its own list: {seen:?}");
    assert_eq!(seen[1], ["echo__stats", "health"]);
    assert_eq!(seen[2], Vec::<String>::new());
}

#[tokio::test]
async fn a_stateless_listing_is_the_same_bytes_rmcp_would_send_for_each_caller() {
    let (server, _) = server(&["echo.wasm", "probe.wasm"], Some(POLICY)).await;
    let mut seen = Vec::new();
    for agent in ["ops-agent", "support-agent", "nobody"] {
        let (status, fast_type, fast) = stateless_post(&server, agent, ACCEPT, "tools/list", &stateless_list(1)).await;
        let (_, slow_type, slow) = stateless_post(&server, agent, THROUGH_RMCP, "tools/list", &stateless_list(2)).await;
        assert_eq!(status, 200);
        assert!(fast_type.starts_with("application/json"), "answered from the serialized list: {fast_type}");
        assert!(slow_type.starts_with("text/event-stream"), "answered by rmcp: {slow_type}");
        assert_eq!(fast["id"], 1);
        assert_eq!(fast["result"], slow["result"], "{agent}");
        assert_eq!(fast["result"]["ttlMs"], 0, "2026-07-28 results carry cache hints: {fast}");
        seen.push(names(&fast["result"]));
    }
    assert!(seen[0].len() > seen[1].len() && seen[1].len() > seen[2].len(), "each caller its own list: {seen:?}");
    assert_eq!(seen[1], ["echo__stats", "health"]);
}

#[tokio::test]
async fn a_stateless_list_rmcp_would_refuse_is_still_refused() {
    let (server, _) = server(&["echo.wasm"], None).await;
    let version = |v: &str| {
        let mut meta = stateless_meta();
        meta["io.modelcontextprotocol/protocolVersion"] = json!(v);
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {"_meta": meta}})
    };
    let no_meta = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"});
    for (what, method_header, body) in [
        ("the Mcp-Method header names another method", "tools/call", stateless_list(5)),
        ("the body's version is not the header's", "tools/list", version("2025-11-25")),
        ("no request metadata", "tools/list", no_meta),
    ] {
        let (status, content_type, answer) = stateless_post(&server, "a", ACCEPT, method_header, &body).await;
        assert!(answer.get("result").is_none(), "{what}: listed anyway ({status}, {content_type}): {answer}");
        assert!(answer["error"]["code"].is_i64(), "{what}: a JSON-RPC error: {answer}");
    }
}

#[tokio::test]
async fn a_list_reusing_an_id_in_flight_is_refused_like_any_request() {
    let (server, _) = server(&["echo.wasm"], None).await;
    let mcp = McpSession::open(&server).await;
    let wait = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "echo__wait", "arguments": {"ms": 1500}}});
    let waiting = {
        let (http, url, id) = (mcp.http.clone(), mcp.url.clone(), mcp.id.clone());
        tokio::spawn(async move {
            http.post(url)
                .header("accept", ACCEPT)
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-11-25")
                .json(&wait)
                .send()
                .await
                .expect("POST")
                .text()
                .await
                .expect("body")
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, reused) = mcp_list(&mcp, "a", &list(7)).await;
    assert_eq!(reused["error"]["code"], -32600, "an id in flight is refused, list or not: {reused}");
    let answered = last_message(&waiting.await.expect("task"));
    assert_eq!(answered["id"], 7);
    assert!(answered.get("result").is_some(), "{answered}");
}

#[tokio::test]
async fn no_serialized_list_outlives_a_hot_reload_or_a_policy_change() {
    let (server, dir) = server(&["echo.wasm"], Some(POLICY)).await;
    let mcp = McpSession::open(&server).await;
    let mut sse = RawSession::open(&server).await;
    sse.initialize().await;
    let mut id = 10;
    // The three transports must list the same; a reload landing between two of the lists may make
    // one round differ, so a round is taken again, up to three rounds (one reload per step here).
    let mut lists = async |agent: &str| {
        let mut rounds = Vec::new();
        for _ in 0..3 {
            id += 2;
            let (_, over_mcp) = mcp_list(&mcp, agent, &list(id)).await;
            let over_sse = sse_list(&mut sse, agent, &list(id + 1)).await;
            let (_, _, stateless) = stateless_post(&server, agent, ACCEPT, "tools/list", &stateless_list(id)).await;
            let agree =
                over_mcp["result"] == over_sse["result"] && stateless["result"]["tools"] == over_mcp["result"]["tools"];
            if agree {
                return names(&over_mcp["result"]);
            }
            rounds.push((over_mcp, over_sse, stateless));
        }
        panic!("the transports list differently three times in a row: {rounds:?}");
    };
    assert!(!lists("ops-agent").await.contains(&"pinned__greet".to_owned()));

    install(&dir.join("pinned.wasm"), &std::fs::read(plugin_file("pinned_v1.wasm")).expect("fixture"));
    until("the new plugin is listed in the open sessions", async || {
        lists("ops-agent").await.contains(&"pinned__greet".to_owned())
    })
    .await;
    assert_eq!(lists("support-agent").await, ["echo__stats", "health"]);

    let wider =
        POLICY.replace(r#"tools = ["echo__stats", "health"]"#, r#"tools = ["echo__stats", "echo__echo", "health"]"#);
    install(&dir.join("policy.toml"), wider.as_bytes());
    until("the policy change reaches the support agent's list", async || {
        lists("support-agent").await.contains(&"echo__echo".to_owned())
    })
    .await;
}

#[tokio::test]
async fn a_session_that_only_lists_for_a_while_is_still_open_for_a_call() {
    // The front door answers these lists without rmcp: rmcp must not take the session for idle.
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let server = TestServer::start_with(dir, |args| args.front_door.session_idle_secs = 1).await;
    let mcp = McpSession::open(&server).await;
    for id in 1..=6 {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let (content_type, listed) = mcp_list(&mcp, "a", &list(id)).await;
        assert!(content_type.starts_with("application/json"), "{content_type}");
        assert!(!names(&listed["result"]).is_empty());
    }
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                      "params": {"name": "echo__echo", "arguments": {"text": "still here"}}});
    let answer = mcp.ask(&call).await;
    assert_eq!(answer["result"]["content"][0]["text"], "still here", "{answer}");
}
