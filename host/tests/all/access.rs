//! Who may do what, end to end: two principals (one in the `ops` group) and two agents
//! (`X-Agent-Id`), on every transport and protocol era, against the real server and the real
//! echo plugin. Listings are filtered per caller; refused calls are tool errors naming the
//! rule and are audited with the whole decision; conditions on arguments fail closed; a
//! policy change reaches only the sessions whose listing it changes.

use std::collections::HashMap;

use rmcp::ServiceExt;
use rmcp::model::{CallToolResult, Tool};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::reload::{Changes, until};
use crate::support::{ALL_PATHS, Client, Path_, Recorder, TestServer, call, plugins_dir, sse_client, text};

const LETTA: &str = "letta-token-0123456789abcdef";
const CI: &str = "ci-token-0123456789abcdef012";
const TOKENS: &str = "[[token]]\nprincipal = \"letta\"\ngroups = [\"ops\"]\nvalue = \"letta-token-0123456789abcdef\"\n\
                      [[token]]\nprincipal = \"ci\"\nvalue = \"ci-token-0123456789abcdef012\"\n";

const POLICY: &str = r#"
[access]
default = "deny"

[[access.rule]]
name = "ops-echo"
groups = ["ops"]
agents = ["ops-agent"]
tools = ["echo__*"]
effect = "allow"

[[access.rule]]
name = "support-reads"
principals = ["letta"]
agents = ["support-agent"]
tools = ["echo__stats"]
effect = "allow"

[[access.rule]]
name = "no-shouting"
tools = ["echo__echo"]
effect = "deny"
when = [{ pointer = "/uppercase", equals = true }]

[[access.rule]]
name = "health-for-all"
tools = ["health"]
effect = "allow"
"#;

async fn server(policy: &str) -> (TestServer, std::path::PathBuf) {
    let dir = plugins_dir(&["echo.wasm"], &[("tokens.toml", TOKENS.as_bytes()), ("policy.toml", policy.as_bytes())]);
    let tokens = dir.path().join("tokens.toml");
    let policy_path = dir.path().join("policy.toml");
    let server = TestServer::start_with(dir, {
        let policy_path = policy_path.clone();
        move |args| {
            args.front_door.auth_tokens_file = Some(tokens);
            args.source.policy = Some(policy_path);
            args.audit = "audit.jsonl".into();
            args.watch = true;
        }
    })
    .await;
    (server, policy_path)
}

fn headers(token: &str, agent: Option<&str>) -> HashMap<http::HeaderName, http::HeaderValue> {
    let mut headers = HashMap::new();
    if let Some(agent) = agent {
        headers.insert(http::HeaderName::from_static("x-agent-id"), agent.parse().expect("header"));
    }
    let _ = token;
    headers
}

/// A client of `path` presenting `token` and, if given, `X-Agent-Id: agent`.
async fn connect<H: rmcp::ClientHandler + Clone>(
    server: &TestServer,
    path: Path_,
    token: &str,
    agent: Option<&str>,
    handler: H,
) -> rmcp::service::RunningService<rmcp::RoleClient, H> {
    match path {
        Path_::StreamableHandshake | Path_::StreamableStateless => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(token);
            config.custom_headers = headers(token, agent);
            let transport = StreamableHttpClientTransport::from_config(config);
            if path == Path_::StreamableStateless {
                let mode = ClientLifecycleMode::Discover {
                    preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                };
                handler.serve_with_lifecycle(transport, mode).await.expect("discover over /mcp")
            } else {
                handler.serve(transport).await.expect("handshake over /mcp")
            }
        }
        Path_::LegacySse => {
            let mut default_headers = reqwest::header::HeaderMap::new();
            default_headers.insert("authorization", format!("Bearer {token}").parse().expect("header"));
            if let Some(agent) = agent {
                default_headers.insert("x-agent-id", agent.parse().expect("header"));
            }
            let http = reqwest::Client::builder().default_headers(default_headers).build().expect("client");
            let transport = sse_client::connect_with(&server.url("/sse"), http).await;
            handler.serve(transport).await.expect("handshake over /sse")
        }
    }
}

