//! `bare_tool_names` in the policy: a plugin's tools served under their own names (as the MCP
//! conformance suite calls them), off by default, and a clash between bare names refused for
//! every claimant and reported naming the plugins, never resolved by shadowing.

use rmcp::model::ErrorCode;
use rmcp::service::ServiceError;
use sanctum::model::CallContext;
use sanctum::registry::CallError;

use crate::support::{ALL_PATHS, TestServer, connect, no_args, plugins_dir, text};

const SIMPLE_TEXT: &str = "This is a simple text response for testing.";

/// A server over `files` with `policy` as its policy file.
async fn serve(files: &[&str], policy: &str) -> TestServer {
    let dir = plugins_dir(files, &[]);
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy).expect("write policy");
    TestServer::start_with(dir, |args| args.source.policy = Some(policy_path)).await
}

fn listed(server: &TestServer) -> Vec<String> {
    server.app_registry.tools().map(|t| t.name.to_string()).collect()
}

async fn is_unknown(server: &TestServer, name: &str) -> bool {
    matches!(server.app_registry.call(name, None, CallContext::default()).await, Err(CallError::UnknownTool(_)))
}

#[tokio::test]
async fn without_the_option_every_tool_keeps_its_plugin_prefix() {
    let server = serve(&["conformance.wasm"], "[plugins.conformance]\n").await;
    let names = listed(&server);
    assert!(names.contains(&"conformance__test_simple_text".to_owned()), "{names:?}");
    assert!(!names.contains(&"test_simple_text".to_owned()), "{names:?}");
    assert!(is_unknown(&server, "test_simple_text").await, "a bare name is not an alias");
}

#[tokio::test]
async fn bare_tool_names_serve_that_plugins_tools_unprefixed_over_every_path() {
    let server = serve(&["conformance.wasm", "echo.wasm"], "[plugins.conformance]\nbare_tool_names = true\n").await;
    let names = listed(&server);
    for expected in ["test_simple_text", "test_audio_content", "json_schema_2020_12_tool", "echo__echo", "health"] {
        assert!(names.contains(&expected.to_owned()), "{expected} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("conformance__")), "{names:?}");
    assert!(server.refusals.is_empty(), "{:?}", server.refusals);
    assert!(server.app_registry.health().problems.is_empty());
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;
        let result = client.call_tool(no_args("test_simple_text")).await.expect("call");
        assert_eq!((result.is_error, text(&result)), (Some(false), SIMPLE_TEXT), "{path:?}");
        match client.call_tool(no_args("conformance__test_simple_text")).await {
            Err(ServiceError::McpError(e)) => assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{path:?}"),
            other => panic!("{path:?}: the prefixed name is not served, got {other:?}"),
        }
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn a_bare_name_two_plugins_claim_is_served_by_neither_and_reported_naming_both() {
    let policy = "[plugins.conformance]\nbare_tool_names = true\n[plugins.twin]\nbare_tool_names = true\n";
    let server = serve(&["conformance.wasm", "twin.wasm"], policy).await;
    let names = listed(&server);
    assert!(!names.iter().any(|n| n.contains("test_simple_text")), "neither claimant is listed: {names:?}");
    assert!(is_unknown(&server, "test_simple_text").await, "nor callable");
    for served in ["test_image_content", "twin_only", "health"] {
        assert!(names.contains(&served.to_owned()), "{served} missing from {names:?}");
    }

    let refusal = |subject: &str| server.refusals.iter().find(|r| r.starts_with(subject)).cloned();
    let conformance = refusal("tool conformance/test_simple_text").expect("conformance's tool refused");
    assert!(conformance.contains("also claimed by plugin twin"), "{conformance}");
    let twin = refusal("tool twin/test_simple_text").expect("twin's tool refused");
    assert!(twin.contains("also claimed by plugin conformance"), "{twin}");
    let builtin = refusal("tool twin/health").expect("the built-in's name refused");
    assert!(builtin.contains("built-in health tool"), "{builtin}");
    assert_eq!(server.refusals.len(), 3, "{:?}", server.refusals);

    // `health` reports the clash (as `sanctum check` and the log do), and is still the host's.
    let health = server.app_registry.health();
    let reported = |needle: &str| health.problems.iter().any(|p| p.starts_with("refused ") && p.contains(needle));
    assert!(reported("tool conformance/test_simple_text") && reported("tool twin/test_simple_text"), "{health:?}");
    let answer = server.app_registry.call("health", None, CallContext::default()).await.expect("health");
    assert!(format!("{:?}", answer.content).contains("tool_count"), "the built-in answers: {answer:?}");
}

#[tokio::test]
async fn a_prefixed_plugin_never_clashes_with_a_bare_one() {
    let server = serve(&["conformance.wasm", "twin.wasm"], "[plugins.conformance]\nbare_tool_names = true\n").await;
    assert!(server.refusals.is_empty(), "{:?}", server.refusals);
    let (client, _) = connect(&server, ALL_PATHS[0]).await;
    let bare = client.call_tool(no_args("test_simple_text")).await.expect("call");
    assert_eq!(text(&bare), SIMPLE_TEXT);
    let prefixed = client.call_tool(no_args("twin__test_simple_text")).await.expect("call");
    assert_eq!(text(&prefixed), "twin");
    let twin_health = client.call_tool(no_args("twin__health")).await.expect("call");
    assert_eq!(text(&twin_health), "twin is fine");
    client.cancel().await.expect("close");
}
