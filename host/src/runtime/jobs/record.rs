//! A job's record: what the host knows about one job, kept as `<id>.json` beside its output in
//! the plugin's jobs directory, rewritten whole (temporary file, then rename) at every change,
//! so a crash leaves the old or the new record, never half of one.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Why the host stopped a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StopReason {
    Timeout,
    Cancelled,
    Shutdown,
}

/// How a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum JobState {
    Running,
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    Stopped {
        reason: StopReason,
    },
    /// Found `running` when the server started: the server that ran it is gone, and so is the
    /// job (its processes die with their supervisor), with an unknown outcome.
    Lost,
}

impl JobState {
    /// The audit step and metrics outcome of a job that ended this way.
    pub(crate) fn step(self) -> &'static str {
        match self {
            Self::Running => "started",
            Self::Exited { .. } | Self::Signaled { .. } => "finished",
            Self::Stopped { reason: StopReason::Timeout } => "timed_out",
            Self::Stopped { reason: StopReason::Cancelled } => "cancelled",
            Self::Stopped { reason: StopReason::Shutdown } => "shutdown",
            Self::Lost => "lost",
        }
    }

    pub(crate) fn outcome(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Exited { .. } => "exited",
            Self::Signaled { .. } => "signaled",
            Self::Stopped { reason: StopReason::Timeout } => "timeout",
            Self::Stopped { reason: StopReason::Cancelled } => "cancelled",
            Self::Stopped { reason: StopReason::Shutdown } => "shutdown",
            Self::Lost => "lost",
        }
    }
}

/// One job as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    pub(crate) id: String,
    /// The plugin (by file name) whose call started it: the only one that sees it.
    pub(crate) plugin: String,
    /// SHA-256 of the plugin version that started it.
    pub(crate) plugin_sha256: String,
    /// The tool whose call started it.
    pub(crate) tool: String,
    /// The granted command's name, and the plugin's further arguments.
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) agent: Option<String>,
    pub(crate) started_at_ms: u64,
    /// Absent while running.
    pub(crate) ended_at_ms: Option<u64>,
    #[serde(flatten)]
    pub(crate) state: JobState,
    /// Bytes the command wrote in total, and whether that was more than the file keeps.
    pub(crate) output_bytes: u64,
    pub(crate) output_truncated: bool,
}

impl JobRecord {
    pub(crate) fn is_running(&self) -> bool {
        self.state == JobState::Running
    }

    /// Milliseconds it ran: until it ended, or until now.
    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.ended_at_ms.unwrap_or_else(now_ms).saturating_sub(self.started_at_ms)
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Where job `id` of a plugin keeps its record and its output.
pub(crate) fn record_path(plugin_dir: &Path, id: &str) -> PathBuf {
    plugin_dir.join(format!("{id}.json"))
}

pub(crate) fn output_path(plugin_dir: &Path, id: &str) -> PathBuf {
    plugin_dir.join(format!("{id}.log"))
}

/// Write `record` whole, replacing the previous version atomically.
pub(crate) fn save(plugin_dir: &Path, record: &JobRecord) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    let path = record_path(plugin_dir, &record.id);
    let temp = path.with_extension("json.tmp");
    // Private like the output: a record names the command and its arguments.
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
    std::io::Write::write_all(&mut file, &json)?;
    std::fs::rename(&temp, &path)
}

/// Every record in `plugin_dir` that parses; the rest are reported and left where they are.
pub(crate) fn load_all(plugin_dir: &Path) -> Vec<JobRecord> {
    let Ok(entries) = std::fs::read_dir(plugin_dir) else { return Vec::new() };
    let mut records = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        // Records are small; anything large is not one of ours.
        let parsed = std::fs::metadata(&path)
            .ok()
            .filter(|m| m.len() < 1 << 20)
            .and_then(|_| std::fs::read(&path).ok())
            .and_then(|bytes| serde_json::from_slice::<JobRecord>(&bytes).ok());
        match parsed {
            Some(record) if path.file_stem().is_some_and(|s| *s == *record.id) => records.push(record),
            _ => tracing::warn!(path = %path.display(), "not a job record sanctum can read; left as it is"),
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_with_its_state_inline() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = JobRecord {
            id: "job-00000000000000aa".into(),
            plugin: "devops".into(),
            plugin_sha256: "ab".into(),
            tool: "deploy".into(),
            command: "deploy".into(),
            args: vec!["staging".into()],
            agent: Some("ops".into()),
            started_at_ms: 1,
            ended_at_ms: Some(5),
            state: JobState::Stopped { reason: StopReason::Timeout },
            output_bytes: 10,
            output_truncated: false,
        };
        save(dir.path(), &record).expect("saved");
        let text = std::fs::read_to_string(record_path(dir.path(), &record.id)).expect("written");
        assert!(text.contains("\"state\": \"stopped\"") && text.contains("\"reason\": \"timeout\""), "{text}");
        assert_eq!(load_all(dir.path()), vec![record.clone()]);
        assert_eq!(record.elapsed_ms(), 4);
        std::fs::write(dir.path().join("stray.json"), b"{}").expect("stray");
        assert_eq!(load_all(dir.path()).len(), 1, "unreadable records are skipped");
    }
}
