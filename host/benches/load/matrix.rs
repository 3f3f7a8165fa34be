//! The tool-call matrix: one server per instance allocator, and against it tools × transports ×
//! concurrency, one cell each; then the tables, including the per-phase breakdown of the
//! concurrency-1 cells from `/metrics`.

use std::path::Path;
use std::sync::Arc;

use crate::load::{self, Caller, Charged, Outcome, Timing};
use crate::mcp::{Client, Transport};
use crate::phases::{PHASES, Snapshot};
use crate::procfs::CpuSample;
use crate::report::{LOAD_HEADERS, Report, load_columns, mib, us};
use crate::server::{self, Options, Server};
use crate::workload::Workload;

/// One measured cell.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub(crate) allocator: String,
    pub(crate) tool: &'static str,
    pub(crate) transport: Transport,
    pub(crate) concurrency: usize,
    pub(crate) outcome: Outcome,
    /// `/metrics` before and after (concurrency-1 cells only).
    pub(crate) phases: Option<[Snapshot; 2]>,
}

/// A virtual MCP client calling one tool.
#[derive(Debug)]
struct McpCaller {
    client: Client,
    name: Arc<str>,
    workload: Arc<Workload>,
}

impl Caller for McpCaller {
    async fn call(&mut self) -> Result<(), String> {
        let result = self.client.call(&self.name, &self.workload.arguments).await?;
        self.workload.check_mcp(&result)
    }
}

/// Run the matrix for each allocator on a server serving the
/// plugins in `plugins` (scratch files go to `scratch`), and report it.
pub(crate) async fn section(
    report: &mut Report,
    plugins: &Path,
    scratch: &Path,
    allocators: &[&'static str],
    workloads: &[Arc<Workload>],
    concurrency: &[usize],
    timing: Timing,
) -> Result<Vec<Cell>, String> {
    let mut cells = Vec::new();
    let mut idle = Vec::new();
    let mut log_notes = Vec::new();
    for &label in allocators {
        let options = Options {
            plugins: plugins.to_path_buf(),
            cache_dir: scratch.join(format!("cache-{label}")),
            allocator: Some(label),
            stderr: scratch.join(format!("server-{label}.log")),
            extra_args: Vec::new(),
        };
        let server = Server::start(&options).await?;
        idle.push(format!("{label} {}", idle_cpu(server.pid).await));
        for workload in workloads {
            for transport in Transport::ALL {
                for &c in concurrency {
                    eprintln!("load bench: {label} {} {} c={c}", workload.tool, transport.label());
                    cells.push(cell(&server, label, transport, workload, c, timing).await);
                }
            }
        }
        server.stop().await;
        let problems = server::log_problems(&options.stderr);
        if !problems.is_empty() {
            log_notes.push(format!(
                "Server log ({label}): {} warning/error lines, e.g.:\n\n```text\n{}\n```",
                problems.len(),
                problems.iter().take(3).map(String::as_str).collect::<Vec<_>>().join("\n")
            ));
        }
    }
    report.say("## Tool calls");
    report.table(&headers(), &cells.iter().map(row).collect::<Vec<_>>());
    report.say(
        "median and p99: round trip as the client sees it. Server CPU: all server threads over the window ÷ \
         calls completed in it (`~`: tick resolution, a thread exited). Client CPU: this process likewise. \
         Server RSS at the end of the window; peak = VmHWM since the window started.",
    );
    report.say(&format!(
        "An idle server (no requests) uses CPU too: {}. It is part of every cell's CPU per call and weighs \
         most where calls are few.",
        idle.join("; ")
    ));
    for note in &log_notes {
        report.say(note);
    }
    let c1: Vec<&Cell> = cells.iter().filter(|c| c.concurrency == 1).collect();
    if !c1.is_empty() {
        report.say("## Where a call's time goes (c = 1, mean µs)");
        report.table(&breakdown_headers(), &c1.iter().map(|c| breakdown_row(c)).collect::<Vec<_>>());
        report.say(
            "Phases from the server's `sanctum_call_phase_seconds` histogram (Δsum ÷ Δcount over the cell; \
             `handler` is the MCP layer's whole `tools/call` handling and contains the others but \
             `teardown`, which the worker does after the answer has gone). The last \
             column is a remainder, not a measurement: client mean − handler mean, i.e. HTTP, the MCP \
             transport (rmcp, sessions, SSE framing) and the client itself.",
        );
    }
    Ok(cells)
}

/// CPU an idle server uses (epoch ticker, timers), as µs per second of wall time.
async fn idle_cpu(pid: u32) -> String {
    const SPAN: std::time::Duration = std::time::Duration::from_secs(1);
    // Let start-up's own work (compile threads, first allocations) finish first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let Ok(before) = CpuSample::take(pid) else { return "n/a".to_owned() };
    tokio::time::sleep(SPAN).await;
    let Ok(after) = CpuSample::take(pid) else { return "n/a".to_owned() };
    let delta = after.since(&before);
    format!("{}{:.0} µs/s", if delta.coarse { "~" } else { "" }, delta.cpu.as_secs_f64() * 1e6 / SPAN.as_secs_f64())
}

/// Measure one cell on `server`.
pub(crate) async fn cell(
    server: &Server,
    allocator: &str,
    transport: Transport,
    workload: &Arc<Workload>,
    concurrency: usize,
    timing: Timing,
) -> Cell {
    let connected = futures::future::join_all((0..concurrency).map(|_| Client::connect(server.addr, transport))).await;
    let mut clients = Vec::with_capacity(concurrency);
    let mut errors = Vec::new();
    for client in connected {
        match client {
            Ok(client) => clients.push(client),
            Err(e) => errors.push(format!("connecting: {e}")),
        }
    }
    let scrape = concurrency == 1;
    let (outcome, phases) = if errors.is_empty() {
        let name: Arc<str> = workload.mcp_name().into();
        let callers: Vec<McpCaller> = clients
            .into_iter()
            .map(|client| McpCaller { client, name: Arc::clone(&name), workload: Arc::clone(workload) })
            .collect();
        let addr = server.addr;
        // Scraped outside the measured window, so its cost is not charged to the calls.
        let edge = async || if scrape { Snapshot::scrape(addr).await.ok() } else { None };
        let (callers, outcome, [before, after]) = load::run(callers, timing, Charged::Process(server.pid), edge).await;
        for caller in callers {
            caller.client.close().await;
        }
        (outcome, before.zip(after).map(|(b, a)| [b, a]))
    } else {
        for client in clients {
            client.close().await;
        }
        (Outcome::failed(errors), None)
    };
    Cell { allocator: allocator.to_owned(), tool: workload.tool, transport, concurrency, outcome, phases }
}

fn headers() -> Vec<&'static str> {
    let mut headers = vec!["allocator", "tool", "transport", "c"];
    headers.extend(LOAD_HEADERS);
    headers.extend(["server CPU µs/call", "client CPU µs/call", "server RSS", "peak RSS"]);
    headers
}

