//! The compile cache across restarts: the second start loads every plugin from the artefacts
//! the first one wrote (and is faster); a tampered artefact is refused and recompiled.

use std::path::Path;
use std::time::{Duration, Instant};

use sanctum::config::ServeArgs;
use sanctum::runtime::CacheCounts;

use crate::support::plugins_dir;

/// Start and stop the app over `plugins` with the cache at `cache`: what the cache did, and how
/// long loading took.
async fn start_and_stop(plugins: &Path, cache: &Path) -> (CacheCounts, Duration, Vec<String>) {
    let mut args = ServeArgs::for_plugins(plugins);
    args.source.store.cache_dir = Some(cache.display().to_string());
    let started = Instant::now();
    let app = sanctum::app::build(&args).await.expect("app builds");
    let took = started.elapsed();
    let tools = app.registry.tools().map(|t| t.name.to_string()).collect();
    app.shutdown.stop.cancel();
    (app.compile_cache, took, tools)
}

#[tokio::test]
async fn a_restart_reuses_compiled_plugins_and_a_tampered_artefact_is_recompiled() {
    let dir = plugins_dir(&["echo.wasm", "devops.wasm"], &[]);
    let cache_root = tempfile::tempdir().expect("temp dir");
    let cache_dir = cache_root.path().join("sanctum");
    // The key and artefacts live in the root's private subdirectory.
    let cache = cache_dir.join("private");

    let (first, cold, tools) = start_and_stop(dir.path(), &cache_dir).await;
    assert_eq!(first, CacheCounts { hits: 0, misses: 2, rejected: 0 });
    let (second, warm, again) = start_and_stop(dir.path(), &cache_dir).await;
    assert_eq!(second, CacheCounts { hits: 2, misses: 0, rejected: 0 });
    assert_eq!(tools, again, "the same tools either way");
    assert!(warm < cold, "loading from the cache ({warm:?}) is faster than compiling ({cold:?})");

    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&cache).expect("cache dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the cache directory is private");
    let key_mode = std::fs::metadata(cache.join("key")).expect("key").permissions().mode() & 0o777;
    assert_eq!(key_mode, 0o600, "the key is private");

    // Flip one byte of each artefact's native code: the tag no longer matches.
    let artefacts: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .flat_map(|engine_dir| std::fs::read_dir(engine_dir.path()).expect("engine dir").filter_map(Result::ok))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artefacts.len(), 2, "{artefacts:?}");
    for artefact in &artefacts {
        let mut bytes = std::fs::read(artefact).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(artefact, &bytes).expect("tamper");
    }
    let (third, _, served) = start_and_stop(dir.path(), &cache_dir).await;
    assert_eq!(third, CacheCounts { hits: 0, misses: 0, rejected: 2 });
    assert_eq!(served, tools, "refused artefacts are recompiled, and everything serves");
    let (fourth, _, _) = start_and_stop(dir.path(), &cache_dir).await;
    assert_eq!(fourth, CacheCounts { hits: 2, misses: 0, rejected: 0 }, "the rewritten artefacts are used");
}

#[test]
fn the_binary_logs_cache_hits_on_the_second_run() {
    let dir = plugins_dir(&["echo.wasm"], &[]);
    let cache_root = tempfile::tempdir().expect("temp dir");
    let cache = cache_root.path().join("c").display().to_string();
    let plugins = dir.path().display().to_string();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sanctum"))
            .args(["check", "--plugins", &plugins, "--cache-dir", &cache, "--pins", "off", "--audit", "off"])
            .env_remove("SANCTUM_POLICY")
            .env("SANCTUM_LOG", "info")
            .output()
            .expect("run sanctum check")
    };
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stderr).contains("compile cache miss"));
    let second = run();
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(log.contains("compile cache hit") && !log.contains("compile cache miss"), "{log}");
}
