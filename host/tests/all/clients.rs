//! Real rmcp clients over every path (Streamable HTTP handshake and stateless, legacy SSE):
//! listing, calling, validation, errors, traps, notifications and cancellation.

use std::time::{Duration, Instant};

use rmcp::model::{ErrorCode, LoggingLevel, NumberOrString, ProgressToken, RequestMetaObject};
use rmcp::service::ServiceError;
use serde_json::{Value, json};

use crate::support::{ALL_PATHS, Path_, TestServer, call, connect, no_args, text};

const PLUGINS: &[&str] = &["echo.wasm", "hostile.wasm"];

#[tokio::test]
async fn tools_are_listed_in_name_order_with_strict_object_schemas() {
    let server = TestServer::start(PLUGINS).await;
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;
        let tools = client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "{path:?}: deterministic name order");
        for expected in
            ["echo__echo", "echo__fail", "echo__progress", "echo__stats", "echo__wait", "health", "hostile__trap"]
        {
            assert!(names.contains(&expected), "{path:?}: {expected} missing from {names:?}");
        }
        for tool in &tools {
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")), "{}", tool.name);
            let valid_name = tool.name.len() <= 48
                && tool.name.starts_with(|c: char| c.is_ascii_lowercase())
                && tool.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            assert!(valid_name, "{}", tool.name);
        }
        let echo = tools.iter().find(|t| t.name == "echo__echo").expect("echo");
        assert_eq!(echo.annotations.as_ref().and_then(|a| a.read_only_hint), Some(true));
        let stats = tools.iter().find(|t| t.name == "echo__stats").expect("stats");
        assert!(stats.output_schema.is_some(), "declared output schema is listed");
        let info = client.peer_info().expect("server info");
        let server_info = info.server_info.as_ref().expect("serverInfo");
        assert_eq!(server_info.name, "sanctum");
        assert_eq!(server_info.version, env!("CARGO_PKG_VERSION"));
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn a_valid_call_runs_the_plugin() {
    let server = TestServer::start(PLUGINS).await;
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;
        let result = client.call_tool(call("echo__echo", json!({"text": "hi", "repeat": 3}))).await.expect("call");
        assert_eq!(result.is_error, Some(false), "{path:?}");
        assert_eq!(text(&result), "hi hi hi", "{path:?}");

        let nulls = json!({"text": "a", "repeat": null, "uppercase": null});
        let result = client.call_tool(call("echo__echo", nulls)).await.expect("call");
        assert_eq!(text(&result), "a", "{path:?}: explicit nulls mean absent");

        let result = client.call_tool(call("echo__stats", json!({"numbers": [1, 2, 6]}))).await.expect("call");
        let structured = result.structured_content.expect("structured content");
        assert_eq!(structured["sum"], json!(9.0), "{path:?}");
        assert_eq!(structured["mean"], json!(3.0), "{path:?}");

        let health = client.call_tool(no_args("health")).await.expect("health");
        let report: Value = serde_json::from_str(text(&health)).expect("health is JSON");
        assert_eq!(report["status"], "ok");
        assert_eq!(report["plugins"].as_array().map(Vec::len), Some(2));
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn schema_violations_are_tool_errors_and_the_plugin_never_runs() {
    let server = TestServer::start(PLUGINS).await;
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;
        let result = client
            .call_tool(call("echo__echo", json!({"text": 5, "repeat": 99, "shout": true})))
            .await
            .expect("a tool result, not a protocol error");
        assert_eq!(result.is_error, Some(true), "{path:?}");
        let message = text(&result);
        assert!(message.starts_with("invalid arguments for echo__echo:"), "{message}");
        for part in ["/text", "/repeat", "shout"] {
            assert!(message.contains(part), "{path:?}: {part} not in {message}");
        }
        // Had the plugin run, this would hold the worker for 60 s.
        let started = Instant::now();
        let result = client.call_tool(call("echo__wait", json!({"ms": 60_000, "extra": 1}))).await.expect("result");
        assert_eq!(result.is_error, Some(true));
        assert!(started.elapsed() < Duration::from_secs(20), "validation happens before the plugin runs");
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn an_unknown_tool_is_a_json_rpc_error() {
    let server = TestServer::start(PLUGINS).await;
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;
        match client.call_tool(no_args("no_such__tool")).await {
            Err(ServiceError::McpError(e)) => {
                assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{path:?}");
                assert!(e.message.contains("unknown tool"), "{}", e.message);
            }
            other => panic!("{path:?}: expected a JSON-RPC error, got {other:?}"),
        }
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn plugin_errors_and_traps_are_tool_errors_and_the_server_keeps_serving() {
    let server = TestServer::start(PLUGINS).await;
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;
        let failed = client.call_tool(call("echo__fail", json!({"reason": "disk full"}))).await.expect("result");
        assert_eq!(failed.is_error, Some(true));
        assert_eq!(text(&failed), "failed as asked: disk full");

        let trapped = client.call_tool(no_args("hostile__trap")).await.expect("result");
        assert_eq!(trapped.is_error, Some(true), "{path:?}");
        assert!(text(&trapped).starts_with("the plugin crashed"), "{}", text(&trapped));

        let after = client.call_tool(call("echo__echo", json!({"text": "still here"}))).await.expect("call");
        assert_eq!(text(&after), "still here", "{path:?}: next call after a trap");
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn progress_and_log_notifications_reach_the_caller() {
    let server = TestServer::start(PLUGINS).await;
    for path in ALL_PATHS {
        let (client, recorder) = connect(&server, path).await;
        let mut request = call("echo__progress", json!({"steps": 4}));
        let mut meta = RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::String("job-1".into())));
        meta.set_log_level(LoggingLevel::Info); // 2026-07-28 sends logs only when asked per request
        request.meta = Some(meta);
        let result = client.call_tool(request).await.expect("call");
        assert_eq!(text(&result), "completed 4 steps");
        // Notifications precede the response on the wire; handlers may still be running.
        let deadline = Instant::now() + Duration::from_secs(5);
        while recorder.progress.lock().expect("lock").len() < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let progress: Vec<f64> = recorder.progress.lock().expect("lock").iter().map(|p| p.progress).collect();
        assert_eq!(progress, vec![1.0, 2.0, 3.0, 4.0], "{path:?}");
        while recorder.logs.lock().expect("lock").len() < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let logs = recorder.logs.lock().expect("lock").clone();
        assert_eq!(logs.len(), 4, "{path:?}");
        assert_eq!(logs[0].data, json!({"msg": "echo progress step 1"}));
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn cancelling_a_call_stops_it_in_the_sandbox_and_frees_the_worker() {
    let server = TestServer::start(PLUGINS).await;
    for path in ALL_PATHS {
        let (client, _) = connect(&server, path).await;
        // Dropping the call sends notifications/cancelled (rmcp cancels on drop).
        let gave_up =
            tokio::time::timeout(Duration::from_millis(300), client.call_tool(call("hostile__spin", json!({})))).await;
        assert!(gave_up.is_err(), "spin never returns on its own");
        let started = Instant::now();
        let after = client.call_tool(call("echo__echo", json!({"text": "next"}))).await.expect("call");
        assert_eq!(text(&after), "next");
        // The spin would otherwise hold the single worker until its 30 s deadline.
        assert!(started.elapsed() < Duration::from_secs(15), "{path:?}: took {:?}", started.elapsed());
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn images_are_returned_as_base64_blocks() {
    let server = TestServer::start(PLUGINS).await;
    let (client, _) = connect(&server, Path_::StreamableHandshake).await;
    let result = client.call_tool(no_args("echo__image")).await.expect("call");
    let image = result
        .content
        .iter()
        .find_map(|c| match c {
            rmcp::model::ContentBlock::Image(i) => Some(i),
            _ => None,
        })
        .expect("an image block");
    assert_eq!(image.mime_type, "image/png");
    assert!(image.data.starts_with("iVBOR"), "base64 of a PNG signature");
}
