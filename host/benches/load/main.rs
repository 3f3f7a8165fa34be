//! Load benchmark: the real `sanctum` binary as a separate process, driven by a load generator
//! of our own, so the server's CPU time and memory can be read from `/proc`.
//!
//! Run: `cargo bench -p sanctum --bench load`. Settings (environment):
//! `SANCTUM_BENCH_SECS` (measured seconds per cell, default 2), `SANCTUM_BENCH_WARMUP_MS`
//! (default 300), `SANCTUM_BENCH_CONCURRENCY` (default `1,8,64`), `SANCTUM_BENCH_STARTS` (warm
//! starts per start-up case, default 3), `SANCTUM_BENCH_SKIP` (any of `calls,native,startup,jobs,letta,guests`),
//! `SANCTUM_BENCH_TOOLS` (default `echo,summarize`), `SANCTUM_BENCH_ALLOCATORS` (default
//! `pooling,on-demand`); the last two narrow the matrix, e.g. to profile one cell.
//! `SANCTUM_BENCH_JOB_SECS` (the long job of the jobs section, default 60) and
//! `SANCTUM_BENCH_JOBS` (its short jobs, default 100).
//! Prints Markdown tables and writes them to `target/bench/load.md`; exits non-zero if any call
//! failed, since figures that include failures measure nothing.
//!
//! # Layout
//!
//! - `server.rs` starts and stops the server process; `procfs.rs` reads its CPU and memory;
//! - `http.rs` (raw HTTP/1.1, event streams) under `mcp.rs` (the three transports' clients);
//! - `workload.rs` the tools, arguments and result checks; `summary.rs` is the fixture plugin's
//!   own `summarize` logic, included by path, for the native twin;
//! - `load.rs` runs one cell (virtual clients, warm-up, window);
//! - one module per section, each measuring and writing its tables: `matrix.rs` the MCP cells
//!   (with `phases.rs`, the per-phase breakdown from `/metrics`), `native.rs` the
//!   process-per-call comparison (with `native_cli.py`; the hidden `--native-cli TOOL` argument
//!   turns this binary into the Rust twin), `startup.rs` start-up time and memory, `letta.rs`
//!   the fresh-session-per-operation path Letta takes, `guests.rs` the same echo built in Rust,
//!   Python and JavaScript, `jobs.rs` calls beside a running job and what many jobs leave behind;
//! - `report.rs` the Markdown and the run's context.
//!
//! The client is one current-thread tokio runtime: it uses at most one core, and shares the
//! machine with the server (on a 2-core machine, one core each at best).

#![allow(clippy::print_stdout)]

mod guests;
mod http;
mod jobs;
mod letta;
mod load;
mod matrix;
mod mcp;
mod native;
mod phases;
// Shared with the jobs tests; the benchmark counts descendants but never asks one process.
#[allow(unreachable_pub, dead_code)]
#[path = "../../tests/all/support/process_tree.rs"]
mod process_tree;
mod procfs;
mod report;
mod server;
// Shared with the tests' SSE client, whose items are `pub` for the test crate.
#[allow(unreachable_pub)]
#[path = "../../tests/all/support/sse_events.rs"]
mod sse_events;
mod startup;
#[path = "../../../plugins-src/fixtures/bench/src/summary.rs"]
mod summary;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use load::Timing;
use report::Report;
use server::Options;
use workload::Workload;

