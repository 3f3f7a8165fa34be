//! Jobs (`sanctum:plugin/jobs`): what a running job costs the calls around it, and what many
//! jobs leave behind. One server with the `bench` fixture (for `echo`) and the `probe` fixture
//! (its `job_*` tools), a policy granting `tests/fixtures/job-ticker.sh` as a job, and a jobs
//! directory of its own.
//!
//! (a) echo's latency on an idle server, then while a job runs that prints a line every second
//! (`SANCTUM_BENCH_JOB_SECS` long, default 60; each window takes just under half of it). Target:
//! p99 during the job within 2× idle.
//! (b) `SANCTUM_BENCH_JOBS` short jobs (default 100) started and awaited in waves, then: no
//! process left under the server (`/proc`), no more open file descriptors than before
//! (`/proc/PID/fd`), and job files bounded (the host keeps 50 finished jobs per plugin: at most
//! 100 files).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::load::{self, Caller, Charged, Outcome, Timing};
use crate::mcp::{Client, Transport};
use crate::process_tree;
use crate::procfs::{self, Memory};
use crate::report::{LOAD_HEADERS, Report, load_columns, mib, ms, us};
use crate::server::{self, Options, Server};
use crate::workload::Workload;

/// The echo cells: one client, and as many as keep the single worker busy.
const CONCURRENCY: [usize; 2] = [1, 8];
/// The transport of every call here.
const TRANSPORT: Transport = Transport::Session;
/// Jobs started before waiting for them all (the grant's `max_jobs` is 64).
const WAVE: usize = 50;
/// Finished jobs the host keeps per plugin (a record and a log each).
const KEPT: usize = 50;
/// Give up on a job that never ends.
const JOB_PATIENCE: Duration = Duration::from_secs(120);
/// Before counting what is left, let the server finish closing what the last jobs used.
const SETTLE: Duration = Duration::from_millis(500);

/// The section's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobSettings {
    pub(crate) job: Duration,
    pub(crate) count: usize,
    pub(crate) warm_up: Duration,
}

/// A virtual client calling `bench00__echo`.
#[derive(Debug)]
struct Echo {
    client: Client,
    name: Arc<str>,
    workload: Arc<Workload>,
}

impl Caller for Echo {
    async fn call(&mut self) -> Result<(), String> {
        let result = self.client.call(&self.name, &self.workload.arguments).await?;
        self.workload.check_mcp(&result)
    }
}

/// The probe's job tools over one session.
struct Jobs {
    addr: std::net::SocketAddr,
    client: Client,
}

impl Jobs {
    async fn connect(addr: std::net::SocketAddr) -> Result<Self, String> {
        Ok(Self { addr, client: Client::connect(addr, TRANSPORT).await? })
    }

    /// A new session on a new connection: the server closes connections left idle while the
    /// echo cells ran.
    async fn reconnect(&mut self) -> Result<(), String> {
        let fresh = Client::connect(self.addr, TRANSPORT).await?;
        std::mem::replace(&mut self.client, fresh).close().await;
        Ok(())
    }

    /// The structured result of `probe__<tool>`, or the tool error's text.
    async fn call(&mut self, tool: &str, arguments: &Value) -> Result<Value, String> {
        let result = self.client.call(&format!("probe__{tool}"), &arguments.to_string()).await?;
        if result.get("isError") != Some(&Value::Bool(false)) {
            let text = result.pointer("/content/0/text").and_then(Value::as_str).unwrap_or_default();
            return Err(format!("probe__{tool}: {text}"));
        }
        result.get("structuredContent").cloned().ok_or_else(|| format!("probe__{tool}: no structured result"))
    }

    async fn start(&mut self, args: &[&str]) -> Result<String, String> {
        let job = self.call("job_start", &json!({"command": "ticker", "args": args})).await?;
        match (job["state"].as_str(), job["id"].as_str()) {
            (Some("running"), Some(id)) => Ok(id.to_owned()),
            _ => Err(format!("job_start: {job}")),
        }
    }

