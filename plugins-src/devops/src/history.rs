//! Deployment records, one JSON file per app and environment in the granted state directory.
//!
//! A record is written as `running`, with the id of the host job that deploys, as soon as the
//! job starts; `reconcile` rewrites it with the job's outcome once the job has ended. Each save
//! writes a temporary file and renames it over the old one, so the file is always a complete
//! old or new version. A `running` record without a job id was left by the plugin's earlier,
//! synchronous version whose call was killed mid-deploy: it is `interrupted`, never a success.

use std::io::Write;
use std::path::{Path, PathBuf};

use sanctum_guest::ToolError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The deploy job is running.
    Running,
    /// The command exited with status 0.
    Succeeded,
    /// The command exited with another status, died of a signal, or could not be started.
    Failed,
    /// The command ran past the grant's job time limit and was stopped.
    TimedOut,
    /// `cancel` stopped it.
    Cancelled,
    /// The server stopped or restarted while it ran (or the host no longer knows the job): the
    /// deploy's effect is unknown.
    Interrupted,
}

/// Deploy or rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Deploy,
    Rollback,
}

/// One deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Record {
    /// Sequence number within this app and environment, from 1.
    pub(crate) id: u64,
    pub(crate) action: Action,
    /// The version deployed.
    pub(crate) version: String,
    /// The agent that asked, as its client identified it, if it did.
    pub(crate) agent: Option<String>,
    /// The host's id of the job that runs the deploy command; absent when it never started
    /// (and in records written before deploys ran as jobs).
    #[serde(default)]
    pub(crate) job_id: Option<String>,
    /// When the command started (RFC 3339, UTC).
    pub(crate) started_at: String,
    /// When it ended; absent while running.
    pub(crate) finished_at: Option<String>,
    pub(crate) outcome: Outcome,
    /// The command's exit status, if it exited.
    pub(crate) exit_status: Option<i32>,
    /// The end of the command's output (stdout and stderr as they came), at most 2000
    /// characters; filled in when the job ends.
    pub(crate) output_tail: String,
}

/// The history of one app in one environment, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct History {
    deployments: Vec<Record>,
}

/// Where one history lives.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    path: PathBuf,
}

impl Store {
    pub(crate) fn new(state_dir: &str, app: &str, environment: &str) -> Self {
        // App and environment names are validated identifiers, so this cannot leave the directory.
        Self { path: PathBuf::from(state_dir).join(format!("{app}.{environment}.json")) }
    }

    /// The history so far; empty if none was written yet. A file that does not parse is an error,
    /// never silently replaced: it is the record of what ran in production.
    pub(crate) fn load(&self) -> Result<History, ToolError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ToolError::new(format!(
                    "the deployment history {} is damaged ({e}); an operator must repair or move it",
                    self.path.display()
                ))
            }),
            // No file yet means no deployments, but only if the directory itself is there: a
            // missing grant must not read as "never deployed".
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.path.parent().is_some_and(Path::is_dir) => {
                Ok(History::default())
            }
            Err(e) => Err(self.io_error("read", &e)),
        }
    }

    /// Replace the history atomically.
    pub(crate) fn save(&self, history: &History) -> Result<(), ToolError> {
        let json = serde_json::to_vec_pretty(history)
            .map_err(|e| ToolError::new(format!("internal error: history not serializable: {e}")))?;
        let temp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&temp).map_err(|e| self.io_error("write", &e))?;
        // On disk before the rename, so a crash cannot leave the new name on empty contents.
        file.write_all(&json).and_then(|()| file.sync_all()).map_err(|e| self.io_error("write", &e))?;
        std::fs::rename(&temp, &self.path).map_err(|e| self.io_error("replace", &e))
    }

    fn io_error(&self, what: &str, e: &std::io::Error) -> ToolError {
        ToolError::new(format!(
            "cannot {what} the deployment history {}: {e} (is the state directory granted and writable?)",
            self.path.display()
        ))
    }
}

impl Record {
    /// `deploy #3 of web v1.2.0 to staging`.
    pub(crate) fn headline(&self, app: &str, environment: &str) -> String {
        let verb = match self.action {
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
        };
        format!("{verb} #{} of {app} {} to {environment}", self.id, self.version)
    }

    /// `succeeded`, `failed (exit status 3)`, `timed out and was stopped`…
    pub(crate) fn describe(&self) -> String {
        match (self.outcome, self.exit_status) {
            (Outcome::Succeeded, _) => "succeeded".into(),
            (Outcome::Failed, Some(code)) => format!("failed (exit status {code})"),
            (Outcome::Failed, None) => "failed".into(),
            (Outcome::TimedOut, _) => "timed out and was stopped".into(),
            (Outcome::Cancelled, _) => "cancelled".into(),
            (Outcome::Running, _) => "running".into(),
            (Outcome::Interrupted, _) => "interrupted (outcome unknown)".into(),
        }
    }
}

