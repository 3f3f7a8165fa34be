//! Jobs (`sanctum:plugin/jobs`) end to end: the real server, the `probe` fixture's `job_*`
//! tools over rmcp's client, a real policy and real programs (`tests/fixtures/job-ticker.sh`,
//! `job-flood.sh`, `escape.sh`). A job runs outside any call and is followed from later calls;
//! it ends by itself (exit status, signal), or the host stops it and everything it started (on
//! cancel, its time limit, shutdown). `max_jobs`, the output cap, the per-read cap, the plugin's
//! own view of its jobs, a crash and restart of the real binary (`lost`), a hot reload, the
//! audit trail and `/metrics` are each checked. No test asserts a wall-clock threshold: waits
//! only poll, with a generous deadline for failing.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rmcp::ServiceExt as _;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use sanctum::digest::ComponentDigest;
use serde_json::{Value, json};

use crate::reload::install;
use crate::support::process_tree::{alive, descendants};
use crate::support::running::Running;
use crate::support::{Client, Recorder, TestServer, call, plugin_file, plugins_dir, repo_root, text};

/// How long a wait may take before the test fails (never a performance bound).
const PATIENCE: Duration = Duration::from_secs(60);

/// The agent the tests' clients say they are.
const AGENT: &str = "job-agent";

/// Every command the tests start, granted to `plugin`; pid files go to `pids`.
fn policy(plugin: &str, pids: &Path) -> String {
    let ticker = repo_root().join("tests/fixtures/job-ticker.sh");
    let flood = repo_root().join("tests/fixtures/job-flood.sh");
    let escape = repo_root().join("tests/fixtures/escape.sh");
    let ticker = |name: &str, extra: &str| {
        format!(
            "[plugins.{plugin}.commands.{name}]\nprogram = \"/bin/sh\"\nargs = [\"{script}\", \"{pids}\"]\nallowed_args \
             = [\"[a-z0-9.]+\"]\nwritable = [\"{pids}\"]\n{extra}\n",
            script = ticker.display(),
            pids = pids.display(),
        )
    };
    let flood = |name: &str, kib: u32| {
        format!(
            "[plugins.{plugin}.commands.{name}]\nprogram = \"/bin/sh\"\nargs = [\"{script}\"]\nallowed_args = \
             [\"[0-9]+\"]\njob_output_kib = {kib}\n",
            script = flood.display(),
        )
    };
    [
        ticker("ticker", ""),
        ticker("pair", "max_jobs = 2"),
        ticker("brief", "job_timeout_ms = 1000"),
        ticker("many", "max_jobs = 64"),
        flood("flood", 4),
        flood("big", 512),
        format!(
            "[plugins.{plugin}.commands.escape]\nprogram = \"/bin/sh\"\nargs = [\"{script}\"]\nallowed_args = \
             [\"[a-z-]+\", \"[0-9.]+\"]\nmax_jobs = 4\n",
            script = escape.display(),
        ),
    ]
    .concat()
}

/// A server with `probe` (and `extra` plugin files), the test policy and an audit file, and a
/// client that says it is [`AGENT`].
struct Jobs {
    server: TestServer,
    client: Client,
    /// Where the ticker writes its pid files; also holds the policy.
    scratch: tempfile::TempDir,
}

impl Jobs {
    async fn start() -> Self {
        Self::start_with(&["probe.wasm"], &[], &["probe"], |_| {}).await
    }

    async fn start_with(
        files: &[&str],
        extra: &[(&str, &[u8])],
        granted: &[&str],
        configure: impl FnOnce(&mut sanctum::config::ServeArgs),
    ) -> Self {
        let scratch = tempfile::tempdir().expect("temp dir");
        let policy_path = scratch.path().join("policy.toml");
        let text: String = granted.iter().map(|plugin| policy(plugin, scratch.path())).collect();
        std::fs::write(&policy_path, text).expect("write policy");
        let server = TestServer::start_with(plugins_dir(files, extra), |args| {
            args.source.policy = Some(policy_path);
            args.audit = "audit.log".into();
            // Following a job is many short calls; the per-principal rate is not under test.
            args.front_door.calls_per_minute = 0;
            configure(args);
        })
        .await;
        assert!(server.load_errors.is_empty(), "{:?}", server.load_errors);
        let client = connect_as(&server.url("/mcp"), AGENT).await;
        Self { server, client, scratch }
    }

    fn probe(&self) -> Probe<'_> {
        Probe { client: &self.client, plugin: "probe" }
    }

    fn pids(&self) -> &Path {
        self.scratch.path()
    }

    /// The audit records about job `id`.
    fn audit(&self, id: &str) -> Vec<Value> {
        self.server.audit_records().into_iter().filter(|r| r["event"] == "job" && r["job"] == id).collect()
    }

    async fn metrics(&self) -> String {
        reqwest::get(self.server.url("/metrics")).await.expect("GET /metrics").text().await.expect("metrics text")
    }
}

