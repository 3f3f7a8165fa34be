//! Host-supervised jobs: granted commands that run longer than a call may, outside the single
//! worker. A plugin's call starts one and returns; the job's process tree, its output file and
//! its record belong to the host from then on.
//!
//! - **Where it runs**: the supervisor's tasks run on the server's multi-threaded runtime, never
//!   on the worker's, so a running job costs the worker nothing. The process is started by
//!   [`Contained`](super::capabilities::spawn::Contained), the same code as a one-shot run, so it
//!   has exactly a run's confinement; only its output goes to a file instead of the caller.
//! - **Who sees it**: the plugin named by the file that started it, in any version: a hot reload
//!   keeps the job running and visible. Ids are random, and a lookup also checks the plugin.
//! - **How it ends**: exits; or the host stops it (timeout, a plugin's cancel, server shutdown)
//!   and everything it started with it. Its record is rewritten at every change; a record found
//!   `running` at start-up belonged to a server that is gone, and is marked `lost`.
//! - **Bounds**: `max_jobs` per grant and [`MAX_RUNNING`] in all; the output file is capped
//!   (`job_output_kib`, see [`output`]); the [`KEPT_FINISHED`] newest finished jobs of each
//!   plugin are kept, older records and outputs are deleted.
//!
//! It does not check grants or arguments: the `jobs` capability does, before it asks.

mod output;
mod record;

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use self::record::{JobRecord, JobState, StopReason};
use super::capabilities::spawn::{Contained, Reaped};
use crate::audit::{Audit, AuditRecord};
use crate::metrics::Metrics;
use crate::model::CommandGrant;

/// Jobs that may run at once on this server, whatever the grants say.
pub const MAX_RUNNING: usize = 64;
/// Finished jobs kept per plugin (records and outputs); older ones are deleted.
pub const KEPT_FINISHED: usize = 50;
/// How long shutdown waits for stopped jobs to be recorded.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// How long a cancel waits for the job to be gone before it answers.
const CANCEL_WAIT: Duration = Duration::from_secs(3);
/// How long the output copy may take to finish once every process is gone.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// Why a job operation was refused (the `jobs` capability maps these onto the WIT variant).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JobError {
    #[error("{0}")]
    LimitReached(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

/// What a start needs: who asks, and the grant it runs under (already checked).
#[derive(Debug)]
pub(crate) struct StartRequest {
    pub(crate) plugin: String,
    pub(crate) plugin_sha256: String,
    pub(crate) tool: String,
    pub(crate) agent: Option<String>,
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) grant: CommandGrant,
}

/// The call that asked for a job to stop: named in the `cancelled` audit record, which is
/// about who stopped the job, not who started it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    pub(crate) plugin_sha256: String,
    pub(crate) tool: String,
    pub(crate) agent: Option<String>,
}

/// A job as a plugin sees it: the record with live numbers while it runs.
pub(crate) type JobView = JobRecord;

/// A cloneable handle to the server's jobs.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

struct Inner {
    dir: PathBuf,
    runtime: tokio::runtime::Handle,
    audit: Audit,
    metrics: Metrics,
    jobs: Mutex<HashMap<String, Entry>>,
    tasks: TaskTracker,
    closed: AtomicBool,
    /// Held for the server's life: two servers over one directory would each take the other's
    /// running jobs for lost ones.
    _lock: std::fs::File,
}

struct Entry {
    record: JobRecord,
    live: Option<Arc<Live>>,
}

/// What only a running job has.
struct Live {
    stop: CancellationToken,
    reason: Mutex<Option<(StopReason, Option<Caller>)>>,
    /// Cancelled once the job's final record is written.
    ended: CancellationToken,
    output: Arc<output::Counter>,
    output_cap: u64,
}

