//! Plugins in other languages: the same `echo` tool built in Rust (the bench fixture), Python
//! (`plugins-src/python/pyecho`, componentize-py) and JavaScript (`plugins-src/js/jsecho`,
//! componentize-js), each served alone: its size, cold and warm start, idle memory over a server
//! without plugins, and what a call costs at c = 1 with the phases it spends it in.
//!
//! The Python and JS components are built by `plugins-src/{python,js}/build.sh target/guests`
//! (the test command does); a missing one is reported as missing, never measured as zero.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::load::Timing;
use crate::matrix::{self, Cell};
use crate::mcp::Transport;
use crate::phases::PHASES;
use crate::procfs::Memory;
use crate::report::{Report, mib, ms, us};
use crate::server::{Options, Server};
use crate::startup::{Start, start_once};
use crate::workload::Workload;

/// One language's echo plugin.
struct Guest {
    language: &'static str,
    plugin: &'static str,
    file: PathBuf,
}

/// Warm starts per plugin (the median is reported).
const WARM_STARTS: usize = 3;

pub(crate) async fn section(report: &mut Report, repo: &Path, tmp: &Path, timing: Timing) -> Result<usize, String> {
    let guests_dir = repo.join("target/guests");
    let guests = [
        Guest { language: "Rust", plugin: crate::workload::PLUGIN, file: repo.join("tests/plugins/bench00.wasm") },
        Guest { language: "Python", plugin: "pyecho", file: guests_dir.join("pyecho.wasm") },
        Guest { language: "JavaScript", plugin: "jsecho", file: guests_dir.join("jsecho.wasm") },
    ];
    let mut failures = 0;
    let mut starts = Vec::new();
    let mut calls = Vec::new();
    let mut notes = Vec::new();
    let baseline = plugins_dir(tmp, "guests-baseline", &[])?;
    let baseline_rss = warm_idle_rss(&baseline, tmp, "baseline").await;
    for guest in &guests {
        if !guest.file.is_file() {
            notes.push(format!(
                "- {}: `{}` is missing; build it with `plugins-src/{}/build.sh target/guests`.",
                guest.language,
                guest.file.display(),
                if guest.language == "Python" { "python" } else { "js" }
            ));
            continue;
        }
        eprintln!("load bench: guests {} start-up", guest.language);
        let alone = plugins_dir(tmp, &format!("guests-{}", guest.plugin), &[guest])?;
        let options = options(&alone, tmp, guest.plugin);
        let expected = vec![format!("{}__echo", guest.plugin)];
        let cold = start_once(&options, &expected).await;
        let mut warm = Vec::new();
        for _ in 0..WARM_STARTS {
            match start_once(&options, &expected).await {
                Ok(start) => warm.push(start),
                Err(e) => {
                    failures += 1;
                    notes.push(format!("- {} warm start failed: {e}", guest.language));
                }
            }
        }
        let cold = cold.map_err(|e| {
            failures += 1;
            notes.push(format!("- {} cold start failed: {e}", guest.language));
        });
        starts.push(start_row(guest, cold.ok(), &warm, baseline_rss));

        eprintln!("load bench: guests {} calls", guest.language);
        let server = Server::start(&options).await?;
        let workload = Arc::new(Workload::echo_of(guest.plugin));
        let cell = matrix::cell(&server, "pooling", Transport::LegacySse, &workload, 1, timing).await;
        server.stop().await;
        failures += cell.outcome.errors;
        calls.push(call_row(guest, &cell));
    }

    report.say("## Plugins in Python and JavaScript: the same echo in three languages");
    report.table(
        &[
            "language",
            "component",
            "cold start: to tools listed",
            "peak RSS (cold)",
            "warm start: to tools listed",
            "RSS idle, alone (anon + file)",
            "RSS added to a server without plugins (anon + file)",
        ],
        &starts,
    );
    let mut headers = vec!["language", "calls", "median", "p99", "server CPU µs/call"];
    headers.extend(PHASES.iter().map(|p| &**p));
    report.table(&headers, &calls);
    report.say(&format!(
        "One server per language with only that plugin, default allocator (pooling), legacy SSE at c = 1 (Letta's \
         way); phases are means in µs from `/metrics`. Cold start: a fresh compile cache, so the component is \
         compiled (in the background for a large one) before its tool is listed; warm: the median of {WARM_STARTS} \
         starts on the cache the cold start filled. RSS added: that warm idle RSS minus a server's without \
         plugins ({}). `anon` is \
         `RssAnon`, private memory only the process's exit returns; `file` is `RssFile`, mapped file pages \
         (the binary, compile-cache artefacts) that are clean, shared page cache the kernel can reclaim, and \
         whose resident share depends on what the page cache held, so it moves between runs.{}",
        baseline_rss.as_ref().map_or_else(|| "n/a".to_owned(), memory),
        if notes.is_empty() { String::new() } else { format!("\n\n{}", notes.join("\n")) }
    ));
    Ok(failures)
}