/// A Streamable HTTP client that identifies its agent.
async fn connect_as(url: &str, agent: &str) -> Client {
    let headers = HashMap::from([("x-agent-id".parse().expect("name"), agent.parse().expect("value"))]);
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(headers);
    Recorder::default().serve(StreamableHttpClientTransport::from_config(config)).await.expect("handshake over /mcp")
}

/// One plugin's `job_*` tools, as a client calls them.
struct Probe<'a> {
    client: &'a Client,
    plugin: &'a str,
}

impl Probe<'_> {
    /// The tool's JSON answer, or its error text.
    async fn tool(&self, tool: &str, args: Value) -> Result<Value, String> {
        let name = format!("{}__{tool}", self.plugin);
        let result = self.client.call_tool(call(&name, args)).await.expect("the call gets a result");
        if result.is_error == Some(true) {
            return Err(text(&result).to_owned());
        }
        Ok(serde_json::from_str(text(&result)).expect("the probe answers JSON"))
    }

    async fn start(&self, command: &str, args: &[&str]) -> Result<Value, String> {
        self.tool("job_start", json!({"command": command, "args": args})).await
    }

    /// Start a job that must start; returns it and its id.
    async fn started(&self, command: &str, args: &[&str]) -> (Value, String) {
        let job = self.start(command, args).await.unwrap_or_else(|e| panic!("{command} {args:?}: {e}"));
        assert_eq!(job["state"], "running", "{job}");
        let id = job["id"].as_str().expect("an id").to_owned();
        (job, id)
    }

    async fn status(&self, id: &str) -> Result<Value, String> {
        self.tool("job_status", json!({"id": id})).await
    }

    async fn state(&self, id: &str) -> String {
        let job = self.status(id).await.expect("status");
        job["state"].as_str().expect("state").to_owned()
    }

    async fn read(&self, id: &str, offset: u64, max_bytes: u32) -> Result<Value, String> {
        self.tool("job_read", json!({"id": id, "offset": offset, "max_bytes": max_bytes})).await
    }

    async fn cancel(&self, id: &str) -> Result<Value, String> {
        self.tool("job_cancel", json!({"id": id})).await
    }

    async fn list(&self) -> Vec<Value> {
        let listed = self.tool("job_list", json!({})).await.expect("list");
        listed["jobs"].as_array().expect("jobs").clone()
    }

    /// Poll until the job is no longer running; returns how it stands.
    async fn ended(&self, id: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let job = self.status(id).await.expect("status");
            if job["state"] != "running" {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} still runs: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The whole output file, read in 64 KiB pieces.
    async fn output(&self, id: &str) -> String {
        let mut data = String::new();
        let mut offset = 0;
        loop {
            let chunk = self.read(id, offset, 64 * 1024).await.expect("read");
            let bytes = chunk["bytes"].as_u64().expect("bytes");
            data.push_str(chunk["data"].as_str().expect("data"));
            offset = chunk["next_offset"].as_u64().expect("next offset");
            if bytes == 0 {
                return data;
            }
        }
    }
}

fn id_of(job: &Value) -> &str {
    job["id"].as_str().expect("an id")
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("u64")
}

/// The pid `job-ticker.sh DIR NAME ...` wrote, once it has.
async fn pid_of(dir: &Path, name: &str) -> u32 {
    let path = dir.join(format!("{name}.pid"));
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some(pid) = text.strip_suffix('\n').and_then(|t| t.parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "{} was never written", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ticker's pid and, once it has one, its children (its `sleep`).
async fn ticker_tree(dir: &Path, name: &str) -> (u32, Vec<u32>) {
    let pid = pid_of(dir, name).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let children = descendants(pid);
        if !children.is_empty() {
            return (pid, children);
        }
        assert!(Instant::now() < deadline, "the ticker {pid} never started a child");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_gone(what: &str, pids: &[u32]) {
    let alive: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(alive.is_empty(), "{what}: still running: {alive:?} of {pids:?}");
}

/// A process whose command line has `marker` as an argument (`escape.sh`'s `sleep MARKER`).
fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).split('\0').any(|arg| arg == marker))
    })
}

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What `job-ticker.sh DIR NAME COUNT ...` prints, line by line (stdout and stderr).
fn ticker_lines(name: &str, count: u32) -> Vec<String> {
    let mut lines: Vec<String> =
        (1..=count).flat_map(|i| [format!("tick {i} of {count}"), format!("tock {i}")]).collect();
    lines.push(format!("done {name}"));
    lines
}

/// What `job-flood.sh LINES` prints.
fn flood_output(lines: usize) -> String {
    let mut out: String = (0..lines).map(|i| format!("line {i:06} {}\n", "x".repeat(51))).collect();
    out.push_str("the end\n");
    out
}

