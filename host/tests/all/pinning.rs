//! Tool definition pinning and the `sanctum plugins` commands, by running the binary: a tool
//! whose definition changed (the `pinned` fixture: v2 rewords `greet`) is held back, by a hot
//! reload or at start-up, until an operator approves it.

use std::path::Path;
use std::process::Output;

use serde_json::json;

use crate::reload::{install, listed, streamable_session, until};
use crate::support::{TestServer, call, no_args, plugin_file, plugins_dir, text};

fn sanctum(args: &[&str]) -> Output {
    crate::support::sanctum_cli().args(args).output().expect("run sanctum")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "sanctum failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn plugins_cmd(command: &str, extra: &[&str], plugins: &Path, pins: &Path) -> Output {
    let mut args = vec!["plugins", command];
    args.extend_from_slice(extra);
    let (plugins, pins) = (plugins.display().to_string(), pins.display().to_string());
    args.extend_from_slice(&["--plugins", &plugins, "--pins", &pins, "--cache-dir", "off"]);
    sanctum(&args)
}

const HELD_BACK: &str = "tool pinned__greet changed since it was approved; an operator must run \
                         `sanctum plugins approve pinned__greet`";

#[tokio::test]
async fn a_changed_definition_is_held_back_until_an_operator_approves_it() {
    let pins_dir = tempfile::tempdir().expect("temp dir");
    let pins = pins_dir.path().join("pins.json");
    let dir = plugins_dir(&[], &[]);
    let plugins = dir.path().to_owned();
    std::fs::copy(plugin_file("pinned_v1.wasm"), plugins.join("pinned.wasm")).expect("copy");
    let pins_arg = pins.display().to_string();
    let server = TestServer::start_with(dir, |args| {
        args.watch = true;
        args.source.store.pins = Some(pins_arg);
    })
    .await;
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pins).expect("pins written")).expect("JSON");
    assert!(recorded["tools"]["pinned__greet"].is_string(), "first sight pins the tool: {recorded}");
    let (client, changes) = streamable_session(&server).await;

    install(&plugins.join("pinned.wasm"), &std::fs::read(plugin_file("pinned_v2.wasm")).expect("fixture"));
    until("greet is held back", async || !server.app_registry.held_back().is_empty()).await;
    until("the session heard greet go", async || changes.count() >= 1).await;
    let tools = listed(&client).await;
    assert!(!tools.contains(&"pinned__greet".to_owned()) && tools.contains(&"pinned__stable".to_owned()), "{tools:?}");
    let stable = client.call_tool(no_args("pinned__stable")).await.expect("call");
    assert_eq!(text(&stable), "pinned v2", "the unchanged tool serves from the new version");
    let refused = client.call_tool(call("pinned__greet", json!({"name": "Ada"}))).await.expect("a tool result");
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).starts_with(HELD_BACK), "{}", text(&refused));
    let health = server.app_registry.health();
    assert_eq!(health.held_back, vec!["pinned__greet".to_owned()]);

    let listing = stdout(&plugins_cmd("list", &[], &plugins, &pins));
    assert!(listing.contains("tool pinned__greet: changed"), "{listing}");
    let approved = stdout(&plugins_cmd("approve", &["pinned__greet"], &plugins, &pins));
    assert!(approved.contains("pinned__greet: approved (changed definition)"), "{approved}");

    // The running server picks the pin file change up.
    until("greet is listed again", async || listed(&client).await.contains(&"pinned__greet".to_owned())).await;
    until("the session heard greet come back", async || changes.count() >= 2).await;
    let greeted = client.call_tool(call("pinned__greet", json!({"name": "Ada"}))).await.expect("call");
    assert_eq!(text(&greeted), "hello, Ada (v2)");
    assert!(server.app_registry.health().held_back.is_empty());
}

#[tokio::test]
async fn a_definition_changed_while_stopped_is_held_back_at_start() {
    let pins_dir = tempfile::tempdir().expect("temp dir");
    let pins = pins_dir.path().join("pins.json");
    let dir = plugins_dir(&[], &[]);
    std::fs::copy(plugin_file("pinned_v1.wasm"), dir.path().join("pinned.wasm")).expect("copy");
    let approved = stdout(&plugins_cmd("approve", &["pinned"], dir.path(), &pins));
    assert!(approved.contains("pinned__greet: approved (new definition)"), "{approved}");
    assert!(approved.contains("pinned__stable: approved (new definition)"), "{approved}");
    std::fs::copy(plugin_file("pinned_v2.wasm"), dir.path().join("pinned.wasm")).expect("copy");

    let pins_arg = pins.display().to_string();
    let server = TestServer::start_with(dir, |args| args.source.store.pins = Some(pins_arg)).await;
    let names: Vec<String> = server.app_registry.tools().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["health", "pinned__stable"]);
    let refused = server.app_registry.call("pinned__greet", None, Default::default()).await;
    assert!(matches!(refused, Err(sanctum::registry::CallError::HeldBack { .. })), "{refused:?}");
}

#[test]
fn plugins_list_shows_versions_pin_status_and_grants() {
    let pins_dir = tempfile::tempdir().expect("temp dir");
    let pins = pins_dir.path().join("pins.json");
    let dir = plugins_dir(&["echo.wasm", "probe.wasm"], &[("broken.wasm", b"not wasm")]);
    std::fs::copy(plugin_file("pinned_v1.wasm"), dir.path().join("pinned.wasm")).expect("copy");
    stdout(&plugins_cmd("approve", &["pinned__greet", "echo"], dir.path(), &pins));
    std::fs::copy(plugin_file("pinned_v2.wasm"), dir.path().join("pinned.wasm")).expect("copy");

    let listing = stdout(&plugins_cmd("list", &[], dir.path(), &pins));
    for expected in [
        "plugin echo 0.1.0",
        "  tool echo__echo: approved",
        "plugin pinned 2.0.0",
        "  tool pinned__greet: changed",
        "  tool pinned__stable: new",
        "plugin probe",
        "  grants: granted -; missing command echo, config greeting, directory /data, http 127.0.0.1; unused -",
        "error: ",
    ] {
        assert!(listing.contains(expected), "missing {expected:?} in:\n{listing}");
    }
    assert!(listing.lines().any(|l| l.starts_with("error: ") && l.contains("broken.wasm")), "{listing}");

    let unknown = plugins_cmd("approve", &["nope"], dir.path(), &pins);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no loaded plugin or tool is named \"nope\""));
}

#[test]
fn plugins_inspect_shows_the_world_check_tools_schemas_and_needs() {
    let file = plugin_file("probe.wasm").display().to_string();
    let report = stdout(&sanctum(&["plugins", "inspect", &file]));
    for expected in [
        "world: sanctum:plugin/plugin@0.2.0 (ok)",
        "plugin: probe 0.1.0",
        "needs:\n  command echo\n  directory /data\n  config greeting\n  http 127.0.0.1\n",
        "tool probe__read_file",
        "  input schema: {",
        "definition sha256: ",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
    }
    let pinned = stdout(&sanctum(&["plugins", "inspect", &plugin_file("pinned_v1.wasm").display().to_string()]));
    assert!(
        pinned.contains("needs: nothing") && pinned.contains("  description: Greet someone by name.\n"),
        "{pinned}"
    );

    let wrong = sanctum(&["plugins", "inspect", &plugin_file("not_a_plugin.wasm").display().to_string()]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not a sanctum plugin"), "{wrong:?}");
}
