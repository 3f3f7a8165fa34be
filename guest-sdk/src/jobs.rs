//! Start granted commands as jobs the host supervises, and follow them from later calls.
//!
//! A call lasts seconds and holds the host's worker; a deploy lasts minutes. [`start`] returns
//! at once with the job's id, and any later call of the plugin asks how it stands ([`status`]),
//! reads its output ([`read_output`], [`tail`]) or stops it ([`cancel`]). The grant is the
//! operator's `[plugins.<name>.commands.<command>]`, as for [`crate::process::run`], plus how
//! many may run at once (`max_jobs`), a time limit (`job_timeout_ms`) and an output cap
//! (`job_output_kib`). Nothing survives between calls in the plugin, so a plugin keeps the job
//! id wherever it keeps its own records.
//!
//! ```no_run
//! use sanctum_guest::jobs;
//!
//! let job = jobs::start("deploy", &["staging", "v1.2.3"])?;
//! // ... in a later call:
//! let now = jobs::status(&job.id)?;
//! if !now.is_running() {
//!     sanctum_guest::log::info(&format!("deploy {}: {}", now.id, now.state));
//! }
//! # Ok::<(), sanctum_guest::jobs::JobError>(())
//! ```
//!
//! Off wasm the calls go to [`stand_in`], a fake supervisor that unit tests script.

use std::fmt;

/// The most [`read_output`] returns at once, as the host enforces it.
pub const MAX_READ: u32 = 64 * 1024;

/// A job, as the host recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The host's id for the job.
    pub id: String,
    /// The granted command's name.
    pub command: String,
    /// The further arguments it was started with.
    pub args: Vec<String>,
    /// The agent whose call started it, if the client said.
    pub agent: Option<String>,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// How long it ran (so far, while running), in milliseconds.
    pub elapsed_ms: u64,
    pub state: State,
    /// Output bytes the command wrote in total, including any past the cap.
    pub output_bytes: u64,
    /// The command wrote more than the cap: the output holds the first part and, once the job
    /// ended, its last 8 KiB after a line saying how much was left out.
    pub output_truncated: bool,
}

impl Job {
    /// True while the command runs.
    pub fn is_running(&self) -> bool {
        self.state == State::Running
    }
}

/// How a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    /// The command exited with this status.
    Exited(i32),
    /// The command died of this signal, not sent by the host.
    Signaled(i32),
    /// The host stopped it and everything it started.
    Stopped(StopReason),
    /// The server restarted while the job ran: the job is gone and its outcome unknown.
    Lost,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Running => f.write_str("running"),
            Self::Exited(status) => write!(f, "exited with status {status}"),
            Self::Signaled(signal) => write!(f, "killed by signal {signal}"),
            Self::Stopped(reason) => write!(f, "stopped: {reason}"),
            Self::Lost => f.write_str("lost (the server restarted while it ran)"),
        }
    }
}

/// Why the host stopped a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// It ran past the grant's `job_timeout_ms`.
    Timeout,
    /// A plugin call cancelled it.
    Cancelled,
    /// The server shut down while it ran.
    Shutdown,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Cancelled => "cancelled",
            Self::Shutdown => "server shut down",
        })
    }
}

/// Part of a job's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes from the requested offset.
    pub data: Vec<u8>,
    /// The offset to read from next.
    pub next_offset: u64,
    /// The job has ended and `next_offset` is the end of its output.
    pub complete: bool,
}

