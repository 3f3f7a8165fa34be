//! Hostile plugins are contained: each failure ends its own call with a clear tool error, and
//! the next call succeeds. Driven through the registry (the same gate MCP calls pass).

use sanctum::config::AllocatorArg;
use sanctum::model::CallFailure;
use sanctum::model::{CallContext, Content};
use sanctum::registry::{CallError, Completed};
use serde_json::{Value, json};

use crate::support::{TestServer, plugins_dir};

async fn hostile_server() -> TestServer {
    hostile_server_allocating(AllocatorArg::Pooling).await
}

async fn hostile_server_allocating(allocator: AllocatorArg) -> TestServer {
    // A short deadline keeps the timeout test fast; memory stays at the 64 MiB default.
    TestServer::start_with(plugins_dir(&["echo.wasm", "hostile.wasm"], &[]), |args| {
        args.sandbox.call_timeout_ms = 500;
        args.audit = "audit.jsonl".into(); // relative: rewritten into the test's own directory below
        args.sandbox.instance_allocator = allocator;
    })
    .await
}

/// The outcome the audit trail recorded for the last call of `tool`.
fn audited_outcome(server: &TestServer, tool: &str) -> String {
    let log = std::fs::read_to_string(server.audit_path()).expect("audit log");
    let record = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|r| r["event"] == "tool_call" && r["tool"] == tool)
        .expect("a tool_call record");
    record["outcome"].as_str().expect("outcome").to_owned()
}

async fn run(server: &TestServer, tool: &str, args: Value) -> Result<Completed, CallError> {
    let Value::Object(args) = args else { panic!("object") };
    server.app_registry.call(tool, Some(args), CallContext::default()).await
}

async fn assert_still_serving(server: &TestServer) {
    let ok = run(server, "echo__echo", json!({"text": "alive"})).await.expect("the next call succeeds");
    assert_eq!(ok.content, vec![Content::Text("alive".into())]);
}

