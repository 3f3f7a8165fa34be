//! The Markdown report: printed to stdout as each section finishes and written whole to
//! `target/bench/load.md`. Also the run's context (machine, commit, date, command), since
//! figures mean something only next to the machine and the run that produced them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The report so far.
#[derive(Debug, Default)]
pub(crate) struct Report {
    text: String,
}

impl Report {
    /// Append a paragraph (or heading) and print it.
    pub(crate) fn say(&mut self, text: &str) {
        println!("{text}\n");
        self.text.push_str(text);
        self.text.push_str("\n\n");
    }

    /// Append a table and print it.
    pub(crate) fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        let mut table = format!("| {} |\n|{}\n", headers.join(" | "), "---|".repeat(headers.len()));
        for row in rows {
            let _ = writeln!(table, "| {} |", row.join(" | "));
        }
        self.say(table.trim_end());
    }

    /// Write the report to `path` (its directory is created).
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &self.text)
    }
}

/// Where the report goes: `<target dir>/bench/load.md`, the target dir found from this
/// executable (`<target>/release/deps/load-…`), so `CARGO_TARGET_DIR` is honoured.
pub(crate) fn report_path() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .filter(|dir| dir.join("CACHEDIR.TAG").exists())
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("bench/load.md")
}

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Machine, commit and date lines for the report's header.
pub(crate) fn context() -> Vec<String> {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    let kernel = command_output("uname", &["-srm"]).unwrap_or_else(|| "unknown kernel".to_owned());
    let root = repo_root();
    let root = root.to_string_lossy();
    let commit =
        command_output("git", &["-C", &root, "rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = command_output("git", &["-C", &root, "status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    // Other work on the machine skews every figure; the load average at the start shows it.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    vec![
        format!("- machine: {cores} cores ({model}), {}, {:.1} GiB RAM", kernel, mem_kib as f64 / (1024.0 * 1024.0)),
        format!(
            "- commit: {commit}{}; date: {date}; load average at start: {}",
            if dirty { "-dirty" } else { "" },
            load.join(" ")
        ),
    ]
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The columns every load table has, in this order: see [`load_columns`].
pub(crate) const LOAD_HEADERS: [&str; 5] = ["calls", "errors", "median", "p99", "calls/s"];

/// An outcome's calls, errors, median, p99 and calls per second, under [`LOAD_HEADERS`].
pub(crate) fn load_columns(outcome: &crate::load::Outcome) -> [String; 5] {
    [
        outcome.calls.to_string(),
        outcome.errors.to_string(),
        ms(outcome.median),
        ms(outcome.p99),
        format!("{:.0}", outcome.calls_per_second()),
    ]
}

/// A latency: milliseconds with three decimals below 10 ms, one above.
pub(crate) fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 { format!("{ms:.3} ms") } else { format!("{ms:.1} ms") }
}

/// A CPU cost per call in microseconds; `~` marks tick (10 ms) resolution.
pub(crate) fn us(d: Option<Duration>, coarse: bool) -> String {
    match d {
        Some(d) => format!("{}{:.0}", if coarse { "~" } else { "" }, d.as_secs_f64() * 1e6),
        None => "n/a".to_owned(),
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
