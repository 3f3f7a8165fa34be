//! The call gate, against the real echo plugin on a real worker: what is refused before the
//! worker (unknown, held back, too large), what the validator refuses, what is normalised on
//! the way in, and what is counted.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::*;
use crate::audit::Audit;
use crate::model::Limits;
use crate::runtime::Runtime;

/// A registry over the bundled echo plugin on a real worker, with `pins`: the registry, the
/// metrics it counts in, and the plugin (for tests that reload it). Also used by `mcp`'s tests.
pub(crate) async fn echo_registry(pins: Pins) -> (Registry, Metrics, Arc<Plugin>) {
    let metrics = Metrics::new();
    let runtime =
        Arc::new(Runtime::new(Limits::default(), Audit::disabled(metrics.clone()), metrics.clone()).expect("runtime"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/echo.wasm");
    let echo = Arc::new(runtime.load(&path).await.expect("echo loads"));
    let worker = WorkerHandle::spawn(runtime, 4, metrics.clone()).expect("worker");
    let (registry, refusals) = Registry::build(vec![Arc::clone(&echo)], worker, pins, metrics.clone());
    assert!(refusals.is_empty(), "{refusals:?}");
    (registry, metrics, echo)
}

fn args(value: Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn text(completed: &Completed) -> &str {
    match completed.content.first() {
        Some(Content::Text(text)) => text,
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_tools_are_refused_by_name() {
    let (registry, ..) = echo_registry(Pins::disabled()).await;
    let error = registry.call("echo__nope", args(json!({})), CallContext::default()).await.expect_err("unknown");
    assert!(matches!(&error, CallError::UnknownTool(name) if name == "echo__nope"), "{error:?}");
}

#[tokio::test]
async fn schema_violations_name_the_tool_and_every_problem() {
    let (registry, ..) = echo_registry(Pins::disabled()).await;
    let error = registry
        .call("echo__echo", args(json!({"repeat": 11, "loud": true})), CallContext::default())
        .await
        .expect_err("invalid");
    let CallError::InvalidArguments { tool, problems } = &error else { panic!("{error:?}") };
    assert_eq!(tool, "echo__echo");
    let all = problems.join("; ");
    assert!(all.contains("text") && all.contains("11") && all.contains("loud"), "{all}");
    assert_eq!(registry.calls_in_flight(), 0);
}

#[tokio::test]
async fn oversized_arguments_are_refused_before_the_worker() {
    let (registry, ..) = echo_registry(Pins::disabled()).await;
    let huge = "x".repeat(MAX_ARGUMENT_BYTES);
    let error =
        registry.call("echo__echo", args(json!({"text": huge})), CallContext::default()).await.expect_err("too big");
    let CallError::InvalidArguments { problems, .. } = &error else { panic!("{error:?}") };
    assert!(problems[0].contains(&format!("the limit is {MAX_ARGUMENT_BYTES}")), "{problems:?}");
}

#[tokio::test]
async fn optional_nulls_are_absent_and_the_call_is_counted() {
    let (registry, metrics, _) = echo_registry(Pins::disabled()).await;
    let completed = registry
        .call("echo__echo", args(json!({"text": "hi", "repeat": null, "uppercase": null})), CallContext::default())
        .await
        .expect("a strict client's nulls are accepted");
    assert_eq!(text(&completed), "hi");
    assert_eq!(registry.calls_in_flight(), 0);
    let exported = metrics.encode();
    assert!(
        exported.lines().any(|l| l.starts_with("sanctum_calls_total")
            && l.contains("echo__echo")
            && l.contains("ok")
            && l.ends_with(" 1")),
        "{exported}"
    );
}

#[tokio::test]
async fn a_tool_whose_definition_changed_is_held_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut pins = Pins::load(&dir.path().join("pins.json")).expect("pins");
    pins.approve("echo__echo", "an earlier definition");
    let (registry, ..) = echo_registry(pins).await;
    let error =
        registry.call("echo__echo", args(json!({"text": "hi"})), CallContext::default()).await.expect_err("held");
    assert!(matches!(&error, CallError::HeldBack { tool } if tool == "echo__echo"), "{error:?}");
    assert!(registry.tools().all(|t| t.name.as_str() != "echo__echo"), "not listed either");
    assert!(registry.call("echo__stats", args(json!({"numbers": [1]})), CallContext::default()).await.is_ok());
}

#[test]
fn structured_content_is_checked_alike_with_and_without_an_output_schema() {
    for declared in [false, true] {
        assert_eq!(structured_content(Some(r#"{"a": 1}"#), declared).expect("an object"), Some(json!({"a": 1})));
        for bad in ["{not json", "[1, 2]", "3"] {
            let error = structured_content(Some(bad), declared).expect_err(bad);
            assert!(matches!(error, CallFailure::InvalidResult(_)), "{bad} (schema declared: {declared}): {error:?}");
        }
    }
    assert_eq!(structured_content(None, false).expect("optional without a schema"), None);
    assert!(matches!(structured_content(None, true), Err(CallFailure::InvalidResult(_))));
}