#[tokio::test]
async fn a_trap_quotes_the_panic_and_the_next_call_succeeds() {
    let server = hostile_server().await;
    match run(&server, "hostile__trap", json!({})).await {
        Err(CallError::Failed(CallFailure::Crashed(message))) => {
            assert!(message.contains("panicked at"), "{message}");
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(audited_outcome(&server, "trap"), "crashed");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_the_deadline() {
    let server = hostile_server().await;
    match run(&server, "hostile__spin", json!({})).await {
        Err(CallError::Failed(CallFailure::Timeout(budget))) => assert_eq!(budget.as_millis(), 500),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(audited_outcome(&server, "spin"), "timeout");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let server = hostile_server().await;
    let within = run(&server, "hostile__alloc", json!({"mib": 16})).await.expect("16 MiB fits in 64");
    assert_eq!(within.content, vec![Content::Text("allocated 16 MiB".into())]);
    match run(&server, "hostile__alloc", json!({"mib": 512})).await {
        Err(CallError::Failed(CallFailure::MemoryLimit(limit))) => assert_eq!(limit, 64 << 20),
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert_eq!(audited_outcome(&server, "alloc"), "memory_limit");
    assert_still_serving(&server).await;
}

/// With either allocator, a call starts from the plugin's pristine memory: nothing an earlier
/// call wrote (static data, grown pages) survives, and a memory bomb leaves the next call whole.
#[tokio::test]
async fn no_call_sees_what_an_earlier_call_left_in_memory() {
    for allocator in [AllocatorArg::Pooling, AllocatorArg::OnDemand] {
        let server = hostile_server_allocating(allocator).await;
        for mark in [7, 9, 11] {
            let result = run(&server, "hostile__residue", json!({"mark": mark})).await.expect("residue");
            assert_eq!(
                result.content,
                vec![Content::Text("previous mark 0, 0 non-zero bytes in fresh pages".into())],
                "{allocator:?}, call marking {mark}"
            );
        }
        match run(&server, "hostile__alloc", json!({"mib": 512})).await {
            Err(CallError::Failed(CallFailure::MemoryLimit(_))) => {}
            other => panic!("{allocator:?}: expected the memory limit, got {other:?}"),
        }
        let after = run(&server, "hostile__residue", json!({"mark": 1})).await.expect("residue");
        assert_eq!(after.content, vec![Content::Text("previous mark 0, 0 non-zero bytes in fresh pages".into())]);
        assert_still_serving(&server).await;
    }
}

#[tokio::test]
async fn unbounded_recursion_exhausts_the_wasm_stack_not_the_host() {
    let server = hostile_server().await;
    match run(&server, "hostile__recurse", json!({})).await {
        Err(CallError::Failed(CallFailure::StackOverflow)) => {}
        other => panic!("expected a stack overflow, got {other:?}"),
    }
    assert_eq!(audited_outcome(&server, "recurse"), "stack_overflow");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn huge_output_is_truncated_with_a_note() {
    let server = hostile_server().await;
    let flooded = run(&server, "hostile__flood", json!({"kib": 4096})).await.expect("a truncated result");
    let [Content::Text(text)] = &flooded.content[..] else { panic!("one text block") };
    assert!(text.len() < (1 << 20) + 200, "cut near the 1 MiB output limit, got {}", text.len());
    assert!(text.ends_with("bytes omitted]"), "the model is told: {}", &text[text.len() - 80..]);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn floods_of_stdout_and_log_messages_are_capped_not_fatal() {
    let server = hostile_server().await;
    // Past the 64 KiB capture cap the host discards what the guest writes, and the writes
    // still succeed: a plugin that prints a lot (Rust's `println!` panics on a failed write,
    // Python raises `BrokenPipeError`) finishes its call.
    let printed = run(&server, "hostile__stdout", json!({"kib": 1024})).await.expect("printing 1 MiB is not fatal");
    assert_eq!(printed.content, vec![Content::Text("ok".into())]);
    let logged = run(&server, "hostile__log_flood", json!({"count": 100_000})).await.expect("log flood returns");
    assert_eq!(logged.content, vec![Content::Text("ok".into())]);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn oversized_arguments_are_refused_before_the_plugin_runs() {
    let server = hostile_server().await;
    let huge = "x".repeat(1_500_000);
    match run(&server, "echo__echo", json!({ "text": huge })).await {
        Err(CallError::InvalidArguments { problems, .. }) => {
            assert!(problems[0].contains("the limit is 1048576"), "{problems:?}");
        }
        other => panic!("expected invalid arguments, got {other:?}"),
    }
    assert_still_serving(&server).await;
}

/// The `multi_memory` fixture's instance holds five linear memories: its own and four of 40 MiB
/// (each under the 64 MiB limit alone). The limit bounds their sum, under either allocator: at
/// 64 MiB the plugin cannot even be described; with room for all five it loads and answers.
#[tokio::test]
async fn the_memory_limit_bounds_every_memory_of_a_call_together() {
    for allocator in [AllocatorArg::Pooling, AllocatorArg::OnDemand] {
        let server = TestServer::start_with(plugins_dir(&["multi_memory.wasm", "echo.wasm"], &[]), |args| {
            args.sandbox.instance_allocator = allocator;
        })
        .await;
        let [refused] = &server.load_errors[..] else { panic!("{allocator:?}: {:?}", server.load_errors) };
        assert!(
            refused.contains("multi_memory.wasm") && refused.contains("memory limit of 64 MiB"),
            "{allocator:?}: {refused}"
        );
        assert_still_serving(&server).await;

        let roomy = TestServer::start_with(plugins_dir(&["multi_memory.wasm"], &[]), |args| {
            args.sandbox.instance_allocator = allocator;
            args.sandbox.memory_limit_mib = 256;
        })
        .await;
        assert!(roomy.load_errors.is_empty(), "{allocator:?}: {:?}", roomy.load_errors);
        let pong = run(&roomy, "multi_memory__ping", json!({})).await.expect("fits in 256 MiB");
        assert_eq!(pong.content, vec![Content::Text("pong".into())]);
    }
}