    async fn status(&mut self, id: &str) -> Result<Value, String> {
        self.call("job_status", &json!({"id": id})).await
    }
}

/// What `job-ticker.sh DIR NAME COUNT ...` writes: a tick and a tock per round, then `done`.
fn ticker_bytes(name: &str, count: u32) -> u64 {
    let rounds: usize = (1..=count).map(|i| format!("tick {i} of {count}\n").len() + format!("tock {i}\n").len()).sum();
    (rounds + format!("done {name}\n").len()) as u64
}

fn policy(repo: &Path, pids: &Path) -> String {
    format!(
        "[plugins.probe.commands.ticker]\nprogram = \"/bin/sh\"\nargs = [\"{script}\", \"{pids}\"]\nallowed_args = \
         [\"[a-z0-9.]+\"]\nwritable = [\"{pids}\"]\nmax_jobs = 64\n",
        script = repo.join("tests/fixtures/job-ticker.sh").display(),
        pids = pids.display(),
    )
}

/// Run the section; returns how many calls or jobs failed.
pub(crate) async fn section(
    report: &mut Report,
    repo: &Path,
    tmp: &Path,
    bench_fixture: &[u8],
    settings: JobSettings,
) -> Result<usize, String> {
    let plugins = tmp.join("plugins-jobs");
    let pids = tmp.join("job-pids");
    let jobs_dir = tmp.join("jobs");
    for dir in [&plugins, &pids] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(plugins.join("bench00.wasm"), bench_fixture).map_err(|e| e.to_string())?;
    let probe = repo.join("tests/plugins/probe.wasm");
    std::fs::copy(&probe, plugins.join("probe.wasm")).map_err(|e| format!("{}: {e}", probe.display()))?;
    let policy_path = tmp.join("jobs-policy.toml");
    std::fs::write(&policy_path, policy(repo, &pids)).map_err(|e| e.to_string())?;
    let options = Options {
        plugins,
        cache_dir: tmp.join("cache-jobs"),
        allocator: None,
        stderr: tmp.join("server-jobs.log"),
        extra_args: vec![
            "--policy".to_owned(),
            policy_path.display().to_string(),
            "--jobs-dir".to_owned(),
            jobs_dir.display().to_string(),
        ],
    };
    let server = Server::start(&options).await?;
    let outcome = measure(report, &server, &jobs_dir, settings).await;
    server.stop().await;
    let problems = server::log_problems(&options.stderr);
    if !problems.is_empty() {
        report.say(&format!(
            "Server log (jobs): {} warning/error lines, e.g.:\n\n```text\n{}\n```",
            problems.len(),
            problems.iter().take(3).map(String::as_str).collect::<Vec<_>>().join("\n")
        ));
    }
    outcome
}