fn row(cell: &Cell) -> Vec<String> {
    let o = &cell.outcome;
    let memory = o.memory.unwrap_or_default();
    let mut row = vec![
        cell.allocator.clone(),
        cell.tool.to_owned(),
        cell.transport.label().to_owned(),
        cell.concurrency.to_string(),
    ];
    row.extend(load_columns(o));
    row.extend([
        us(o.per_call(o.cpu), o.cpu.is_some_and(|c| c.coarse)),
        us(o.per_call(o.client_cpu), o.client_cpu.is_some_and(|c| c.coarse)),
        mib(memory.rss_kib),
        format!("{}{}", mib(memory.peak_kib), if o.peak_is_cell { "" } else { " (since start)" }),
    ]);
    row
}

fn breakdown_headers() -> Vec<&'static str> {
    let mut headers = vec!["allocator", "tool", "transport"];
    headers.extend(PHASES);
    headers.extend(["client mean", "remainder: HTTP + MCP transport + client"]);
    headers
}

/// Mean µs per phase over a concurrency-1 cell, the client's mean round trip, and what the
/// server's handler does not account for (client mean − handler mean).
fn breakdown_row(cell: &Cell) -> Vec<String> {
    let mut row = vec![cell.allocator.clone(), cell.tool.to_owned(), cell.transport.label().to_owned()];
    let means: Vec<_> = PHASES
        .iter()
        .map(|phase| cell.phases.as_ref().and_then(|[before, after]| after.mean_since(before, phase)))
        .collect();
    row.extend(means.iter().map(|m| us(*m, false)));
    row.push(us(Some(cell.outcome.mean), false));
    row.push(match means[0] {
        Some(handler) => {
            let remainder = cell.outcome.mean.as_secs_f64() - handler.as_secs_f64();
            format!("{:.0}", remainder * 1e6)
        }
        None => "n/a".to_owned(),
    });
    row
}