/// Why a job operation was refused. The message is written to be shown to the model as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// The policy grants no command of that name to this plugin.
    NotGranted(String),
    /// An argument was refused by the grant.
    ArgumentRefused(String),
    /// As many jobs of the command as the grant allows are running; the text names them.
    LimitReached(String),
    /// This plugin has no job with that id (never had, or the host pruned its record).
    NotFound(String),
    /// The job could not be started or the operation failed.
    Failed(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotGranted(m)
            | Self::ArgumentRefused(m)
            | Self::LimitReached(m)
            | Self::NotFound(m)
            | Self::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for JobError {}

impl From<JobError> for crate::ToolError {
    fn from(error: JobError) -> Self {
        crate::ToolError::new(error.to_string())
    }
}

/// Start the granted `command` with `args`; returns once it runs, never waits for it to end.
pub fn start(command: &str, args: &[&str]) -> Result<Job, JobError> {
    imp::start(command, args)
}

/// How the job stands now.
pub fn status(id: &str) -> Result<Job, JobError> {
    imp::status(id)
}

/// Up to `max_bytes` (at most [`MAX_READ`]) of the job's output from `offset`. An offset at or
/// past the end gives no data and `next_offset` at the end.
pub fn read_output(id: &str, offset: u64, max_bytes: u32) -> Result<Chunk, JobError> {
    imp::read_output(id, offset, max_bytes)
}

/// The last `max_bytes` of the job's output as text (invalid UTF-8 replaced), starting at a
/// line boundary when one falls inside, so the first line shown is never cut.
pub fn tail(id: &str, max_bytes: u32) -> Result<String, JobError> {
    let end = read_output(id, u64::MAX, 0)?.next_offset;
    let start = end.saturating_sub(u64::from(max_bytes));
    // One byte before the window tells whether the window already starts a line.
    let mut offset = start.saturating_sub(1);
    let mut bytes = Vec::new();
    while offset < end {
        let want = u32::try_from(end - offset).unwrap_or(u32::MAX).min(MAX_READ);
        let chunk = read_output(id, offset, want)?;
        if chunk.data.is_empty() {
            break;
        }
        offset += chunk.data.len() as u64;
        bytes.extend_from_slice(&chunk.data);
    }
    bytes.truncate(usize::try_from(end - start.saturating_sub(1)).unwrap_or(usize::MAX));
    let text = if start == 0 { &bytes[..] } else { from_line_start(&bytes) };
    Ok(String::from_utf8_lossy(text).into_owned())
}

/// `bytes` is the window with the byte before it in front: drop through the first newline when
/// that leaves something, else just the extra byte.
fn from_line_start(bytes: &[u8]) -> &[u8] {
    let search = &bytes[..bytes.len().saturating_sub(1)];
    match search.iter().position(|&b| b == b'\n') {
        Some(newline) => &bytes[newline + 1..],
        None => bytes.get(1..).unwrap_or_default(),
    }
}

/// Stop a running job and everything it started; a job that already ended is returned as is.
pub fn cancel(id: &str) -> Result<Job, JobError> {
    imp::cancel(id)
}

/// This plugin's jobs, newest first: the running ones and the recent finished ones.
pub fn list() -> Vec<Job> {
    imp::list()
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::{Chunk, Job, JobError, State, StopReason};
    use crate::__bindings::sanctum::plugin::jobs as wit;

    pub(super) fn start(command: &str, args: &[&str]) -> Result<Job, JobError> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        wit::start(command, &args).map(job).map_err(error)
    }

    pub(super) fn status(id: &str) -> Result<Job, JobError> {
        wit::status(id).map(job).map_err(error)
    }

    pub(super) fn read_output(id: &str, offset: u64, max_bytes: u32) -> Result<Chunk, JobError> {
        match wit::read_output(id, offset, max_bytes) {
            Ok(c) => Ok(Chunk { data: c.data, next_offset: c.next_offset, complete: c.complete }),
            Err(e) => Err(error(e)),
        }
    }

    pub(super) fn cancel(id: &str) -> Result<Job, JobError> {
        wit::cancel(id).map(job).map_err(error)
    }

    pub(super) fn list() -> Vec<Job> {
        wit::list_jobs().into_iter().map(job).collect()
    }

    fn job(s: wit::JobStatus) -> Job {
        let state = match s.state {
            wit::JobState::Running => State::Running,
            wit::JobState::Exited(status) => State::Exited(status),
            wit::JobState::Signaled(signal) => State::Signaled(signal),
            wit::JobState::Stopped(wit::StopReason::Timeout) => State::Stopped(StopReason::Timeout),
            wit::JobState::Stopped(wit::StopReason::Cancelled) => State::Stopped(StopReason::Cancelled),
            wit::JobState::Stopped(wit::StopReason::Shutdown) => State::Stopped(StopReason::Shutdown),
            wit::JobState::Lost => State::Lost,
        };
        Job {
            id: s.id,
            command: s.command,
            args: s.args,
            agent: s.agent,
            started_at_ms: s.started_at_ms,
            elapsed_ms: s.elapsed_ms,
            state,
            output_bytes: s.output_bytes,
            output_truncated: s.output_truncated,
        }
    }

    fn error(e: wit::JobError) -> JobError {
        match e {
            wit::JobError::NotGranted(m) => JobError::NotGranted(m),
            wit::JobError::ArgumentRefused(m) => JobError::ArgumentRefused(m),
            wit::JobError::LimitReached(m) => JobError::LimitReached(m),
            wit::JobError::NotFound(m) => JobError::NotFound(m),
            wit::JobError::Failed(m) => JobError::Failed(m),
        }
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    pub(super) use super::stand_in::{cancel, list, read_output, start, status};
}

#[cfg(not(target_family = "wasm"))]
pub mod stand_in;

#[cfg(all(test, not(target_family = "wasm")))]
mod tests;
