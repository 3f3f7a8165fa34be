//! The fake job supervisor behind [`crate::jobs`] off wasm, scripted by unit tests.
//!
//! There is no host in a native `cargo test`, so this stands in for it with the host's rules:
//! only granted commands start, at most `max_jobs` of a command run at once (1 unless
//! [`set_max_jobs`] says otherwise), ids run `job-1`, `job-2`, …, cancelling stops a job as
//! `stopped: cancelled`, and reads follow the WIT's offset rules and 64 KiB limit. No process
//! runs: a test plays the command with [`write`] and [`finish`], and moves time with
//! [`advance`]. The state is per thread, and each test runs on a thread of its own, so tests
//! do not see each other's jobs; [`reset`] starts over within one.

use super::{Chunk, Job, JobError, MAX_READ, State, StopReason};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Where the stand-in's clock starts, in milliseconds since the Unix epoch (a fixed instant,
/// so times in tests are reproducible).
pub const START_MS: u64 = 1_700_000_000_000;

struct Supervisor {
    now_ms: u64,
    next_id: u64,
    /// Granted command → how many may run at once.
    grants: BTreeMap<String, u32>,
    /// Oldest first.
    jobs: Vec<FakeJob>,
    fail_next_start: Option<JobError>,
}

struct FakeJob {
    job: Job,
    output: Vec<u8>,
}

impl Supervisor {
    fn new() -> Self {
        Self { now_ms: START_MS, next_id: 1, grants: BTreeMap::new(), jobs: Vec::new(), fail_next_start: None }
    }

    fn find(&mut self, id: &str) -> Result<&mut FakeJob, JobError> {
        self.jobs
            .iter_mut()
            .find(|j| j.job.id == id)
            .ok_or_else(|| JobError::NotFound(format!("no job {id:?}: this plugin never started it, or it was pruned")))
    }

    fn expect(&mut self, id: &str) -> &mut FakeJob {
        match self.find(id) {
            Ok(job) => job,
            Err(e) => panic!("jobs::stand_in: {e}"),
        }
    }

    /// Job `id` as the host would report it now.
    fn report(&mut self, id: &str) -> Result<Job, JobError> {
        let now = self.now_ms;
        self.find(id).map(|fake| fake.snapshot(now))
    }
}

impl FakeJob {
    /// The job as the host reports it at `now_ms`: a running job's elapsed time keeps growing.
    fn snapshot(&self, now_ms: u64) -> Job {
        let mut job = self.job.clone();
        if job.is_running() {
            job.elapsed_ms = now_ms - job.started_at_ms;
        }
        job.output_bytes = self.output.len() as u64;
        job
    }
}

thread_local! {
    static SUPERVISOR: RefCell<Supervisor> = RefCell::new(Supervisor::new());
}

fn with<T>(f: impl FnOnce(&mut Supervisor) -> T) -> T {
    SUPERVISOR.with(|s| f(&mut s.borrow_mut()))
}

/// Forget every grant and job and set the clock back to [`START_MS`].
pub fn reset() {
    with(|s| *s = Supervisor::new());
}

/// Grant `command` (one job at a time unless [`set_max_jobs`] raises it).
pub fn grant(command: &str) {
    with(|s| {
        s.grants.entry(command.to_owned()).or_insert(1);
    });
}

/// Grant `command` and let `max_jobs` of it run at once.
pub fn set_max_jobs(command: &str, max_jobs: u32) {
    with(|s| {
        s.grants.insert(command.to_owned(), max_jobs);
    });
}

/// Make the next [`crate::jobs::start`] fail with `error` (e.g. `Failed` for a missing program).
pub fn fail_next_start(error: JobError) {
    with(|s| s.fail_next_start = Some(error));
}

/// Append `bytes` to job `id`'s output, as if the command printed them.
///
/// # Panics
/// When there is no job `id`: a mistake in the test.
pub fn write(id: &str, bytes: impl AsRef<[u8]>) {
    with(|s| s.expect(id).output.extend_from_slice(bytes.as_ref()));
}

/// End job `id` in `state`; its elapsed time stops at the clock's current value.
///
/// # Panics
/// When there is no job `id`, or `state` is `Running`: mistakes in the test.
pub fn finish(id: &str, state: State) {
    assert!(state != State::Running, "jobs::stand_in::finish({id:?}): a job cannot finish as running");
    with(|s| {
        let now = s.now_ms;
        let job = &mut s.expect(id).job;
        if job.is_running() {
            job.elapsed_ms = now - job.started_at_ms;
        }
        job.state = state;
    });
}

/// Drop job `id`'s record, as the host does when it prunes old jobs: it is `NotFound` afterwards.
pub fn forget(id: &str) {
    with(|s| s.jobs.retain(|j| j.job.id != id));
}

/// Move the clock forward by `ms` milliseconds.
pub fn advance(ms: u64) {
    with(|s| s.now_ms += ms);
}

/// The clock's current value, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    with(|s| s.now_ms)
}

pub(crate) fn start(command: &str, args: &[&str]) -> Result<Job, JobError> {
    let agent = crate::agent_id();
    with(|s| {
        if let Some(error) = s.fail_next_start.take() {
            return Err(error);
        }
        let Some(&max_jobs) = s.grants.get(command) else {
            return Err(JobError::NotGranted(format!(
                "command {command:?} is not granted to this plugin (stand-in: call jobs::stand_in::grant({command:?}))"
            )));
        };
        if let Some(arg) = args.iter().find(|a| a.contains('\0')) {
            return Err(JobError::ArgumentRefused(format!("argument {arg:?} holds a NUL byte")));
        }
        let running: Vec<&str> = s
            .jobs
            .iter()
            .filter(|j| j.job.command == command && j.job.is_running())
            .map(|j| j.job.id.as_str())
            .collect();
        if running.len() >= max_jobs as usize {
            return Err(JobError::LimitReached(format!(
                "{} of {max_jobs} allowed {command:?} jobs running ({}); wait for one to end or cancel it",
                running.len(),
                running.join(", ")
            )));
        }
        let id = format!("job-{}", s.next_id);
        s.next_id += 1;
        let job = Job {
            id,
            command: command.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            agent,
            started_at_ms: s.now_ms,
            elapsed_ms: 0,
            state: State::Running,
            output_bytes: 0,
            output_truncated: false,
        };
        s.jobs.push(FakeJob { job: job.clone(), output: Vec::new() });
        Ok(job)
    })
}

pub(crate) fn status(id: &str) -> Result<Job, JobError> {
    with(|s| s.report(id))
}

pub(crate) fn read_output(id: &str, offset: u64, max_bytes: u32) -> Result<Chunk, JobError> {
    with(|s| {
        let fake = s.find(id)?;
        let end = fake.output.len();
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(end);
        let to = from.saturating_add(max_bytes.min(MAX_READ) as usize).min(end);
        Ok(Chunk {
            data: fake.output[from..to].to_vec(),
            next_offset: to as u64,
            complete: !fake.job.is_running() && to == end,
        })
    })
}

pub(crate) fn cancel(id: &str) -> Result<Job, JobError> {
    with(|s| {
        let now = s.now_ms;
        let job = &mut s.find(id)?.job;
        if job.is_running() {
            job.elapsed_ms = now - job.started_at_ms;
            job.state = State::Stopped(StopReason::Cancelled);
        }
        s.report(id)
    })
}

pub(crate) fn list() -> Vec<Job> {
    with(|s| s.jobs.iter().rev().map(|j| j.snapshot(s.now_ms)).collect())
}