/// `probe.wasm` with one of its strings replaced by another of the same length: the data
/// segment holds the plugin's name and version side by side (`probe0.1.0`) exactly once.
fn patched_probe(to: &str) -> Vec<u8> {
    let from = b"probe0.1.0";
    assert_eq!(to.len(), from.len(), "same length, so nothing else moves");
    let mut bytes = std::fs::read(plugin_file("probe.wasm")).expect("probe.wasm");
    let at: Vec<usize> = bytes.windows(from.len()).enumerate().filter(|(_, w)| w == from).map(|(i, _)| i).collect();
    let [offset] = at[..] else { panic!("`probe0.1.0` occurs {} times in probe.wasm; the patch needs one", at.len()) };
    bytes[offset..offset + from.len()].copy_from_slice(to.as_bytes());
    bytes
}

fn sum_metric(body: &str, name: &str, labels: &str) -> Option<f64> {
    let lines: Vec<f64> = body
        .lines()
        .filter(|l| {
            l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{']))
                && (labels.is_empty() || l.contains(labels))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.iter().sum())
}

#[tokio::test]
async fn a_job_runs_in_the_background_and_its_output_is_read_in_pieces() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let before = now_ms();
    let (started, id) = probe.started("ticker", &["run", "8", "0.3", "0"]).await;
    let after = now_ms();
    assert_eq!(started["command"], "ticker");
    assert_eq!(started["args"], json!(["run", "8", "0.3", "0"]));
    assert_eq!(started["agent"], AGENT);
    let at = started["started_at_ms"].as_u64().expect("started_at_ms");
    assert!((before.saturating_sub(1000)..=after + 1000).contains(&at), "{at} not within [{before}, {after}]");

    // While it runs: elapsed time and output grow.
    let mut sizes = BTreeSet::new();
    let mut elapsed = 0;
    let finished = loop {
        let job = probe.status(&id).await.expect("status");
        if job["state"] != "running" {
            break job;
        }
        let now = job["elapsed_ms"].as_u64().expect("elapsed_ms");
        assert!(now >= elapsed, "elapsed went back from {elapsed} to {now}");
        elapsed = now;
        sizes.insert(job["output_bytes"].as_u64().expect("output_bytes"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(sizes.len() >= 2, "the output was seen growing while the job ran: {sizes:?}");
    assert!(elapsed > 0, "elapsed time while running");
    assert_eq!(finished["state"], "exited:0", "{finished}");
    assert!(finished["elapsed_ms"].as_u64().expect("elapsed") >= 2400, "8 sleeps of 0.3 s: {finished}");
    let expected = ticker_lines("run", 8);
    let total: usize = expected.iter().map(|l| l.len() + 1).sum();
    assert_eq!(finished["output_bytes"], total, "{finished}");
    assert_eq!(finished["output_truncated"], false);

    // The whole output, stdout and stderr interleaved.
    let whole = probe.read(&id, 0, 64 * 1024).await.expect("read");
    assert_eq!((whole["bytes"].as_u64(), whole["next_offset"].as_u64()), (Some(total as u64), Some(total as u64)));
    assert_eq!(whole["complete"], true);
    let data = whole["data"].as_str().expect("data").to_owned();
    let mut got: Vec<&str> = data.lines().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    let ticks: Vec<&str> = data.lines().filter(|l| l.starts_with("tick")).collect();
    assert_eq!(ticks, expected.iter().filter(|l| l.starts_with("tick")).map(String::as_str).collect::<Vec<_>>());
    assert!(data.ends_with("done run\n"), "{data}");

    // In pieces: offsets chain, only the last piece is complete.
    let first = probe.read(&id, 0, 10).await.expect("read");
    assert_eq!((first["bytes"].as_u64(), first["next_offset"].as_u64()), (Some(10), Some(10)));
    assert_eq!(first["complete"], false);
    let mut pieces = first["data"].as_str().expect("data").to_owned();
    let mut offset = 10;
    loop {
        let chunk = probe.read(&id, offset, 7).await.expect("read");
        let bytes = chunk["bytes"].as_u64().expect("bytes");
        assert!(bytes <= 7);
        assert_eq!(chunk["next_offset"].as_u64(), Some(offset + bytes), "{chunk}");
        pieces.push_str(chunk["data"].as_str().expect("data"));
        offset += bytes;
        if chunk["complete"] == true {
            assert_eq!(offset, total as u64);
            break;
        }
        assert!(bytes > 0, "an incomplete read past the end: {chunk}");
    }
    assert_eq!(pieces, data);
    let past = probe.read(&id, 100_000, 100).await.expect("read past the end");
    assert_eq!((past["bytes"].as_u64(), past["next_offset"].as_u64()), (Some(0), Some(total as u64)));
    assert_eq!(past["complete"], true);
    let tail = probe.tool("job_tail", json!({"id": id, "max_bytes": 30})).await.expect("tail");
    assert!(tail["data"].as_str().expect("tail").ends_with("done run\n"), "{tail}");

    // The host's files: the record and the log, which is the output.
    let dir = jobs.server.jobs_dir.join("probe");
    assert_eq!(std::fs::read_to_string(dir.join(format!("{id}.log"))).expect("log"), data);
    let record = std::fs::read_to_string(dir.join(format!("{id}.json"))).expect("record");
    serde_json::from_str::<Value>(&record).expect("the record is JSON");

    let listed = probe.list().await;
    assert_eq!(listed.first().map(id_of), Some(id.as_str()), "{listed:?}");
    assert_eq!(listed[0]["state"], "exited:0");
}

#[tokio::test]
async fn a_job_that_fails_or_dies_of_a_signal_says_so() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let (_, failing) = probe.started("ticker", &["fail", "1", "0", "3"]).await;
    let failed = probe.ended(&failing).await;
    assert_eq!(failed["state"], "exited:3", "{failed}");
    assert!(probe.output(&failing).await.contains("done fail"));

    let (_, killed) = probe.started("ticker", &["kill", "1", "0", "kill"]).await;
    let died = probe.ended(&killed).await;
    assert_eq!(died["state"], "signaled:9", "{died}");

    let [_, finished] = &jobs.audit(&failing)[..] else { panic!("started and finished: {:?}", jobs.audit(&failing)) };
    assert_eq!(finished["step"], "finished", "{finished}");
    assert_eq!(finished["exit_status"], 3, "{finished}");
    let finished = jobs.audit(&killed).into_iter().find(|r| r["step"] == "finished").expect("finished");
    assert_eq!(finished["signal"], 9, "{finished}");
}

#[tokio::test]
async fn a_cancelled_job_is_stopped_with_everything_it_started() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let (_, id) = probe.started("ticker", &["long", "1000", "0.2", "0"]).await;
    let (pid, children) = ticker_tree(jobs.pids(), "long").await;
    assert!(alive(pid));
    assert_eq!(probe.state(&id).await, "running");

    let cancelled = probe.cancel(&id).await.expect("cancel");
    assert_eq!(cancelled["state"], "stopped:cancelled", "{cancelled}");
    assert_gone("the cancelled job", &[&[pid][..], &children].concat());
    assert_eq!(probe.state(&id).await, "stopped:cancelled");
    assert!(probe.output(&id).await.contains("tick 1 of 1000\n"), "its output is kept");

    // Cancelling what has ended changes nothing.
    let again = probe.cancel(&id).await.expect("cancel again");
    assert_eq!(again["state"], "stopped:cancelled");
    assert_eq!(again["elapsed_ms"], cancelled["elapsed_ms"], "the clock stopped with the job");

    let steps: Vec<Value> = jobs.audit(&id).iter().map(|r| r["step"].clone()).collect();
    assert_eq!(steps, [json!("started"), json!("cancelled")], "{:?}", jobs.audit(&id));
    let record = jobs.audit(&id).pop().expect("cancelled");
    // How many of them the count includes races with the stop signal (see `assert_gone` above
    // for what matters: none is left).
    assert!(record["descendants_killed"].as_u64().is_some(), "{record}");
}

#[tokio::test]
async fn a_job_past_its_time_limit_is_stopped() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let (_, id) = probe.started("brief", &["slow", "1000", "0.2", "0"]).await;
    let (pid, children) = ticker_tree(jobs.pids(), "slow").await;
    let ended = probe.ended(&id).await;
    assert_eq!(ended["state"], "stopped:timeout", "{ended}");
    assert!(ended["elapsed_ms"].as_u64().expect("elapsed") >= 1000, "job_timeout_ms = 1000: {ended}");
    assert_gone("the timed-out job", &[&[pid][..], &children].concat());
    let record = jobs.audit(&id).pop().expect("audited");
    assert_eq!(record["step"], "timed_out", "{record}");
    assert!(record["duration_ms"].as_f64().is_some_and(|ms| ms >= 1000.0), "{record}");
}

#[tokio::test]
async fn max_jobs_refuses_more_of_a_command_until_one_ends() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let (_, first) = probe.started("ticker", &["first", "3", "0.3", "0"]).await;
    let refused = probe.start("ticker", &["second", "1", "0", "0"]).await.expect_err("max_jobs = 1");
    assert!(refused.starts_with("limit-reached: ") && refused.contains(&first), "{refused}");
    // The limit is per command: another command still starts.
    let (_, one) = probe.started("pair", &["one", "1000", "0.2", "0"]).await;
    let (_, two) = probe.started("pair", &["two", "1000", "0.2", "0"]).await;
    let refused = probe.start("pair", &["three", "1", "0", "0"]).await.expect_err("max_jobs = 2");
    assert!(refused.starts_with("limit-reached: ") && refused.contains(&one) && refused.contains(&two), "{refused}");

    assert_eq!(probe.ended(&first).await["state"], "exited:0");
    let (_, second) = probe.started("ticker", &["second", "1", "0", "0"]).await;
    assert_eq!(probe.ended(&second).await["state"], "exited:0");
    probe.cancel(&one).await.expect("cancel");
    let (_, three) = probe.started("pair", &["three", "1", "0", "0"]).await;
    assert_eq!(probe.ended(&three).await["state"], "exited:0");
    probe.cancel(&two).await.expect("cancel");

    let refusals = jobs
        .server
        .audit_records()
        .into_iter()
        .filter(|r| r["event"] == "job" && r["step"] == "refused")
        .map(|r| r["command"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(refusals, ["ticker", "pair"], "each refusal is audited");
    let listed = probe.list().await;
    let ids: BTreeSet<&str> = listed.iter().map(id_of).collect();
    assert_eq!(ids, BTreeSet::from([&*first, &*second, &*one, &*two, &*three]), "refused starts are no jobs");
}

#[tokio::test]
async fn a_job_whose_descendants_escape_leaves_nothing_behind() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    // A new session that outlives the script, stopped by cancel.
    let (_, hanging) = probe.started("escape", &["setsid-hang", "58.101"]).await;
    until("the escaped sleep runs", || running("58.101")).await;
    let cancelled = probe.cancel(&hanging).await.expect("cancel");
    assert_eq!(cancelled["state"], "stopped:cancelled");
    assert!(!running("58.101"), "a setsid descendant outlived the cancelled job");

    // Orphans and respawners left behind by a script that exits at once.
    for (mode, marker) in [("double-fork", "58.102"), ("respawn", "58.103"), ("setsid-exit", "58.104")] {
        let (_, id) = probe.started("escape", &[mode, marker]).await;
        let ended = probe.ended(&id).await;
        assert_eq!(ended["state"], "exited:0", "{mode}: {ended}");
        assert!(!running(marker), "{mode}: a descendant outlived the job");
        assert_eq!(probe.output(&id).await, "started\n", "{mode}");
        let record = jobs.audit(&id).pop().expect("audited");
        assert_eq!(record["step"], "finished", "{mode}: {record}");
        assert!(record["descendants_killed"].as_u64().is_some_and(|n| n >= 1), "{mode}: {record}");
    }
}

#[tokio::test]
async fn output_past_the_cap_keeps_its_head_and_tail_and_reads_are_capped() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    // 2000 lines of 64 bytes: 125 KiB into a 4 KiB cap.
    let (_, id) = probe.started("flood", &["2000"]).await;
    let ended = probe.ended(&id).await;
    let expected = flood_output(2000);
    assert_eq!(ended["state"], "exited:0", "{ended}");
    assert_eq!(ended["output_bytes"], expected.len(), "every byte written is counted");
    assert_eq!(ended["output_truncated"], true);
    let kept = probe.output(&id).await;
    let log = jobs.server.jobs_dir.join("probe").join(format!("{id}.log"));
    let on_disk = std::fs::read_to_string(&log).expect("log");
    assert_eq!(kept, on_disk);
    let (head, tail) = (4096, 8192);
    assert!(on_disk.len() <= head + tail + 100, "the file is bounded: {} bytes", on_disk.len());
    assert_eq!(&kept[..head], &expected[..head], "the first 4 KiB");
    assert!(kept.ends_with(&expected[expected.len() - tail..]), "the last 8 KiB:\n{}", &kept[head..]);
    let between = &kept[head..kept.len() - tail];
    let left_out = expected.len() - head - tail;
    assert_eq!(between.trim(), format!("[sanctum: {left_out} bytes left out]"), "{between:?}");
    let tail_text = probe.tool("job_tail", json!({"id": id, "max_bytes": 100})).await.expect("tail");
    assert!(tail_text["data"].as_str().expect("tail").ends_with("the end\n"), "{tail_text}");

    // 250 KiB under a 512 KiB cap: kept whole, and one read returns at most 64 KiB.
    let (_, id) = probe.started("big", &["4000"]).await;
    let ended = probe.ended(&id).await;
    let expected = flood_output(4000);
    assert_eq!(ended["state"], "exited:0", "{ended}");
    assert_eq!(
        (ended["output_bytes"].as_u64(), &ended["output_truncated"]),
        (Some(expected.len() as u64), &json!(false))
    );
    let read = probe.read(&id, 0, 1_000_000).await.expect("read");
    assert_eq!((read["bytes"].as_u64(), read["next_offset"].as_u64()), (Some(65536), Some(65536)), "64 KiB per read");
    assert_eq!(read["complete"], false);
    assert_eq!(probe.output(&id).await, expected);
}

