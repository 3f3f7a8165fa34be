//! Plugin discovery: bad files (including components built against another world version) are
//! reported by name and skipped; good plugins still serve. Large components compile in the
//! background while the others serve, and `/readyz` waits for them.

use std::time::{Duration, Instant};

use crate::support::{TestServer, plugins_dir};

fn tool_names(server: &TestServer) -> Vec<String> {
    server.app_registry.tools().map(|t| t.name.to_string()).collect()
}

#[tokio::test]
async fn a_wrong_world_or_broken_file_is_refused_by_name_and_the_rest_serve() {
    let dir = plugins_dir(
        &["echo.wasm", "not_a_plugin.wasm"],
        &[("garbage.wasm", b"this is not wasm"), ("notes.txt", b"ignored: not a .wasm file")],
    );
    let server = TestServer::start_with(dir, |_| {}).await;
    assert_eq!(server.load_errors.len(), 2, "{:?}", server.load_errors);
    let wrong_world = server.load_errors.iter().find(|e| e.contains("not_a_plugin.wasm")).expect("named");
    assert!(wrong_world.contains("not a sanctum plugin"), "{wrong_world}");
    let garbage = server.load_errors.iter().find(|e| e.contains("garbage.wasm")).expect("named");
    assert!(garbage.contains("not a valid WebAssembly component"), "{garbage}");
    assert!(tool_names(&server).contains(&"echo__echo".to_owned()));
    assert!(server.refusals.is_empty(), "every echo tool is admitted: {:?}", server.refusals);
}

#[tokio::test]
async fn a_missing_plugins_directory_serves_only_the_health_tool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope");
    let server = TestServer::start_with(dir, |args| args.source.plugins = missing).await;
    assert_eq!(tool_names(&server), vec!["health".to_owned()]);
    assert!(server.load_errors.is_empty());
}

#[tokio::test]
async fn a_plugin_built_against_an_older_world_is_refused_naming_its_version() {
    // world_0_1.wasm: a plugin built with the guest SDK of sanctum:plugin@0.1.0, whose `content`
    // variant has fewer cases, so it could not type-check against this host's world.
    let server = TestServer::start(&["world_0_1.wasm", "echo.wasm"]).await;
    assert_eq!(server.load_errors.len(), 1, "{:?}", server.load_errors);
    let error = &server.load_errors[0];
    assert!(error.contains("world_0_1.wasm: built against sanctum:plugin@0.1.0;"), "{error}");
    assert!(error.contains("rebuild the plugin with the current guest SDK"), "{error}");
    assert!(tool_names(&server).contains(&"echo__echo".to_owned()), "the others still serve");
}

#[tokio::test]
async fn a_plugin_built_before_the_jobs_interface_still_loads_and_serves() {
    // echo_before_jobs.wasm: echo as built against sanctum:plugin@0.2.0 before `jobs` was added
    // to the world (a frozen copy; build.sh leaves it alone). Interfaces are only ever added, as
    // imports, so a component that does not use one never imports it and keeps loading.
    let frozen = std::fs::read(crate::support::plugin_file("echo_before_jobs.wasm")).expect("frozen fixture");
    let wit = std::fs::read_to_string(crate::support::repo_root().join("wit/plugin.wit")).expect("wit");
    assert!(wit.contains("interface jobs"), "the world this host serves has `jobs`");
    let server = TestServer::start_with(plugins_dir(&[], &[("echo.wasm", &frozen)]), |_| {}).await;
    assert!(server.load_errors.is_empty(), "{:?}", server.load_errors);
    let (client, _) = crate::support::connect(&server, crate::support::Path_::StreamableHandshake).await;
    let result = client
        .call_tool(crate::support::call("echo__echo", serde_json::json!({"text": "still here"})))
        .await
        .expect("call");
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert!(crate::support::text(&result).contains("still here"), "{result:?}");
}

#[tokio::test]
async fn large_plugins_compile_in_the_background_while_the_server_serves_and_readyz_waits() {
    // Every component counts as large here (0 MiB), one compiles at a time, and nothing is in a
    // compile cache: three compiles of ~0.5 s or more each, queued behind one another.
    let dir = plugins_dir(&["echo.wasm", "probe.wasm", "devops.wasm"], &[]);
    let server = TestServer::start_with(dir, |args| {
        args.background_compile_mib = 0;
        args.source.store.cache_dir = Some("off".into());
    })
    .await;
    assert!(server.load_errors.is_empty(), "{:?}", server.load_errors);
    // Serving before a single plugin compiled: liveness yes, readiness not yet, and why.
    let http = reqwest::Client::new();
    assert_eq!(http.get(server.url("/healthz")).send().await.expect("healthz").status(), 200);
    let readyz = http.get(server.url("/readyz")).send().await.expect("readyz");
    assert_eq!(readyz.status(), 503);
    assert!(readyz.text().await.expect("body").contains("still compiling"));
    assert!(!tool_names(&server).iter().any(|t| t.starts_with("devops__")), "devops cannot have compiled yet");

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = http.get(server.url("/readyz")).send().await.expect("readyz").status() == 200;
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the background compiles never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names = tool_names(&server);
    for tool in ["echo__echo", "probe__read_file", "devops__deploy"] {
        assert!(names.contains(&tool.to_owned()), "{tool} is served once compiled: {names:?}");
    }
}
