//! The single worker: calls run one at a time, and a full queue answers "busy" at once.

use std::time::{Duration, Instant};

use sanctum::model::CallContext;
use sanctum::registry::{CallError, Completed};
use sanctum::worker::WorkerError;
use serde_json::{Value, json};

use crate::support::{TestServer, plugins_dir};

fn wait_call(server: &TestServer, ms: u64) -> impl Future<Output = Result<Completed, CallError>> + use<> {
    let registry = std::sync::Arc::clone(&server.app_registry);
    async move {
        let Value::Object(args) = json!({"ms": ms}) else { unreachable!() };
        registry.call("echo__wait", Some(args), CallContext::default()).await
    }
}

async fn until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_full_queue_answers_busy_at_once_and_queued_calls_still_run() {
    let server = TestServer::start_with(plugins_dir(&["echo.wasm"], &[]), |args| args.queue_capacity = 1).await;
    let registry = std::sync::Arc::clone(&server.app_registry);

    let running = tokio::spawn(wait_call(&server, 1_500));
    until(|| registry.health().worker_busy).await;
    let queued = tokio::spawn(wait_call(&server, 10));
    until(|| registry.health().queue_depth == 1).await;

    let started = Instant::now();
    match wait_call(&server, 10).await {
        Err(CallError::Worker(WorkerError::Busy { capacity: 1 })) => {}
        other => panic!("expected busy, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(1_000), "busy must not wait for the running call");

    assert!(running.await.expect("join").is_ok());
    assert!(queued.await.expect("join").is_ok(), "the queued call runs after the running one");
    assert_eq!(registry.health().queue_depth, 0);
}

#[tokio::test]
async fn calls_never_overlap() {
    let server = TestServer::start(&["echo.wasm"]).await;
    let started = Instant::now();
    let (a, b, c) = tokio::join!(wait_call(&server, 300), wait_call(&server, 300), wait_call(&server, 300));
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    // Three 300 ms busy-waits on one worker cannot finish sooner than 900 ms.
    assert!(started.elapsed() >= Duration::from_millis(900), "ran concurrently: {:?}", started.elapsed());
}