/// What a run measures; see the crate docs for the variables.
#[derive(Debug, Clone)]
struct Settings {
    timing: Timing,
    concurrency: Vec<usize>,
    warm_starts: usize,
    skip: Vec<String>,
    tools: Vec<String>,
    allocators: Vec<&'static str>,
    jobs: jobs::JobSettings,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
            match std::env::var(name) {
                Ok(text) => text.trim().parse().map_err(|_| format!("{name}={text:?} is not valid")),
                Err(_) => Ok(default),
            }
        }
        let secs: f64 = var("SANCTUM_BENCH_SECS", 2.0)?;
        if !(secs > 0.0 && secs < 3600.0) {
            return Err(format!("SANCTUM_BENCH_SECS={secs} is out of range"));
        }
        let job_secs: u64 = var("SANCTUM_BENCH_JOB_SECS", 60)?;
        if !(5..=3600).contains(&job_secs) {
            return Err(format!("SANCTUM_BENCH_JOB_SECS={job_secs} is out of range (5..=3600)"));
        }
        let job_count: usize = var("SANCTUM_BENCH_JOBS", 100)?;
        if !(1..=10_000).contains(&job_count) {
            return Err(format!("SANCTUM_BENCH_JOBS={job_count} is out of range (1..=10000)"));
        }
        let warm_up = Duration::from_millis(var("SANCTUM_BENCH_WARMUP_MS", 300)?);
        let concurrency = var("SANCTUM_BENCH_CONCURRENCY", "1,8,64".to_owned())?
            .split(',')
            .map(|c| c.trim().parse::<usize>().ok().filter(|c| (1..=1000).contains(c)))
            .collect::<Option<Vec<_>>>()
            .ok_or("SANCTUM_BENCH_CONCURRENCY must be a list like 1,8,64")?;
        Ok(Self {
            timing: Timing { warm_up, measure: Duration::from_secs_f64(secs) },
            concurrency,
            warm_starts: var("SANCTUM_BENCH_STARTS", 3usize)?.max(1),
            skip: var("SANCTUM_BENCH_SKIP", String::new())?.split(',').map(|s| s.trim().to_owned()).collect(),
            tools: var("SANCTUM_BENCH_TOOLS", "echo,summarize".to_owned())?
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
            allocators: var("SANCTUM_BENCH_ALLOCATORS", "pooling,on-demand".to_owned())?
                .split(',')
                .map(|a| match a.trim() {
                    "pooling" => Ok("pooling"),
                    "on-demand" => Ok("on-demand"),
                    other => Err(format!("SANCTUM_BENCH_ALLOCATORS: unknown allocator {other:?}")),
                })
                .collect::<Result<_, _>>()?,
            jobs: jobs::JobSettings { job: Duration::from_secs(job_secs), count: job_count, warm_up },
        })
    }

    fn runs(&self, section: &str) -> bool {
        !self.skip.iter().any(|s| s == section)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(native::CLI_FLAG) {
        return native::run_cli(args.get(2).map_or("", String::as_str));
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("load bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("load bench: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(&settings)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("load bench: {errors} failed calls or starts; the figures above are not valid");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("load bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole run; returns how many calls or starts failed.
async fn bench(settings: &Settings) -> Result<usize, String> {
    let repo = report::repo_root();
    let fixture_path = repo.join("tests/plugins/bench00.wasm");
    let fixture = std::fs::read(&fixture_path).map_err(|e| format!("{}: {e}", fixture_path.display()))?;
    let tmp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let one_plugin = tmp.path().join("plugins-1");
    std::fs::create_dir_all(&one_plugin).map_err(|e| e.to_string())?;
    std::fs::write(one_plugin.join("bench00.wasm"), &fixture).map_err(|e| e.to_string())?;
    let twenty = startup::patched_copies(&fixture, workload::PLUGIN, 20, &tmp.path().join("plugins-20"))?;

    let echo = Arc::new(Workload::echo());
    let summarize = Arc::new(Workload::summarize());
    let workloads: Vec<Arc<Workload>> = [Arc::clone(&echo), Arc::clone(&summarize)]
        .into_iter()
        .filter(|w| settings.tools.iter().any(|t| t == w.tool))
        .collect();
    let template = Options {
        plugins: PathBuf::from("<tmp>/plugins"),
        cache_dir: PathBuf::from("<tmp>/cache"),
        allocator: Some("A"),
        stderr: PathBuf::new(),
        extra_args: Vec::new(),
    };

    let mut report = Report::default();
    report.say("# sanctum load benchmark");
    let mut context = report::context();
    context.push(format!("- command: `{}`", command_line()));
    context.push(format!(
        "- server: `sanctum {}` with A = each allocator; stderr (logs at the default `info`, audit records) to a \
         file; everything else default. Separate process; CPU = utime+stime of all its threads, memory = \
         VmRSS/VmHWM, from /proc.",
        template.args().join(" "),
    ));
    context.push(
        "- client: this process; one tokio current-thread runtime (at most one core) speaking raw HTTP/1.1 with \
         keep-alive. Client and server share the machine's cores, so at high concurrency they compete for CPU."
            .to_owned(),
    );
    let result_bytes = serde_json::to_string(&summarize.expected).map_or(0, |s| s.len());
    context.push(format!(
        "- per cell: {:.1} s warm-up, then {:.1} s measured. Each virtual client has its own session and \
         connection(s) and calls sequentially; every result is checked in full. Tools: `bench00__echo` \
         `{}`; `bench00__summarize` with 30 records ({} bytes of arguments; {} bytes of structured result, sent \
         again as text).",
        settings.timing.warm_up.as_secs_f64(),
        settings.timing.measure.as_secs_f64(),
        echo.arguments,
        summarize.arguments.len(),
        result_bytes,
    ));
    report.say(&context.join("\n"));

    let mut cells = Vec::new();
    if settings.runs("calls") {
        let (concurrency, timing) = (&settings.concurrency, settings.timing);
        cells = matrix::section(
            &mut report,
            &one_plugin,
            tmp.path(),
            &settings.allocators,
            &workloads,
            concurrency,
            timing,
        )
        .await?;
    }
    let mut failures = cells.iter().map(|c| c.outcome.errors).sum::<usize>();

    if settings.runs("native") {
        failures += native::section(&mut report, settings.timing, &workloads, &cells).await?;
    }
    if settings.runs("startup") {
        failures +=
            startup::section(&mut report, settings.warm_starts, &repo, tmp.path(), &one_plugin, &twenty).await?;
    }
    if settings.runs("letta") {
        failures += letta::section(&mut report, &repo, tmp.path(), settings.timing).await?;
    }
    if settings.runs("guests") {
        failures += guests::section(&mut report, &repo, tmp.path(), settings.timing).await?;
    }
    if settings.runs("jobs") {
        failures += jobs::section(&mut report, &repo, tmp.path(), &fixture, settings.jobs).await?;
    }

    let errors: Vec<String> = cells
        .iter()
        .filter(|c| c.outcome.errors > 0)
        .flat_map(|c| {
            c.outcome
                .error_samples
                .iter()
                .map(move |e| format!("- {} {} {} c={}: {e}", c.allocator, c.tool, c.transport.label(), c.concurrency))
        })
        .collect();
    if !errors.is_empty() {
        report.say(&format!("## Errors\n\n{}", errors.join("\n")));
    }
    let path = report::report_path();
    report.write(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("load bench: report written to {}", path.display());
    if failures > 0 {
        // The servers' logs explain failures; keep them instead of deleting the scratch dir.
        eprintln!("load bench: server logs kept in {}", tmp.keep().display());
    }
    Ok(failures)
}

/// How this run was invoked: the cargo command plus the settings taken from the environment.
fn command_line() -> String {
    let mut parts: Vec<String> =
        std::env::vars().filter(|(k, _)| k.starts_with("SANCTUM_BENCH_")).map(|(k, v)| format!("{k}={v}")).collect();
    parts.sort();
    parts.push("cargo bench -p sanctum --bench load".to_owned());
    parts.join(" ")
}
