//! The MCP handler's own decisions, over a real registry of the real echo plugin: how tools are
//! rendered, that the rendered list is reused until the registry changes and never outlives a
//! change, and the one place a call outcome becomes a JSON-RPC error or an `isError` result.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::model::CallFailure;
use crate::registry::HEALTH_TOOL;

async fn echo_server() -> (McpServer, Arc<crate::runtime::Plugin>) {
    let (registry, metrics, echo) = crate::registry::tests::echo_registry(crate::pins::Pins::disabled()).await;
    (McpServer::new(Arc::new(registry), metrics), echo)
}

fn names(tools: &[Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

#[tokio::test]
async fn tools_render_with_schemas_titles_and_annotations() {
    let (server, _) = echo_server().await;
    let tools = server.shared.tools();
    let stats = tools.iter().find(|t| t.name == "echo__stats").expect("stats listed");
    assert_eq!(stats.input_schema.get("type"), Some(&json!("object")));
    assert!(stats.output_schema.is_some(), "a declared output schema is listed");
    let annotations = stats.annotations.as_ref().expect("annotations");
    assert_eq!(annotations.read_only_hint, Some(true));
    assert!(names(&tools).contains(&HEALTH_TOOL.to_owned()), "the built-in health tool is listed");
}

#[tokio::test]
async fn the_rendered_list_is_reused_until_the_registry_changes_and_never_after() {
    let (server, echo) = echo_server().await;
    let first = server.shared.tools();
    assert!(Arc::ptr_eq(&first, &server.shared.tools()), "rendered once per generation");
    server.registry().replace(Vec::new());
    assert_eq!(names(&server.shared.tools()), vec![HEALTH_TOOL.to_owned()], "a reload is seen at once");
    server.registry().replace(vec![echo]);
    assert_eq!(names(&server.shared.tools()), names(&first));
}

#[test]
fn unknown_tools_are_protocol_errors_and_everything_else_is_a_tool_result() {
    let unknown = render_outcome(Err(CallError::UnknownTool("x__y".into()))).expect_err("protocol error");
    assert!(unknown.message.contains("x__y"));
    let failed = render_outcome(Err(CallError::Failed(CallFailure::Timeout(std::time::Duration::from_secs(1)))))
        .expect("a tool result");
    assert_eq!(failed.is_error, Some(true));
}