impl History {
    /// Add a record, numbered after the last one; returns its id.
    pub(crate) fn push(&mut self, mut record: Record) -> u64 {
        record.id = self.deployments.last().map_or(1, |r| r.id + 1);
        let id = record.id;
        self.deployments.push(record);
        id
    }

    /// Records still `running`, to bring up to date with their jobs.
    pub(crate) fn running_mut(&mut self) -> impl Iterator<Item = &mut Record> {
        self.deployments.iter_mut().filter(|r| r.outcome == Outcome::Running)
    }

    /// The deploy in progress, if any. Meaningful once the history is reconciled, when only a
    /// record whose job still runs is `running`.
    pub(crate) fn running(&self) -> Option<&Record> {
        self.deployments.iter().rev().find(|r| r.outcome == Outcome::Running)
    }

    /// Newest first, at most `limit`.
    pub(crate) fn recent(&self, limit: usize) -> Vec<Record> {
        self.deployments.iter().rev().take(limit).cloned().collect()
    }

    pub(crate) fn last(&self) -> Option<&Record> {
        self.deployments.last()
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Record> {
        self.deployments.iter().find(|r| r.id == id)
    }

    /// The version running now, as far as the history knows: the last successful deployment.
    pub(crate) fn current(&self) -> Option<&Record> {
        self.deployments.iter().rev().find(|r| r.outcome == Outcome::Succeeded)
    }

    /// The version a rollback without a target goes back to: the newest successful deployment of
    /// a version other than the current one.
    pub(crate) fn previous(&self) -> Option<&Record> {
        let current = self.current()?;
        self.deployments.iter().rev().find(|r| r.outcome == Outcome::Succeeded && r.version != current.version)
    }

    /// Whether `version` was ever deployed successfully here.
    pub(crate) fn succeeded_with(&self, version: &str) -> bool {
        self.deployments.iter().any(|r| r.outcome == Outcome::Succeeded && r.version == version)
    }
}

#[cfg(test)]
pub(crate) fn record(version: &str, outcome: Outcome) -> Record {
    Record {
        id: 0,
        action: Action::Deploy,
        version: version.into(),
        agent: None,
        job_id: None,
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        outcome,
        exit_status: None,
        output_tail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_and_previous_skip_failures_and_repeats() {
        let mut h = History::default();
        for (v, o) in [
            ("v1", Outcome::Succeeded),
            ("v2", Outcome::Succeeded),
            ("v3", Outcome::Failed),
            ("v2", Outcome::Succeeded),
            ("v4", Outcome::TimedOut),
        ] {
            h.push(record(v, o));
        }
        assert_eq!(h.current().map(|r| r.version.as_str()), Some("v2"));
        assert_eq!(h.previous().map(|r| r.version.as_str()), Some("v1"));
        assert!(h.succeeded_with("v1") && !h.succeeded_with("v3"));
        assert_eq!(h.recent(2).iter().map(|r| r.id).collect::<Vec<_>>(), [5, 4]);
    }

    #[test]
    fn histories_written_before_jobs_still_load() {
        let old = r#"{"deployments": [{"id": 1, "action": "deploy", "version": "v1", "agent": null,
            "started_at": "2026-01-01T00:00:00Z", "finished_at": null, "outcome": "running",
            "exit_status": null, "output_tail": ""}]}"#;
        let h: History = serde_json::from_str(old).expect("loads");
        assert_eq!(h.running().map(|r| (r.id, r.job_id.clone())), Some((1, None)));
    }

    #[test]
    fn store_round_trips_and_refuses_damaged_files() {
        let dir = std::env::temp_dir().join(format!("devops-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let store = Store::new(dir.to_str().expect("utf-8"), "web", "staging");
        assert_eq!(store.load(), Ok(History::default()));
        let ungranted = Store::new("/nonexistent-state-dir", "web", "staging");
        assert!(ungranted.load().expect_err("no directory").message().contains("is the state directory granted"));
        let mut h = History::default();
        h.push(record("v1", Outcome::Succeeded));
        store.save(&h).expect("saved");
        assert_eq!(store.load(), Ok(h));
        std::fs::write(dir.join("web.staging.json"), b"{\"deployments\": [").expect("damage");
        let err = store.load().expect_err("damaged");
        assert!(err.message().contains("damaged"), "{}", err.message());
        std::fs::remove_dir_all(&dir).ok();
    }
}
