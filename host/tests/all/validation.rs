//! Plugin-declared schemas cannot make validation a denial of service: the `schema_bomb`
//! fixture declares a pattern only a backtracking engine runs (refused when it loads, naming
//! where), and input and output schemas that would take 2^40 pattern matches to check. Those
//! are stopped at the validation budget with a clear error, on the worker, while `/healthz`
//! and other callers are answered; the next call works.

use std::time::{Duration, Instant};

use sanctum::model::CallFailure;
use sanctum::model::{CallContext, Content};
use sanctum::registry::CallError;
use sanctum::runtime::VALIDATION_BUDGET;
use serde_json::{Value, json};

use crate::support::TestServer;

async fn run(server: &TestServer, tool: &str, args: Value) -> Result<Vec<Content>, CallError> {
    let Value::Object(args) = args else { panic!("object") };
    server.app_registry.call(tool, Some(args), CallContext::default()).await.map(|done| done.content)
}

#[tokio::test]
async fn a_pattern_that_needs_backtracking_is_refused_at_load_and_the_other_tools_serve() {
    let server = TestServer::start(&["schema_bomb.wasm"]).await;
    let [refusal] = &server.refusals[..] else { panic!("one refusal: {:?}", server.refusals) };
    assert!(refusal.contains("schema_bomb/lookahead") && refusal.contains("linear-time engine"), "{refusal}");
    assert!(refusal.contains("/properties/s/pattern"), "names where: {refusal}");
    let fine = run(&server, "schema_bomb__fine", json!({"s": "ok"})).await.expect("served");
    assert_eq!(fine, vec![Content::Text("ok".into())]);
}

#[tokio::test]
async fn a_schema_too_costly_to_check_is_stopped_at_its_budget_without_starving_anyone() {
    let server = TestServer::start(&["schema_bomb.wasm", "echo.wasm"]).await;
    // Warm: the validator is compiled and the plugins answer.
    run(&server, "echo__echo", json!({"text": "warm"})).await.expect("echo");

    let registry = std::sync::Arc::clone(&server.app_registry);
    let started = Instant::now();
    let bomb = tokio::spawn(async move {
        let Value::Object(args) = json!({"s": "ab".repeat(500)}) else { unreachable!() };
        let outcome = registry.call("schema_bomb__exponential", Some(args), CallContext::default()).await;
        (outcome, started.elapsed())
    });
    // While the worker is busy with it, the HTTP side answers: /healthz completes before the
    // call does (which takes at least the budget).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(!bomb.is_finished(), "/healthz waited for the validation");

    let (outcome, took) = bomb.await.expect("task");
    match outcome {
        Err(CallError::Failed(CallFailure::ValidationStopped(why))) => {
            assert!(why.contains("was stopped") && why.contains("too costly"), "{why}");
        }
        other => panic!("expected the validation to be stopped, got {other:?}"),
    }
    assert!(took < VALIDATION_BUDGET + Duration::from_secs(3), "stopped near the budget: {took:?}");

    // A result checked against a costly output schema is stopped the same way.
    match run(&server, "schema_bomb__costly_output", json!({"s": "ab".repeat(500)})).await {
        Err(CallError::Failed(CallFailure::InvalidResult(why))) => {
            assert!(why.contains("output schema was stopped"), "{why}");
        }
        other => panic!("expected the output check to be stopped, got {other:?}"),
    }
    let after = run(&server, "echo__echo", json!({"text": "next"})).await.expect("the next call works");
    assert_eq!(after, vec![Content::Text("next".into())]);
    let invalid = run(&server, "echo__echo", json!({"text": 5})).await;
    assert!(matches!(invalid, Err(CallError::InvalidArguments { .. })), "{invalid:?}");
}