#[tokio::test]
async fn other_calls_are_answered_while_a_job_runs() {
    let jobs = Jobs::start_with(&["probe.wasm", "echo.wasm"], &[], &["probe"], |_| {}).await;
    let probe = jobs.probe();
    let (_, id) = probe.started("ticker", &["busy", "1000", "0.2", "0"]).await;
    for n in 0..3 {
        let echoed = jobs.client.call_tool(call("echo__echo", json!({"text": format!("still here {n}")}))).await;
        let echoed = echoed.expect("echo answers");
        assert_eq!(text(&echoed), format!("still here {n}"));
        assert_eq!(probe.state(&id).await, "running", "the job runs on while other calls are served");
    }
    assert_eq!(probe.cancel(&id).await.expect("cancel")["state"], "stopped:cancelled");
}

#[tokio::test]
async fn a_plugin_sees_only_its_own_jobs() {
    // `probx` is probe.wasm with its declared name patched: a second plugin with the same tools.
    let probx = patched_probe("probx0.1.0");
    let jobs = Jobs::start_with(&["probe.wasm"], &[("probx.wasm", &probx)], &["probe", "probx"], |_| {}).await;
    let probe = jobs.probe();
    let other = Probe { client: &jobs.client, plugin: "probx" };
    let (_, id) = probe.started("ticker", &["mine", "1000", "0.2", "0"]).await;

    for attempt in [
        other.status(&id).await,
        other.read(&id, 0, 100).await,
        other.cancel(&id).await,
        other.tool("job_tail", json!({"id": id})).await,
    ] {
        let refused = attempt.expect_err("another plugin's job");
        assert!(refused.starts_with("not-found: "), "{refused}");
    }
    assert!(other.list().await.is_empty(), "probx has no jobs");
    assert_eq!(probe.state(&id).await, "running", "probx's cancel did not touch probe's job");

    // Its own grant, its own count and its own directory.
    let (_, theirs) = other.started("ticker", &["theirs", "1000", "0.2", "0"]).await;
    assert!(probe.status(&theirs).await.expect_err("the other way round").starts_with("not-found: "));
    assert_eq!(probe.list().await.iter().map(id_of).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(other.list().await.iter().map(id_of).collect::<Vec<_>>(), [theirs.as_str()]);
    assert!(jobs.server.jobs_dir.join(format!("probe/{id}.json")).exists());
    assert!(jobs.server.jobs_dir.join(format!("probx/{theirs}.json")).exists());
    assert!(!jobs.server.jobs_dir.join(format!("probx/{id}.json")).exists());
    probe.cancel(&id).await.expect("cancel");
    other.cancel(&theirs).await.expect("cancel");
}

#[tokio::test]
async fn a_graceful_shutdown_stops_running_jobs() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let (_, id) = probe.started("ticker", &["stopping", "1000", "0.2", "0"]).await;
    let (pid, children) = ticker_tree(jobs.pids(), "stopping").await;
    jobs.server.stop();
    let record = jobs.server.jobs_dir.join(format!("probe/{id}.json"));
    until("the record says the job was stopped by the shutdown", || {
        std::fs::read_to_string(&record).is_ok_and(|text| text.contains("shutdown"))
    })
    .await;
    let text = std::fs::read_to_string(&record).expect("record");
    serde_json::from_str::<Value>(&text).expect("the record is JSON");
    until("the job's processes are gone", || !alive(pid)).await;
    assert_gone("the job stopped by the shutdown", &[&[pid][..], &children].concat());
    until("the shutdown is audited", || jobs.audit(&id).iter().any(|r| r["step"] == "shutdown")).await;
}