async fn measure(
    report: &mut Report,
    server: &Server,
    jobs_dir: &Path,
    settings: JobSettings,
) -> Result<usize, String> {
    let mut jobs = Jobs::connect(server.addr).await?;
    let echo = Arc::new(Workload::echo());
    // Two windows per state (c = 1 and c = 8) fit in the job with a second to spare each side.
    let window = (settings.job.saturating_sub(Duration::from_secs(4)) / 2).max(Duration::from_millis(500));
    let timing = Timing { warm_up: settings.warm_up, measure: window.saturating_sub(settings.warm_up) };
    let mut failures = 0;

    report.say("## Jobs");
    let mut rows = Vec::new();
    let mut idle = Vec::new();
    for c in CONCURRENCY {
        eprintln!("load bench: jobs: echo c={c}, idle");
        let outcome = echo_cell(server, &echo, c, timing).await;
        failures += outcome.errors;
        rows.push(load_row("idle", c, &outcome));
        idle.push(outcome);
    }

    let count = u32::try_from(settings.job.as_secs()).unwrap_or(u32::MAX).max(1);
    jobs.reconnect().await?;
    let long = jobs.start(&["bench", &count.to_string(), "1", "0"]).await?;
    let job_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut during = Vec::new();
    for c in CONCURRENCY {
        eprintln!("load bench: jobs: echo c={c}, while a job runs");
        let outcome = echo_cell(server, &echo, c, timing).await;
        failures += outcome.errors;
        rows.push(load_row(&format!("during a {count} s job"), c, &outcome));
        during.push(outcome);
    }
    jobs.reconnect().await?;
    let still = jobs.status(&long).await?;
    let covered = still["state"] == "running";
    eprintln!("load bench: jobs: waiting for the {count} s job to end");
    let ended = wait_ended(&mut jobs, &long).await?;
    let expected = ticker_bytes("bench", count);
    let long_ok = ended["state"] == "exited:0" && ended["output_bytes"].as_u64() == Some(expected);
    if !long_ok || !covered {
        failures += 1;
    }
    let mut headers = vec!["server", "c"];
    headers.extend(LOAD_HEADERS);
    headers.push("server CPU µs/call");
    report.table(&headers, &rows);
    let ratios: Vec<String> = CONCURRENCY
        .iter()
        .zip(idle.iter().zip(&during))
        .map(|(c, (idle, during))| {
            let ratio = during.p99.as_secs_f64() / idle.p99.as_secs_f64().max(1e-9);
            format!("c = {c}: {ratio:.2}× ({})", if ratio <= 2.0 { "met" } else { "**missed**" })
        })
        .collect();
    report.say(&format!(
        "`bench00__echo` over {} ({:.1} s warm-up, {:.1} s measured per row), first on the idle server, then while \
         one job (`job-ticker.sh`, a line on stdout and one on stderr every second for {count} s, started through \
         `probe__job_start`) ran. The job was {} at the end of the last window and ended `{}` after {:.1} s with {} \
         output bytes (expected {expected}). Target: p99 during the job ≤ 2× idle — {}.",
        TRANSPORT.label(),
        timing.warm_up.as_secs_f64(),
        timing.measure.as_secs_f64(),
        if covered { "still running" } else { "**no longer running**" },
        ended["state"].as_str().unwrap_or("?"),
        job_started.elapsed().as_secs_f64(),
        ended["output_bytes"],
        ratios.join("; "),
    ));

    eprintln!("load bench: jobs: {} short jobs", settings.count);
    failures += many(report, &mut jobs, server, jobs_dir, settings.count).await?;
    jobs.client.close().await;
    Ok(failures)
}

async fn echo_cell(server: &Server, workload: &Arc<Workload>, concurrency: usize, timing: Timing) -> Outcome {
    let mut callers = Vec::with_capacity(concurrency);
    let name: Arc<str> = workload.mcp_name().into();
    for _ in 0..concurrency {
        match Client::connect(server.addr, TRANSPORT).await {
            Ok(client) => callers.push(Echo { client, name: Arc::clone(&name), workload: Arc::clone(workload) }),
            Err(e) => return Outcome::failed(vec![format!("connecting: {e}")]),
        }
    }
    let (callers, outcome, _) = load::run(callers, timing, Charged::Process(server.pid), async || ()).await;
    for caller in callers {
        caller.client.close().await;
    }
    outcome
}

fn load_row(label: &str, c: usize, o: &Outcome) -> Vec<String> {
    let mut row = vec![label.to_owned(), c.to_string()];
    row.extend(load_columns(o));
    row.push(us(o.per_call(o.cpu), o.cpu.is_some_and(|c| c.coarse)));
    row
}

