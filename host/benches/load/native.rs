//! The alternative a user has today: a native process spawned per call doing the same work
//! (the original Python server ran a script per tool call). Two twins of the fixture's tools:
//!
//! - Rust: this very benchmark binary, re-executed with `--native-cli TOOL` ([`run_cli`]); it
//!   runs the plugin's own `summarize` logic (`summary.rs`, shared with the plugin by path);
//! - Python: `native_cli.py`, the same logic in Python, run with `python3`.
//!
//! Both read the arguments as JSON on stdin and print the result as JSON on stdout: the text
//! for `echo`, the structured summary for `summarize`. [`section`] measures them and sets
//! them beside sanctum's own figures from the same run.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::load::{Caller, Charged, Outcome, Timing};
use crate::matrix::Cell;
use crate::mcp::Transport;
use crate::report::{LOAD_HEADERS, Report, load_columns, ms, us};
use crate::summary;
use crate::workload::Workload;

/// The argument that turns this binary into the native CLI.
pub(crate) const CLI_FLAG: &str = "--native-cli";

/// The Python twin, next to this file.
pub(crate) fn python_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/load/native_cli.py")
}

/// Whether `python3` runs here (the Python rows are skipped, and say so, if not).
pub(crate) fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The native CLI: one call of `tool`, arguments on stdin, result on stdout.
pub(crate) fn run_cli(tool: &str) -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("reading stdin: {e}");
        return ExitCode::FAILURE;
    }
    let result = match tool {
        "echo" => serde_json::from_str::<Value>(&input)
            .map_err(|e| e.to_string())
            .and_then(|args| args.get("text").cloned().ok_or_else(|| "missing `text`".to_owned())),
        "summarize" => serde_json::from_str::<summary::Args>(&input)
            .map_err(|e| e.to_string())
            .and_then(|args| serde_json::to_value(summary::summarize(args)).map_err(|e| e.to_string())),
        other => Err(format!("unknown tool {other}")),
    };
    match result {
        Ok(value) => {
            let mut out = std::io::stdout().lock();
            if serde_json::to_writer(&mut out, &value).is_ok() && out.write_all(b"\n").is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Which twin a [`Spawner`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Twin {
    Rust,
    Python,
}

impl Twin {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Rust => "Rust process per call",
            Self::Python => "Python process per call",
        }
    }
}

/// A virtual client that spawns one native process per call and checks what it prints.
#[derive(Debug)]
pub(crate) struct Spawner {
    program: PathBuf,
    args: Vec<String>,
    workload: Arc<Workload>,
}

impl Spawner {
    pub(crate) fn new(twin: Twin, workload: Arc<Workload>) -> Result<Self, String> {
        let tool = workload.tool.to_owned();
        let (program, args) = match twin {
            Twin::Rust => {
                (std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?, vec![CLI_FLAG.to_owned(), tool])
            }
            Twin::Python => (PathBuf::from("python3"), vec![python_script().display().to_string(), tool]),
        };
        Ok(Self { program, args, workload })
    }
}

impl Caller for Spawner {
    async fn call(&mut self) -> Result<(), String> {
        let mut child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.program.display()))?;
        let mut stdin = child.stdin.take().ok_or("no stdin pipe")?;
        stdin.write_all(self.workload.arguments.as_bytes()).await.map_err(|e| format!("writing stdin: {e}"))?;
        drop(stdin);
        let output = child.wait_with_output().await.map_err(|e| format!("waiting: {e}"))?;
        if !output.status.success() {
            return Err(format!("{}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim()));
        }
        let value: Value = serde_json::from_slice(&output.stdout).map_err(|e| format!("stdout is not JSON ({e})"))?;
        self.workload.check_value(&value)
    }
}

/// Spawning a native process per call, Rust and Python, next to sanctum's own figures.
pub(crate) async fn section(
    report: &mut Report,
    timing: Timing,
    workloads: &[Arc<Workload>],
    cells: &[Cell],
) -> Result<usize, String> {
    let mut twins = vec![Twin::Rust];
    if python_available() {
        twins.push(Twin::Python);
    }
    let mut rows = Vec::new();
    let mut failures = 0;
    let mut outcomes: Vec<(Twin, &'static str, usize, Outcome)> = Vec::new();
    for &twin in &twins {
        for workload in workloads {
            for concurrency in [1, 8] {
                eprintln!("load bench: {} {} c={concurrency}", twin.label(), workload.tool);
                let callers = (0..concurrency)
                    .map(|_| Spawner::new(twin, Arc::clone(workload)))
                    .collect::<Result<Vec<_>, _>>()?;
                let (_, outcome, _) = crate::load::run(callers, timing, Charged::Children, async || ()).await;
                failures += outcome.errors;
                let mut row = vec![twin.label().to_owned(), workload.tool.to_owned(), concurrency.to_string()];
                row.extend(load_columns(&outcome));
                row.extend([
                    us(outcome.per_call(outcome.cpu), true),
                    us(outcome.per_call(outcome.client_cpu), outcome.client_cpu.is_some_and(|c| c.coarse)),
                ]);
                rows.push(row);
                for sample in &outcome.error_samples {
                    rows.push(vec![format!("error: {sample}")]);
                }
                outcomes.push((twin, workload.tool, concurrency, outcome));
            }
        }
    }
    report.say("## A native process per call (what a script-per-call server does)");
    let mut headers = vec!["implementation", "tool", "c"];
    headers.extend(LOAD_HEADERS);
    headers.extend(["child CPU µs/call", "parent CPU µs/call"]);
    report.table(&headers, &rows);
    let mut notes = format!(
        "Each call spawns a process that reads the arguments on stdin and prints the result: the Rust twin is this \
         benchmark binary re-executed with `{}` (the plugin's own `summarize` code), the Python twin \
         `host/benches/load/native_cli.py` under `python3`. Child CPU: reaped children's utime+stime (tick \
         resolution); parent CPU: the spawning process (fork/exec, pipes).",
        CLI_FLAG
    );
    if !twins.contains(&Twin::Python) {
        notes.push_str(" `python3` was not found: no Python rows.");
    }
    report.say(&notes);

    // Side by side at c = 1 (and throughput at 8): the first allocator's sanctum cells.
    let mut side = Vec::new();
    if let Some(allocator) = cells.first().map(|c| c.allocator.clone()) {
        for transport in Transport::ALL {
            let mut row = vec![format!("sanctum, {} ({allocator})", transport.label())];
            for workload in workloads {
                let find = |c: usize| {
                    cells.iter().find(|x| {
                        x.allocator == allocator
                            && x.transport == transport
                            && x.tool == workload.tool
                            && x.concurrency == c
                    })
                };
                row.extend(comparison(find(1).map(|c| &c.outcome), find(8).map(|c| &c.outcome)));
            }
            side.push(row);
        }
    }
    for &twin in &twins {
        let mut row = vec![twin.label().to_owned()];
        for workload in workloads {
            let find = |c: usize| {
                outcomes.iter().find(|(t, tool, cc, _)| *t == twin && *tool == workload.tool && *cc == c).map(|x| &x.3)
            };
            row.extend(comparison(find(1), find(8)));
        }
        side.push(row);
    }
    report.say("### Side by side");
    report.table(
        &[
            "implementation",
            "echo median (c=1)",
            "echo CPU µs/call",
            "echo calls/s (c=8)",
            "summarize median (c=1)",
            "summarize CPU µs/call",
            "summarize calls/s (c=8)",
        ],
        &side,
    );
    report.say("CPU per call: the server's for sanctum, the children's for a process per call (both at c = 1).");
    Ok(failures)
}

fn comparison(c1: Option<&Outcome>, c8: Option<&Outcome>) -> [String; 3] {
    let na = || "n/a".to_owned();
    [
        c1.map_or_else(na, |o| ms(o.median)),
        c1.map_or_else(na, |o| us(o.per_call(o.cpu), o.cpu.is_some_and(|c| c.coarse))),
        c8.map_or_else(na, |o| format!("{:.0}", o.calls_per_second())),
    ]
}