impl Supervisor {
    /// The jobs kept in `dir` (created private if missing), with every job a previous server
    /// left `running` marked `lost`. Tasks run on the current tokio runtime.
    pub fn open(dir: &Path, audit: Audit, metrics: Metrics) -> std::io::Result<Self> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let lock =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(dir.join(".lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
            std::io::Error::other("another sanctum server uses this jobs directory (give each server its own)")
        })?;
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            runtime: tokio::runtime::Handle::current(),
            audit,
            metrics,
            jobs: Mutex::default(),
            tasks: TaskTracker::new(),
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        let supervisor = Self { inner };
        supervisor.recover()?;
        Ok(supervisor)
    }

    /// Where the jobs are kept.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.table().values().filter(|e| e.live.is_some()).count()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn plugin_dir(&self, plugin: &str) -> PathBuf {
        // Plugin names are file-name identifiers (`ids.rs`), so this stays inside `dir`.
        self.inner.dir.join(plugin)
    }

    /// Load every plugin's records; a job recorded `running` is `lost` now.
    fn recover(&self) -> std::io::Result<()> {
        let mut plugins = Vec::new();
        for entry in std::fs::read_dir(&self.inner.dir)?.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                plugins.push(entry.path());
            }
        }
        for plugin_dir in plugins {
            for mut record in record::load_all(&plugin_dir) {
                if record.is_running() {
                    let log = std::fs::metadata(record::output_path(&plugin_dir, &record.id)).ok();
                    // The last sign of life is the last output; without any, the start.
                    let last = log
                        .as_ref()
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(record.started_at_ms, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    record.state = JobState::Lost;
                    record.ended_at_ms = Some(last.max(record.started_at_ms));
                    record.output_bytes = record.output_bytes.max(log.map_or(0, |m| m.len()));
                    if let Err(e) = record::save(&plugin_dir, &record) {
                        tracing::error!(job = %record.id, error = %e, "cannot mark a lost job in its record");
                    }
                    self.audit_step(&caller_of(&record), &record, None, None);
                    tracing::warn!(plugin = %record.plugin, job = %record.id, command = %record.command,
                        "a job was running when the previous server stopped; it is recorded as lost");
                }
                let plugin = record.plugin.clone();
                self.table().insert(record.id.clone(), Entry { record, live: None });
                self.prune(&plugin);
            }
        }
        Ok(())
    }

    /// Start a job; returns once its process runs (or could not be started).
    pub(crate) async fn start(&self, request: StartRequest) -> Result<JobView, JobError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(JobError::Failed("the server is shutting down; no job can start".into()));
        }
        let StartRequest { plugin, plugin_sha256, tool, agent, command, args, grant } = request;
        let live = Arc::new(Live {
            stop: CancellationToken::new(),
            reason: Mutex::new(None),
            ended: CancellationToken::new(),
            output: Arc::default(),
            output_cap: grant.jobs.output_bytes,
        });
        let record = {
            let mut table = self.table();
            let running: Vec<&str> = table
                .values()
                .filter(|e| e.live.is_some() && e.record.plugin == plugin && e.record.command == command)
                .map(|e| e.record.id.as_str())
                .collect();
            if running.len() >= grant.jobs.max_running as usize {
                return Err(JobError::LimitReached(format!(
                    "command {command:?} may run {} job(s) at a time (the grant's max_jobs) and {} running: {}; \
                     wait for it to end or cancel it",
                    grant.jobs.max_running,
                    if running.len() == 1 { "one is" } else { "that many are" },
                    running.join(", ")
                )));
            }
            if table.values().filter(|e| e.live.is_some()).count() >= MAX_RUNNING {
                return Err(JobError::LimitReached(format!(
                    "the server runs at most {MAX_RUNNING} jobs at once and that many are running; try again later"
                )));
            }
            let id = loop {
                let id = new_id();
                if !table.contains_key(&id) {
                    break id;
                }
            };
            let record = JobRecord {
                id: id.clone(),
                plugin: plugin.clone(),
                plugin_sha256,
                tool,
                command,
                args,
                agent,
                started_at_ms: record::now_ms(),
                ended_at_ms: None,
                state: JobState::Running,
                output_bytes: 0,
                output_truncated: false,
            };
            // Reserved before anything is started, so no second start can pass the limit.
            table.insert(id, Entry { record: record.clone(), live: Some(Arc::clone(&live)) });
            record
        };
        match self.launch(&record, grant, &live).await {
            Ok(()) => {
                self.audit_step(&caller_of(&record), &record, None, None);
                self.inner.metrics.set_jobs_running(self.running());
                Ok(record)
            }
            Err(reason) => {
                self.table().remove(&record.id);
                let dir = self.plugin_dir(&plugin);
                let _ = std::fs::remove_file(record::record_path(&dir, &record.id));
                let _ = std::fs::remove_file(record::output_path(&dir, &record.id));
                self.inner.audit.record(&AuditRecord::Job {
                    plugin: &record.plugin,
                    plugin_sha256: &record.plugin_sha256,
                    tool: &record.tool,
                    agent_id: record.agent.as_deref(),
                    job: None,
                    command: &record.command,
                    step: "failed",
                    exit_status: None,
                    signal: None,
                    reason: Some(&reason),
                    duration_ms: None,
                    descendants_killed: None,
                });
                Err(JobError::Failed(reason))
            }
        }
    }

    /// Files, the process, and the task that supervises it until it ends.
    async fn launch(&self, record: &JobRecord, grant: CommandGrant, live: &Arc<Live>) -> Result<(), String> {
        let dir = self.plugin_dir(&record.plugin);
        let io = |what: &str, e: std::io::Error| format!("cannot {what} in the jobs directory: {e}");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| io("create", e))?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(record::output_path(&dir, &record.id))
            .map_err(|e| io("create the output file", e))?;
        record::save(&dir, record).map_err(|e| io("write the record", e))?;
        // One pipe for stdout and stderr, so the file has the lines in the order they came.
        let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot make the output pipe: {e}"))?;
        let writer_too = writer.try_clone().map_err(|e| format!("cannot make the output pipe: {e}"))?;
        let counter = Arc::clone(&live.output);
        let cap = live.output_cap;
        let copy = std::thread::Builder::new()
            .name("sanctum-job-output".into())
            .spawn(move || output::copy(reader, file, cap, &counter))
            .map_err(|e| format!("cannot start the output copy: {e}"))?;
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let supervisor = self.clone();
        let (id, args) = (record.id.clone(), record.args.clone());
        let live = Arc::clone(live);
        // Forked from a thread of the server's runtime, which lives as long as the server: the
        // namespace's supervisor dies with the thread that forked it (parent-death signal).
        self.inner.tasks.spawn_on(
            async move {
                let contained =
                    Contained::spawn(&grant, &args, Stdio::null(), Stdio::from(writer), Stdio::from(writer_too));
                match contained {
                    Ok(contained) => {
                        let _ = started_tx.send(Ok(()));
                        supervisor.supervise(&id, contained, &grant, &live, copy).await;
                    }
                    Err(reason) => {
                        let _ = started_tx.send(Err(reason));
                    }
                }
            },
            &self.inner.runtime,
        );
        started_rx.await.unwrap_or_else(|_| Err("the job's supervisor stopped before the job started".into()))
    }

    /// Wait for the job to end or be stopped, then record how it ended.
    async fn supervise(
        &self,
        id: &str,
        contained: Contained,
        grant: &CommandGrant,
        live: &Live,
        copy: std::thread::JoinHandle<u64>,
    ) {
        let started = Instant::now();
        let stopped = tokio::select! {
            exited = tokio::time::timeout(grant.jobs.timeout, contained.exited()) => {
                exited.is_err().then_some(StopReason::Timeout)
            }
            () = live.stop.cancelled() => Some(live.stop_reason().0),
        };
        let reaped = contained.finish(stopped.is_some()).await;
        // Every writer is gone, so the copy is at its end; the wait only bounds the last bytes.
        let joined = tokio::task::spawn_blocking(move || copy.join().ok());
        let total = match tokio::time::timeout(OUTPUT_DRAIN, joined).await {
            Ok(Ok(Some(total))) => total,
            _ => live.output.total(),
        };
        let (state, descendants) = match (stopped, reaped) {
            (Some(reason), Ok(reaped)) => (JobState::Stopped { reason }, reaped.descendants_killed),
            (Some(reason), Err(_)) => (JobState::Stopped { reason }, None),
            (None, Ok(Reaped { code: Some(code), descendants_killed, .. })) => {
                (JobState::Exited { code }, descendants_killed)
            }
            (None, Ok(Reaped { signal: Some(signal), descendants_killed, .. })) => {
                (JobState::Signaled { signal }, descendants_killed)
            }
            (None, Ok(Reaped { descendants_killed, .. })) => (JobState::Lost, descendants_killed),
            (None, Err(reason)) => {
                tracing::error!(job = id, %reason, "a job ended in a way sanctum could not observe");
                (JobState::Lost, None)
            }
        };
        let record = {
            let mut table = self.table();
            let Some(entry) = table.get_mut(id) else { return };
            entry.record.state = state;
            entry.record.ended_at_ms = Some(record::now_ms());
            entry.record.output_bytes = total;
            entry.record.output_truncated = total > live.output_cap;
            entry.live = None;
            entry.record.clone()
        };
        if let Err(e) = record::save(&self.plugin_dir(&record.plugin), &record) {
            tracing::error!(job = id, error = %e, "cannot write a finished job's record");
        }
        let stopped_by = live.stop_reason().1;
        self.audit_step(
            stopped_by.as_ref().map_or(&caller_of(&record), |c| c),
            &record,
            descendants,
            Some(started.elapsed()),
        );
        self.inner.metrics.job_finished(state.outcome(), started.elapsed());
        self.inner.metrics.set_jobs_running(self.running());
        live.ended.cancel();
        self.prune(&record.plugin);
    }

    /// The job `id` of `plugin`, as it stands.
    pub(crate) fn status(&self, plugin: &str, id: &str) -> Result<JobView, JobError> {
        let table = self.table();
        let entry = table.get(id).filter(|e| e.record.plugin == plugin).ok_or_else(|| not_found(id))?;
        Ok(view(entry))
    }

    /// `plugin`'s jobs, newest first.
    pub(crate) fn list(&self, plugin: &str) -> Vec<JobView> {
        let table = self.table();
        let mut jobs: Vec<JobView> = table.values().filter(|e| e.record.plugin == plugin).map(view).collect();
        jobs.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms).then_with(|| b.id.cmp(&a.id)));
        jobs
    }

    /// Up to `max` bytes of the output from `offset`, the next offset, and whether that is the
    /// end of a job that has ended.
    pub(crate) fn read_output(
        &self,
        plugin: &str,
        id: &str,
        offset: u64,
        max: u32,
    ) -> Result<(Vec<u8>, u64, bool), JobError> {
        let running = self.status(plugin, id)?.is_running();
        let path = record::output_path(&self.plugin_dir(plugin), id);
        let (data, next) = output::read_at(&path, offset, max)
            .map_err(|e| JobError::Failed(format!("cannot read the output of job {id}: {e}")))?;
        let end = std::fs::metadata(&path).map_or(next, |m| m.len());
        Ok((data, next, !running && next >= end))
    }

    /// Stop job `id` of `plugin` and everything it started; how it stands afterwards.
    pub(crate) async fn cancel(&self, plugin: &str, id: &str, by: Caller) -> Result<JobView, JobError> {
        let live = {
            let table = self.table();
            let entry = table.get(id).filter(|e| e.record.plugin == plugin).ok_or_else(|| not_found(id))?;
            entry.live.clone()
        };
        if let Some(live) = live {
            live.request_stop(StopReason::Cancelled, Some(by));
            let _ = tokio::time::timeout(CANCEL_WAIT, live.ended.cancelled()).await;
        }
        self.status(plugin, id)
    }

    /// Stop every running job (as `shutdown`) and wait, up to a bound, for their records.
    /// Starts are refused from now on.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let live: Vec<Arc<Live>> = self.table().values().filter_map(|e| e.live.clone()).collect();
        if !live.is_empty() {
            tracing::info!(jobs = live.len(), "stopping the running jobs");
        }
        for job in &live {
            job.request_stop(StopReason::Shutdown, None);
        }
        self.inner.tasks.close();
        if tokio::time::timeout(SHUTDOWN_WAIT, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("some jobs were not recorded as stopped in time; they die with the server");
        }
    }

    /// Delete the oldest finished jobs of `plugin` beyond [`KEPT_FINISHED`].
    fn prune(&self, plugin: &str) {
        let doomed: Vec<String> = {
            let mut table = self.table();
            let mut finished: Vec<(u64, String)> = table
                .values()
                .filter(|e| e.live.is_none() && e.record.plugin == plugin)
                .map(|e| (e.record.started_at_ms, e.record.id.clone()))
                .collect();
            if finished.len() <= KEPT_FINISHED {
                return;
            }
            finished.sort_unstable_by(|a, b| b.cmp(a));
            let doomed: Vec<String> = finished.split_off(KEPT_FINISHED).into_iter().map(|(_, id)| id).collect();
            for id in &doomed {
                table.remove(id);
            }
            doomed
        };
        let dir = self.plugin_dir(plugin);
        for id in doomed {
            let _ = std::fs::remove_file(record::record_path(&dir, &id));
            let _ = std::fs::remove_file(record::output_path(&dir, &id));
        }
    }

    fn audit_step(&self, by: &Caller, record: &JobRecord, descendants_killed: Option<u32>, took: Option<Duration>) {
        let (exit_status, signal) = match record.state {
            JobState::Exited { code } => (Some(code), None),
            JobState::Signaled { signal } => (None, Some(signal)),
            _ => (None, None),
        };
        self.inner.audit.record(&AuditRecord::Job {
            plugin: &record.plugin,
            plugin_sha256: &by.plugin_sha256,
            tool: &by.tool,
            agent_id: by.agent.as_deref(),
            job: Some(&record.id),
            command: &record.command,
            step: record.state.step(),
            exit_status,
            signal,
            reason: None,
            duration_ms: took.map(|d| d.as_secs_f64() * 1e3),
            descendants_killed,
        });
    }
}