/// The real binary serving `plugins` with its jobs in `jobs_dir`, appending its stderr to `log`.
async fn serve(plugins: &Path, policy: &Path, jobs_dir: &Path, audit: &Path, log: &Path) -> Running {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("server log");
    let mut command = tokio::process::Command::from(crate::support::sanctum_cli());
    command
        .args(["serve", "--port", "0", "--admin-socket", "off", "--plugins"])
        .arg(plugins)
        .arg("--policy")
        .arg(policy)
        .arg("--jobs-dir")
        .arg(jobs_dir)
        .arg("--audit")
        .arg(audit)
        .args(["--pins", "off", "--calls-per-minute", "0"])
        .env("SANCTUM_CACHE_DIR", crate::support::shared_compile_cache())
        .env_remove("SANCTUM_JOBS_DIR")
        .stderr(log);
    Running::start(command).await
}

#[tokio::test]
async fn after_a_crash_a_running_job_is_lost_and_its_processes_are_gone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    let pids = dir.path().join("pids");
    let jobs_dir = dir.path().join("jobs");
    for sub in [&plugins, &pids] {
        std::fs::create_dir(sub).expect("mkdir");
    }
    std::fs::copy(plugin_file("probe.wasm"), plugins.join("probe.wasm")).expect("copy");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, policy("probe", &pids)).expect("policy");
    let audit = dir.path().join("audit.log");
    let log = dir.path().join("server.log");

    let mut first = serve(&plugins, &policy_path, &jobs_dir, &audit, &log).await;
    let client = connect_as(&first.url("/mcp"), AGENT).await;
    let probe = Probe { client: &client, plugin: "probe" };
    let (_, id) = probe.started("ticker", &["orphan", "1000", "0.2", "0"]).await;
    let (pid, children) = ticker_tree(&pids, "orphan").await;
    let server_pid = first.pid();
    let everything: Vec<u32> = [&[pid][..], &children, &descendants(server_pid)].concat();

    let killed = std::process::Command::new("kill").args(["-KILL", &server_pid.to_string()]).status().expect("kill");
    assert!(killed.success());
    first.child.wait().await.expect("the server died");
    drop(client);
    until("the job's processes die with the server", || !alive(pid)).await;
    until("everything the server started is gone", || everything.iter().all(|p| !alive(*p))).await;
    let record = std::fs::read_to_string(jobs_dir.join(format!("probe/{id}.json"))).expect("the record survives");
    serde_json::from_str::<Value>(&record).expect("the record is JSON");

    let second = serve(&plugins, &policy_path, &jobs_dir, &audit, &log).await;
    let client = connect_as(&second.url("/mcp"), AGENT).await;
    let probe = Probe { client: &client, plugin: "probe" };
    let lost = probe.status(&id).await.expect("the record is read back");
    assert_eq!(lost["state"], "lost", "{lost}");
    assert_eq!(lost["command"], "ticker");
    assert_eq!(lost["agent"], AGENT);
    assert!(probe.output(&id).await.contains("tick 1 of 1000"), "its output is still readable");
    assert_eq!(probe.cancel(&id).await.expect("cancel")["state"], "lost", "an ended job is returned as it is");
    let listed = probe.list().await;
    assert!(listed.iter().any(|j| id_of(j) == id && j["state"] == "lost"), "{listed:?}");
    assert!(!alive(pid), "never running again");
    // The same command starts again: the lost job holds no slot.
    let (_, again) = probe.started("ticker", &["again", "1", "0", "0"]).await;
    assert_eq!(probe.ended(&again).await["state"], "exited:0");

    let records: Vec<Value> = std::fs::read_to_string(&audit)
        .expect("audit")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &Value| r["event"] == "job" && r["job"] == id.as_str())
        .collect();
    assert!(records.iter().any(|r| r["step"] == "lost"), "{records:?}");
}

