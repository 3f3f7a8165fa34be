//! Start-up: separate server processes, each timed from spawn to its `listening` line and to
//! the first `tools/list` (stateless POST, polled every millisecond) that lists every expected
//! tool, then left idle briefly and its resident memory read. Cold = a fresh compile cache;
//! warm = the same cache again (the median of several starts).
//!
//! Also makes the 20-plugin directory: copies of the fixture with its name patched.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::http::Conn;
use crate::mcp;
use crate::procfs::Memory;
use crate::report::{Report, mib, ms};
use crate::server::{Options, Server};

/// How long a freshly started server is left alone before its idle memory is read: start-up's
/// transient allocations settle, and the compile threads finish.
pub(crate) const SETTLE: Duration = Duration::from_millis(300);

/// Give up on a start whose tools never appear (a cold start of a Python or JS component compiles
/// tens of MB of code first).
const LIST_TIMEOUT: Duration = Duration::from_secs(180);

/// One measured start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    pub(crate) listening: Duration,
    pub(crate) listed: Duration,
    pub(crate) idle: Memory,
}

/// Start a server, wait for `expected` (tool names; an entry ending in `__` stands for any
/// tool of that plugin) in `tools/list`, settle, read its memory and stop it.
pub(crate) async fn start_once(options: &Options, expected: &[String]) -> Result<Start, String> {
    let server = Server::start(options).await?;
    let result = async {
        let deadline = Instant::now() + LIST_TIMEOUT;
        let mut last: String;
        let listed = loop {
            match list_tools(&server).await {
                Ok(names) => {
                    let missing: Vec<&String> = expected.iter().filter(|e| !lists(&names, e)).collect();
                    if missing.is_empty() {
                        break server.spawned.elapsed();
                    }
                    last = format!("missing {missing:?}");
                }
                Err(e) => last = e,
            }
            if Instant::now() > deadline {
                return Err(format!("tools/list never listed the expected tools: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        tokio::time::sleep(SETTLE).await;
        let idle = Memory::of(server.pid)?;
        Ok(Start { listening: server.listening_after, listed, idle })
    }
    .await;
    server.stop().await;
    result
}

fn lists(names: &[String], expected: &str) -> bool {
    if expected.ends_with("__") {
        names.iter().any(|n| n.starts_with(expected))
    } else {
        names.iter().any(|n| n == expected)
    }
}

async fn list_tools(server: &Server) -> Result<Vec<String>, String> {
    let mut conn = Conn::open(server.addr).await?;
    let result = mcp::stateless_request(&mut conn, 1, "tools/list", None, "").await?;
    let tools = result.get("tools").and_then(|t| t.as_array()).ok_or("tools/list: no `tools` array")?;
    Ok(tools.iter().filter_map(|t| t.get("name")?.as_str().map(str::to_owned)).collect())
}

/// Write `count` copies of the fixture into `dir` as `bench00.wasm`, `bench01.wasm`, ...,
/// each with its plugin name (`placeholder`, which must occur exactly once) replaced by its
/// own, and return the plugin names.
pub(crate) fn patched_copies(
    fixture: &[u8],
    placeholder: &str,
    count: usize,
    dir: &Path,
) -> Result<Vec<String>, String> {
    let needle = placeholder.as_bytes();
    let at: Vec<usize> =
        fixture.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i).collect();
    let [offset] = at[..] else {
        return Err(format!("`{placeholder}` occurs {} times in the fixture; the patch needs exactly one", at.len()));
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stem = placeholder.trim_end_matches(|c: char| c.is_ascii_digit());
    let mut names = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("{stem}{i:02}");
        // Same length, so nothing else in the component moves.
        if name.len() != needle.len() {
            return Err(format!("plugin name {name} is not as long as {placeholder}"));
        }
        let mut copy = fixture.to_vec();
        copy[offset..offset + needle.len()].copy_from_slice(name.as_bytes());
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, copy).map_err(|e| format!("{}: {e}", path.display()))?;
        names.push(name);
    }
    Ok(names)
}

/// Start-up time and idle memory: the bundled plugins, one plugin and twenty, cold and warm.
pub(crate) async fn section(
    report: &mut Report,
    warm_starts: usize,
    repo: &Path,
    tmp: &Path,
    one_plugin: &Path,
    twenty_names: &[String],
) -> Result<usize, String> {
    // The bundled plugins, copied so that a concurrent rebuild of plugins/ cannot change them
    // mid-run; they load without a policy (capabilities they need are simply not granted).
    let bundled = tmp.join("plugins-bundled");
    std::fs::create_dir_all(&bundled).map_err(|e| e.to_string())?;
    let mut bundled_expected = vec!["health".to_owned()];
    for entry in std::fs::read_dir(repo.join("plugins")).map_err(|e| format!("plugins/: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            std::fs::copy(&path, bundled.join(format!("{stem}.wasm"))).map_err(|e| e.to_string())?;
            bundled_expected.push(format!("{stem}__"));
        }
    }
    let bench_tools = |names: &[String]| -> Vec<String> {
        names.iter().flat_map(|n| [format!("{n}__echo"), format!("{n}__summarize")]).collect()
    };
    let cases = [
        (format!("bundled plugins/ ({})", bundled_expected.len() - 1), bundled, bundled_expected),
        ("1 plugin (bench)".to_owned(), one_plugin.to_path_buf(), bench_tools(&[crate::workload::PLUGIN.to_owned()])),
        ("20 plugins (bench00..19)".to_owned(), tmp.join("plugins-20"), bench_tools(twenty_names)),
    ];
    let mut rows = Vec::new();
    let mut failures = 0;
    let mut warm_rss = Vec::new();
    for (i, (label, dir, expected)) in cases.iter().enumerate() {
        let options = Options {
            plugins: dir.clone(),
            cache_dir: tmp.join(format!("startup-cache-{i}")),
            allocator: None,
            stderr: tmp.join(format!("startup-{i}.log")),
            extra_args: Vec::new(),
        };
        for (cache, starts) in [("cold", 1), ("warm", warm_starts)] {
            eprintln!("load bench: start-up {label} {cache}");
            let mut results = Vec::new();
            for _ in 0..starts {
                match start_once(&options, expected).await {
                    Ok(start) => results.push(start),
                    Err(e) => {
                        failures += 1;
                        rows.push(vec![label.clone(), cache.to_owned(), format!("error: {e}")]);
                    }
                }
            }
            if results.is_empty() {
                continue;
            }
            let median = |f: &dyn Fn(&Start) -> u128| {
                let mut v: Vec<u128> = results.iter().map(f).collect();
                v.sort_unstable();
                v[v.len() / 2]
            };
            let listening = Duration::from_nanos(median(&|s| s.listening.as_nanos()) as u64);
            let listed = Duration::from_nanos(median(&|s| s.listed.as_nanos()) as u64);
            let rss = median(&|s| u128::from(s.idle.rss_kib)) as u64;
            let peak = median(&|s| u128::from(s.idle.peak_kib)) as u64;
            if cache == "warm" {
                warm_rss.push(rss);
            }
            rows.push(vec![
                label.clone(),
                cache.to_owned(),
                results.len().to_string(),
                ms(listening),
                ms(listed),
                mib(rss),
                mib(peak),
            ]);
        }
    }
    report.say("## Start-up");
    report.table(
        &["plugins", "compile cache", "starts", "to `listening`", "to full tools/list", "RSS idle", "peak RSS"],
        &rows,
    );
    let per_plugin = match warm_rss[..] {
        [_, one, twenty] => format!("{} ((RSS idle of 20 − of 1) ÷ 19, warm)", mib(twenty.saturating_sub(one) / 19)),
        _ => "n/a".to_owned(),
    };
    report.say(&format!(
        "Each start is a new process, timed from spawn; warm rows are the median of {} starts on the cache the cold \
         start filled. RSS idle: {} ms after the full tools/list. Default allocator. Memory per loaded plugin: \
         {per_plugin}.",
        warm_starts,
        SETTLE.as_millis(),
    ));
    Ok(failures)
}