impl Live {
    fn request_stop(&self, reason: StopReason, by: Option<Caller>) {
        let mut slot = self.reason.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The first reason stands: a job cancelled during shutdown was cancelled.
        slot.get_or_insert((reason, by));
        self.stop.cancel();
    }

    fn stop_reason(&self) -> (StopReason, Option<Caller>) {
        self.reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or((StopReason::Cancelled, None))
    }
}

/// The call that started a job: whom its records name unless another call stopped it.
fn caller_of(record: &JobRecord) -> Caller {
    Caller { plugin_sha256: record.plugin_sha256.clone(), tool: record.tool.clone(), agent: record.agent.clone() }
}

/// The record, with the live output count of a running job.
fn view(entry: &Entry) -> JobView {
    let mut record = entry.record.clone();
    if let Some(live) = &entry.live {
        record.output_bytes = live.output.total();
        record.output_truncated = record.output_bytes > live.output_cap;
    }
    record
}

fn not_found(id: &str) -> JobError {
    JobError::NotFound(format!(
        "this plugin has no job {id:?} (never had, or it is older than the {KEPT_FINISHED} it keeps)"
    ))
}

/// `job-` and 16 random hex digits: unguessable, and unique across restarts.
fn new_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the clock still differs between jobs.
        bytes = u64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
                % u128::from(u64::MAX),
        )
        .unwrap_or_default()
        .to_le_bytes();
    }
    format!("job-{}", crate::digest::hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn grant(script: &str, limits: crate::model::JobLimits) -> CommandGrant {
        CommandGrant {
            leading_args: vec!["-c".into(), script.into(), "job".into()],
            env: BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]),
            jobs: limits,
            ..CommandGrant::for_tests("/bin/sh")
        }
    }

    fn request(command: &str, grant: CommandGrant) -> StartRequest {
        StartRequest {
            plugin: "p".into(),
            plugin_sha256: "00".into(),
            tool: "t".into(),
            agent: None,
            command: command.into(),
            args: vec![],
            grant,
        }
    }

    async fn ended(jobs: &Supervisor, id: &str) -> JobRecord {
        for _ in 0..200 {
            let job = jobs.status("p", id).expect("known");
            if !job.is_running() {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} did not end");
    }

    fn open(dir: &Path) -> Supervisor {
        let metrics = Metrics::new();
        Supervisor::open(dir, Audit::disabled(metrics.clone()), metrics).expect("opens")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_runs_outside_the_call_and_records_how_it_ended() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jobs = open(dir.path());
        let job = jobs.start(request("ok", grant("echo out; echo err >&2; exit 3", Default::default()))).await;
        let job = job.expect("started");
        assert!(job.is_running() && job.id.starts_with("job-"));
        let done = ended(&jobs, &job.id).await;
        assert_eq!(done.state, JobState::Exited { code: 3 });
        let (data, next, complete) = jobs.read_output("p", &job.id, 0, 100).expect("output");
        assert_eq!((String::from_utf8_lossy(&data).as_ref(), next, complete), ("out\nerr\n", 8, true));
        assert!(matches!(jobs.status("q", &job.id), Err(JobError::NotFound(_))), "another plugin's job");
        assert_eq!(jobs.list("p").len(), 1);
        assert!(jobs.list("q").is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn max_jobs_cancel_and_timeout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jobs = open(dir.path());
        let slow = grant("sleep 30", Default::default());
        let first = jobs.start(request("slow", slow.clone())).await.expect("started");
        let refused = jobs.start(request("slow", slow.clone())).await.expect_err("max_jobs = 1");
        assert!(matches!(&refused, JobError::LimitReached(m) if m.contains(&first.id)), "{refused:?}");
        let cancelled = jobs.cancel("p", &first.id, Caller::default()).await.expect("cancelled");
        assert_eq!(cancelled.state, JobState::Stopped { reason: StopReason::Cancelled });
        let short = crate::model::JobLimits { timeout: Duration::from_millis(300), ..Default::default() };
        let second = jobs.start(request("slow", grant("sleep 30", short))).await.expect("the slot is free again");
        assert_eq!(ended(&jobs, &second.id).await.state, JobState::Stopped { reason: StopReason::Timeout });
        assert_eq!(jobs.running(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_stops_jobs_and_a_restart_reports_running_ones_lost() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jobs = open(dir.path());
        assert!(Supervisor::open(dir.path(), Audit::disabled(Metrics::new()), Metrics::new()).is_err(), "locked");
        let job = jobs.start(request("slow", grant("sleep 30", Default::default()))).await.expect("started");
        jobs.shutdown().await;
        assert_eq!(jobs.status("p", &job.id).expect("known").state, JobState::Stopped { reason: StopReason::Shutdown });
        assert!(jobs.start(request("slow", grant("true", Default::default()))).await.is_err(), "closed");
        // A record left `running` (as a killed server leaves it) is lost after a restart.
        let mut record = jobs.status("p", &job.id).expect("known");
        record.state = JobState::Running;
        record.ended_at_ms = None;
        record::save(&dir.path().join("p"), &record).expect("saved");
        drop(jobs);
        let restarted = open(dir.path());
        assert_eq!(restarted.status("p", &job.id).expect("recovered").state, JobState::Lost);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_newest_finished_jobs_are_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jobs = open(dir.path());
        let many = crate::model::JobLimits { max_running: 64, ..Default::default() };
        for _ in 0..KEPT_FINISHED + 5 {
            let job = jobs.start(request("quick", grant("true", many))).await.expect("started");
            ended(&jobs, &job.id).await;
        }
        assert_eq!(jobs.list("p").len(), KEPT_FINISHED);
        let files = std::fs::read_dir(dir.path().join("p")).expect("dir").count();
        assert_eq!(files, 2 * KEPT_FINISHED, "a record and an output per kept job");
    }
}