#[tokio::test]
async fn a_job_keeps_running_through_a_hot_reload_of_its_plugin() {
    let jobs = Jobs::start_with(&["probe.wasm"], &[], &["probe"], |args| args.watch = true).await;
    let plugins = jobs.server.audit_path().parent().expect("the plugins dir").to_owned();
    let probe = jobs.probe();
    let (_, id) = probe.started("ticker", &["reload", "1000", "0.2", "0"]).await;
    let (pid, children) = ticker_tree(jobs.pids(), "reload").await;

    let newer = patched_probe("probe0.1.1");
    let digest = ComponentDigest::of(&newer).hex();
    install(&plugins.join("probe.wasm"), &newer);
    crate::reload::until("the new version serves", async || {
        jobs.server.app_registry.health().plugins.iter().any(|p| p.name == "probe" && p.sha256 == digest)
    })
    .await;
    let served = jobs.server.app_registry.health();
    let version = served.plugins.iter().find(|p| p.name == "probe").map(|p| p.version.clone());
    assert_eq!(version.as_deref(), Some("0.1.1"));

    let job = probe.status(&id).await.expect("the new version sees the job");
    assert_eq!(job["state"], "running", "{job}");
    assert!(alive(pid));
    assert!(probe.list().await.iter().any(|j| id_of(j) == id));
    assert_eq!(probe.cancel(&id).await.expect("cancel")["state"], "stopped:cancelled");
    assert_gone("the job cancelled by the new version", &[&[pid][..], &children].concat());
    let steps: Vec<Value> = jobs.audit(&id).iter().map(|r| r["step"].clone()).collect();
    assert_eq!(steps, [json!("started"), json!("cancelled")]);
}