async fn wait_ended(jobs: &mut Jobs, id: &str) -> Result<Value, String> {
    let deadline = Instant::now() + JOB_PATIENCE;
    loop {
        let job = jobs.status(id).await?;
        if job["state"] != "running" {
            return Ok(job);
        }
        if Instant::now() > deadline {
            return Err(format!("job {id} still runs after {JOB_PATIENCE:?}: {job}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the server holds at one moment.
#[derive(Debug, Clone, Copy)]
struct Held {
    fds: usize,
    descendants: usize,
    memory: Memory,
}

impl Held {
    async fn settled(pid: u32) -> Result<Self, String> {
        tokio::time::sleep(SETTLE).await;
        Ok(Self {
            fds: procfs::open_fds(pid)?,
            descendants: process_tree::descendants(pid).len(),
            memory: Memory::of(pid)?,
        })
    }
}

/// Start `count` short jobs in waves and wait for each; then count what is left.
async fn many(
    report: &mut Report,
    jobs: &mut Jobs,
    server: &Server,
    jobs_dir: &Path,
    count: usize,
) -> Result<usize, String> {
    let before = Held::settled(server.pid).await?;
    let mut failures = Vec::new();
    let mut start_calls = Vec::with_capacity(count);
    let began = Instant::now();
    for wave in (0..count).collect::<Vec<_>>().chunks(WAVE) {
        let mut ids = Vec::with_capacity(wave.len());
        for &n in wave {
            let name = format!("j{n}");
            let called = Instant::now();
            match jobs.start(&[&name, "1", "0", "0"]).await {
                Ok(id) => ids.push((name, id)),
                Err(e) => failures.push(e),
            }
            start_calls.push(called.elapsed());
        }
        for (name, id) in ids {
            let ended = wait_ended(jobs, &id).await?;
            if ended["state"] != "exited:0" || ended["output_bytes"].as_u64() != Some(ticker_bytes(&name, 1)) {
                failures.push(format!("{name}: {ended}"));
            }
        }
    }
    let all_ended = began.elapsed();
    let after = Held::settled(server.pid).await?;
    let files = std::fs::read_dir(jobs_dir.join("probe")).map_or(0, Iterator::count);
    let listed = jobs.call("job_list", &json!({})).await?;
    let listed = listed["jobs"].as_array().map_or(0, Vec::len);
    let left = process_tree::descendants(server.pid);

    start_calls.sort_unstable();
    let pct = |p: f64| {
        let rank = ((start_calls.len() as f64 * p).ceil() as usize).clamp(1, start_calls.len().max(1));
        start_calls.get(rank - 1).copied().unwrap_or_default()
    };
    report.table(
        &[
            "jobs",
            "failed",
            "start call median",
            "start call p99",
            "all ended after",
            "processes under the server after",
            "server fds before → after",
            "job files (listed jobs)",
            "server RSS before → after",
        ],
        &[vec![
            count.to_string(),
            failures.len().to_string(),
            ms(pct(0.5)),
            ms(pct(0.99)),
            format!("{:.2} s", all_ended.as_secs_f64()),
            after.descendants.to_string(),
            format!("{} → {}", before.fds, after.fds),
            format!("{files} ({listed})"),
            format!("{} → {}", mib(before.memory.rss_kib), mib(after.memory.rss_kib)),
        ]],
    );
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    report.say(&format!(
        "{count} jobs of `job-ticker.sh jN 1 0 0` (a tick, a tock, `done`: ~30 bytes each) started through \
         `probe__job_start` in waves of {WAVE} (`max_jobs = 64`), each awaited by polling `probe__job_status`; every \
         one must end `exited:0` with its exact output size. Counted {} ms after the last ended. No process left \
         under the server: {} ({} before){}. No leaked file descriptors: {} ({} before, {} after). Job files bounded \
         (≤ {} for {KEPT} kept jobs): {} ({files}).",
        SETTLE.as_millis(),
        verdict(left.is_empty()),
        before.descendants,
        if left.is_empty() { String::new() } else { format!(": {left:?}") },
        verdict(after.fds <= before.fds),
        before.fds,
        after.fds,
        2 * KEPT,
        verdict(files <= 2 * KEPT),
    ));
    for failure in failures.iter().take(5) {
        eprintln!("load bench: jobs: {failure}");
    }
    Ok(failures.len())
}