fn options(plugins: &Path, tmp: &Path, label: &str) -> Options {
    Options {
        plugins: plugins.to_path_buf(),
        cache_dir: tmp.join(format!("guests-cache-{label}")),
        allocator: None,
        stderr: tmp.join(format!("guests-{label}.log")),
        extra_args: Vec::new(),
    }
}

fn plugins_dir(tmp: &Path, name: &str, guests: &[&Guest]) -> Result<PathBuf, String> {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for guest in guests {
        let to = dir.join(format!("{}.wasm", guest.plugin));
        std::fs::copy(&guest.file, &to).map_err(|e| format!("{}: {e}", guest.file.display()))?;
    }
    Ok(dir)
}

/// Warm idle memory of a server on `plugins`: one start to fill a cache, then one measured.
async fn warm_idle_rss(plugins: &Path, tmp: &Path, label: &str) -> Option<Memory> {
    let options = options(plugins, tmp, &format!("rss-{label}"));
    let names: Vec<String> = std::fs::read_dir(plugins)
        .ok()?
        .filter_map(|entry| Some(format!("{}__", entry.ok()?.path().file_stem()?.to_string_lossy())))
        .collect();
    start_once(&options, &names).await.ok()?;
    start_once(&options, &names).await.ok().map(|start| start.idle)
}

/// `VmRSS (RssAnon + RssFile)`.
fn memory(m: &Memory) -> String {
    format!("{} ({} + {})", mib(m.rss_kib), mib(m.anon_kib), mib(m.file_kib))
}

fn start_row(guest: &Guest, cold: Option<Start>, warm: &[Start], baseline: Option<Memory>) -> Vec<String> {
    let size = std::fs::metadata(&guest.file).map_or_else(|_| "n/a".to_owned(), |m| mib(m.len() / 1024));
    let mut listed: Vec<Duration> = warm.iter().map(|s| s.listed).collect();
    listed.sort_unstable();
    let mut idle: Vec<Memory> = warm.iter().map(|s| s.idle).collect();
    idle.sort_unstable_by_key(|m| m.rss_kib);
    let median = idle.get(idle.len() / 2).copied();
    let added = match (median, baseline) {
        (Some(both), Some(alone)) => format!(
            "{} ({} + {})",
            signed_mib(both.rss_kib, alone.rss_kib),
            signed_mib(both.anon_kib, alone.anon_kib),
            signed_mib(both.file_kib, alone.file_kib)
        ),
        _ => "n/a".to_owned(),
    };
    vec![
        guest.language.to_owned(),
        size,
        cold.map_or_else(|| "failed".to_owned(), |s| ms(s.listed)),
        cold.map_or_else(|| "n/a".to_owned(), |s| mib(s.idle.peak_kib)),
        listed.get(listed.len() / 2).map_or_else(|| "n/a".to_owned(), |d| ms(*d)),
        median.as_ref().map_or_else(|| "n/a".to_owned(), memory),
        added,
    ]
}

/// `after − before` in MiB, with its sign.
fn signed_mib(after: u64, before: u64) -> String {
    if after >= before { format!("+{}", mib(after - before)) } else { format!("−{}", mib(before - after)) }
}

fn call_row(guest: &Guest, cell: &Cell) -> Vec<String> {
    let o = &cell.outcome;
    let mut row = vec![
        guest.language.to_owned(),
        o.calls.to_string(),
        ms(o.median),
        ms(o.p99),
        us(o.per_call(o.cpu), o.cpu.is_some_and(|c| c.coarse)),
    ];
    row.extend(
        PHASES
            .iter()
            .map(|phase| us(cell.phases.as_ref().and_then(|[before, after]| after.mean_since(before, phase)), false)),
    );
    row
}