#[tokio::test]
async fn jobs_are_audited_and_counted_in_metrics() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let digest = ComponentDigest::of(&std::fs::read(plugin_file("probe.wasm")).expect("probe.wasm")).hex();
    let (_, id) = probe.started("ticker", &["counted", "1000", "0.2", "0"]).await;
    let body = jobs.metrics().await;
    assert_eq!(sum_metric(&body, "sanctum_jobs_running", ""), Some(1.0), "{body}");
    probe.cancel(&id).await.expect("cancel");
    let (_, exited) = probe.started("ticker", &["exits", "1", "0", "0"]).await;
    probe.ended(&exited).await;

    let body = jobs.metrics().await;
    assert_eq!(sum_metric(&body, "sanctum_jobs_running", ""), Some(0.0), "{body}");
    assert!(body.contains("# TYPE sanctum_job_duration_seconds histogram"), "{body}");
    for outcome in ["cancelled", "exited"] {
        let count = sum_metric(&body, "sanctum_job_duration_seconds_count", &format!("outcome=\"{outcome}\""));
        assert_eq!(count, Some(1.0), "{outcome}: {body}");
    }

    let records = jobs.audit(&id);
    let [started, cancelled] = &records[..] else { panic!("started and cancelled: {records:?}") };
    for record in [started, cancelled] {
        assert_eq!(record["plugin"], "probe", "{record}");
        assert_eq!(record["plugin_sha256"], digest, "{record}");
        assert_eq!(record["command"], "ticker", "{record}");
    }
    assert_eq!((&started["step"], &started["tool"]), (&json!("started"), &json!("job_start")), "{started}");
    assert_eq!((&cancelled["step"], &cancelled["tool"]), (&json!("cancelled"), &json!("job_cancel")), "{cancelled}");
    assert!(cancelled["duration_ms"].as_f64().is_some(), "{cancelled}");
    let records = jobs.audit(&exited);
    let finished = records.iter().find(|r| r["step"] == "finished").expect("finished");
    assert_eq!(finished["exit_status"], 0, "{finished}");
    assert!(finished["duration_ms"].as_f64().is_some(), "{finished}");
    let job_records: Vec<Value> = jobs.server.audit_records().into_iter().filter(|r| r["event"] == "job").collect();
    assert!(
        job_records.iter().all(|r| !r.to_string().contains("counted") && !r.to_string().contains("exits")),
        "audit records hold no argument values: {job_records:?}"
    );
}