fn names(tools: &[Tool]) -> Vec<String> {
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

async fn tool_call(client: &Client, name: &str, args: Value) -> CallToolResult {
    client.call_tool(call(name, args)).await.expect("a tool result, not a protocol error")
}

#[tokio::test]
async fn each_caller_sees_and_calls_only_what_the_rules_allow_on_every_transport() {
    let (server, _) = server(POLICY).await;
    for path in ALL_PATHS {
        let recorder = Recorder { protocol: Some(rmcp::model::ProtocolVersion::V_2025_11_25), ..Recorder::default() };
        let ops = connect(&server, path, LETTA, Some("ops-agent"), recorder.clone()).await;
        let listed = names(&ops.list_all_tools().await.expect("list"));
        assert!(listed.len() > 3 && listed.iter().all(|n| n.starts_with("echo__") || n == "health"), "{listed:?}");
        let ok = tool_call(&ops, "echo__echo", json!({"text": "hi", "uppercase": false})).await;
        assert_eq!((ok.is_error, text(&ok)), (Some(false), "hi"), "{path:?}");
        let shout = tool_call(&ops, "echo__echo", json!({"text": "hi", "uppercase": true})).await;
        assert_eq!(shout.is_error, Some(true));
        assert!(text(&shout).contains("refused by access rule #3 \"no-shouting\""), "{path:?}: {}", text(&shout));
        assert!(text(&shout).contains("retrying will not change it"), "{}", text(&shout));
        // Absent: the deny rule's condition cannot be decided, so the deny applies.
        let absent = tool_call(&ops, "echo__echo", json!({"text": "hi"})).await;
        assert!(text(&absent).contains("#3 \"no-shouting\""), "{path:?}: {}", text(&absent));
        ops.cancel().await.expect("close");

        let support = connect(&server, path, LETTA, Some("support-agent"), recorder.clone()).await;
        assert_eq!(names(&support.list_all_tools().await.expect("list")), ["echo__stats", "health"], "{path:?}");
        let stats = tool_call(&support, "echo__stats", json!({"numbers": [1, 2]})).await;
        assert_eq!(stats.is_error, Some(false), "{path:?}");
        let refused = tool_call(&support, "echo__echo", json!({"text": "hi", "uppercase": false})).await;
        assert_eq!(refused.is_error, Some(true));
        assert!(text(&refused).contains("no access rule lets this caller"), "{path:?}: {}", text(&refused));
        support.cancel().await.expect("close");

        let ci = connect(&server, path, CI, None, recorder.clone()).await;
        assert_eq!(names(&ci.list_all_tools().await.expect("list")), ["health"], "{path:?}");
        // Claiming the ops agent does not make `ci` a member of `ops`.
        ci.cancel().await.expect("close");
        let ci_as_ops = connect(&server, path, CI, Some("ops-agent"), recorder).await;
        assert_eq!(names(&ci_as_ops.list_all_tools().await.expect("list")), ["health"], "{path:?}");
        let refused = tool_call(&ci_as_ops, "echo__stats", json!({"numbers": [1]})).await;
        assert_eq!(refused.is_error, Some(true), "{path:?}");
        ci_as_ops.cancel().await.expect("close");
    }
    let records = server.audit_records();
    let denial =
        records.iter().find(|r| r["event"] == "access" && r["rule"] == "no-shouting").expect("the refusal is audited");
    assert_eq!(denial["decision"], "deny");
    assert_eq!(denial["principal"], "letta");
    assert_eq!(denial["agent_id"], "ops-agent");
    assert_eq!(denial["groups"], json!(["ops"]));
    assert_eq!(denial["rule_index"], 3);
    assert_eq!(denial["matched"], json!(["#1 ops-echo", "#3 no-shouting"]));
    assert!(denial["arguments_sha256"].as_str().is_some_and(|d| d.len() == 64));
    assert!(!denial.to_string().contains("\"hi\""), "argument values never reach the audit log");
    let by_default = records.iter().find(|r| r["event"] == "access" && r["by_default"] == true).expect("default");
    assert_eq!(by_default["decision"], "deny");
    assert!(
        !records.iter().any(|r| r["event"] == "tool_call" && r["principal"] == "ci" && r["tool"] != "health"),
        "nothing refused ran"
    );
}

#[tokio::test]
async fn a_policy_change_reaches_the_sessions_it_affects_and_only_those() {
    let (server, policy_path) = server(POLICY).await;
    let ci_changes = Changes::default();
    let ci = connect(&server, Path_::StreamableHandshake, CI, None, ci_changes.clone()).await;
    let ops_changes = Changes::default();
    let ops = connect(&server, Path_::LegacySse, LETTA, Some("ops-agent"), ops_changes.clone()).await;
    let before = names(&ops.list_all_tools().await.expect("list"));
    assert_eq!(names(&ci.list_all_tools().await.expect("list")), ["health"]);

    let granted = format!(
        "{POLICY}\n[[access.rule]]\nname = \"ci-stats\"\nprincipals = [\"ci\"]\ntools = [\"echo__stats\"]\neffect = \"allow\"\n"
    );
    crate::reload::install(&policy_path, granted.as_bytes());
    until("ci hears that its listing changed", async || ci_changes.count() > 0).await;
    assert_eq!(names(&ci.list_all_tools().await.expect("list")), ["echo__stats", "health"]);
    let stats = ci.call_tool(call("echo__stats", json!({"numbers": [3]}))).await.expect("result");
    assert_eq!(stats.is_error, Some(false));
    assert_eq!(names(&ops.list_all_tools().await.expect("list")), before);
    assert_eq!(ops_changes.count(), 0, "the ops session's listing did not change, so it was not told");

    // Withdrawn again: the next call is refused at once.
    crate::reload::install(&policy_path, POLICY.as_bytes());
    until("ci hears the withdrawal", async || ci_changes.count() > 1).await;
    let refused = ci.call_tool(call("echo__stats", json!({"numbers": [3]}))).await.expect("result");
    assert_eq!(refused.is_error, Some(true));
    ci.cancel().await.expect("close");
    ops.cancel().await.expect("close");
}

#[tokio::test]
async fn an_invalid_access_section_stops_start_up_naming_the_key() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let policy_path = dir.path().join("policy.toml");
    let bad = "[access]\ndefault = \"deny\"\n[[access.rule]]\ntools = [\"*\"]\neffect = \"allow\"\n\
               when = [{ pointer = \"/a\", matches = \"(x)\\\\1\" }]\n";
    std::fs::write(&policy_path, bad).expect("write");
    let mut args = sanctum::config::ServeArgs::for_plugins(dir.path());
    args.source.policy = Some(policy_path);
    let error = sanctum::app::build(&args).await.expect_err("refused");
    assert!(format!("{error:#}").contains("access.rule[0].when[0].matches"), "{error:#}");
}