#[tokio::test]
async fn ungranted_commands_refused_arguments_and_unknown_ids_are_refused() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let refused = probe.start("nope", &[]).await.expect_err("not granted");
    assert!(refused.starts_with("not-granted: ") && refused.contains("plugins.probe.commands.nope"), "{refused}");
    for args in [&["-x", "1", "0", "0"][..], &["a;b", "1", "0", "0"], &["A", "1", "0", "0"], &["a\0b", "1", "0", "0"]] {
        let refused = probe.start("ticker", args).await.expect_err("argument refused");
        assert!(refused.starts_with("argument-refused: "), "{args:?}: {refused}");
    }
    for refused in [
        probe.status("no-such-job").await,
        probe.read("no-such-job", 0, 10).await,
        probe.cancel("no-such-job").await,
        probe.status("../../etc/passwd").await,
    ] {
        let refused = refused.expect_err("unknown id");
        assert!(refused.starts_with("not-found: "), "{refused}");
    }
    assert!(probe.list().await.is_empty(), "refused starts are no jobs");
    assert!(std::fs::read_dir(jobs.server.jobs_dir.join("probe")).map_or(true, |d| d.count() == 0));
    let refusals: Vec<Value> =
        jobs.server.audit_records().into_iter().filter(|r| r["event"] == "job" && r["step"] == "refused").collect();
    let commands: Vec<&str> = refusals.iter().map(|r| r["command"].as_str().unwrap_or_default()).collect();
    assert_eq!(commands, ["nope", "ticker", "ticker", "ticker", "ticker"], "each refused start is audited");
    for record in &refusals {
        assert!(record["job"].is_null() && record["reason"].is_string(), "{record}");
        assert!(!record.to_string().contains("a;b"), "no argument values: {record}");
    }

    // Without a policy nothing is granted.
    let bare = TestServer::start(&["probe.wasm"]).await;
    let client = connect_as(&bare.url("/mcp"), AGENT).await;
    let bare_probe = Probe { client: &client, plugin: "probe" };
    let refused = bare_probe.start("ticker", &[]).await.expect_err("no grants");
    assert!(refused.starts_with("not-granted: "), "{refused}");
}

#[tokio::test]
async fn with_jobs_off_starting_one_fails_saying_so() {
    let jobs = Jobs::start_with(&["probe.wasm"], &[], &["probe"], |args| args.jobs_dir = Some("off".into())).await;
    let refused = jobs.probe().start("ticker", &["off", "1", "0", "0"]).await.expect_err("jobs are off");
    assert!(refused.starts_with("failed: ") && refused.contains("off"), "{refused}");
    assert!(jobs.probe().list().await.is_empty());
    assert!(!jobs.pids().join("off.pid").exists(), "nothing ran");
}

#[tokio::test]
async fn only_the_newest_finished_jobs_are_kept() {
    let jobs = Jobs::start().await;
    let probe = jobs.probe();
    let mut ids = Vec::new();
    for n in 0..56 {
        let (_, id) = probe.started("many", &[&format!("n{n}"), "0", "0", "0"]).await;
        assert_eq!(probe.ended(&id).await["state"], "exited:0");
        ids.push(id);
    }
    let listed = probe.list().await;
    assert_eq!(listed.len(), 50, "the 50 newest finished jobs");
    let newest: Vec<&str> = ids.iter().rev().take(50).map(String::as_str).collect();
    let listed_ids: BTreeSet<&str> = listed.iter().map(id_of).collect();
    assert_eq!(listed_ids, newest.iter().copied().collect::<BTreeSet<_>>());
    assert!(probe.status(&ids[0]).await.expect_err("pruned").starts_with("not-found: "));
    let files = std::fs::read_dir(jobs.server.jobs_dir.join("probe")).expect("jobs dir").count();
    assert!(files <= 100, "{files} files for 50 jobs");
}
