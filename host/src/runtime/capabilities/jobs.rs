//! `sanctum:plugin/jobs`: start a granted command as a host-supervised job and follow it.
//!
//! The grant and argument checks are the ones `process.run` makes (the same grant, the same
//! [`check_args`]); everything after the start belongs to the [`Supervisor`], which this module
//! only asks on the plugin's behalf, always naming the plugin of the running call, so a plugin
//! reaches only its own jobs.

use crate::audit::AuditRecord;
use crate::runtime::bindings::jobs::{self, JobError, JobState, JobStatus, OutputChunk, StopReason};
use crate::runtime::jobs::{self as supervised, Caller, JobRecord, StartRequest, Supervisor};
use crate::runtime::sandbox::{CallScope, CallState};

use super::process::check_args;

impl jobs::Host for CallState {
    async fn start(&mut self, command: String, args: Vec<String>) -> Result<JobStatus, JobError> {
        let scope = &self.scope;
        let Some(supervisor) = scope.jobs.clone() else {
            return Err(JobError::Failed(
                "jobs are off on this server (sanctum serve --jobs-dir); only `sanctum serve` runs them".into(),
            ));
        };
        let Some(grant) = scope.grants.commands.get(&command).cloned() else {
            let reason = format!(
                "command {command:?} is not granted to plugin {plugin:?} (the operator can add \
                 [plugins.{plugin}.commands.{command}] to the policy)",
                plugin = scope.plugin
            );
            refused(scope, &command, "no such command grant");
            return Err(JobError::NotGranted(reason));
        };
        if let Err(reason) = check_args(&grant, &args, None) {
            refused(scope, &command, &reason);
            return Err(JobError::ArgumentRefused(reason));
        }
        let request = StartRequest {
            plugin: scope.plugin.clone(),
            plugin_sha256: scope.plugin_sha256.clone(),
            tool: scope.tool.clone(),
            agent: scope.agent_id.clone(),
            command,
            args,
            grant,
        };
        let command = request.command.clone();
        match supervisor.start(request).await {
            Ok(job) => Ok(status(job)),
            Err(refusal @ supervised::JobError::LimitReached(_)) => {
                refused(scope, &command, &refusal.to_string());
                Err(error(refusal))
            }
            // Audited by the supervisor (`failed`), with what it had made undone.
            Err(other) => Err(error(other)),
        }
    }

    fn status(&mut self, id: String) -> Result<JobStatus, JobError> {
        let supervisor = supervisor(&self.scope)?;
        supervisor.status(&self.scope.plugin, &id).map(status).map_err(error)
    }

    fn read_output(&mut self, id: String, offset: u64, max_bytes: u32) -> Result<OutputChunk, JobError> {
        let supervisor = supervisor(&self.scope)?;
        let (data, next_offset, complete) =
            supervisor.read_output(&self.scope.plugin, &id, offset, max_bytes).map_err(error)?;
        Ok(OutputChunk { data, next_offset, complete })
    }

    async fn cancel(&mut self, id: String) -> Result<JobStatus, JobError> {
        let supervisor = supervisor(&self.scope)?;
        let by = Caller {
            plugin_sha256: self.scope.plugin_sha256.clone(),
            tool: self.scope.tool.clone(),
            agent: self.scope.agent_id.clone(),
        };
        supervisor.cancel(&self.scope.plugin, &id, by).await.map(status).map_err(error)
    }

    fn list_jobs(&mut self) -> Vec<JobStatus> {
        self.scope
            .jobs
            .as_ref()
            .map(|s| s.list(&self.scope.plugin).into_iter().map(status).collect())
            .unwrap_or_default()
    }
}

fn supervisor(scope: &CallScope) -> Result<Supervisor, JobError> {
    // Not `not-found`: a plugin would take that for a pruned job and close its record.
    scope.jobs.clone().ok_or_else(|| JobError::Failed("jobs are off on this server (sanctum serve --jobs-dir)".into()))
}

/// A refused start: audited (never the argument values) and counted as a capability denial.
fn refused(scope: &CallScope, command: &str, reason: &str) {
    tracing::warn!(plugin = %scope.plugin, command, reason, "job refused");
    scope.audit.record(&AuditRecord::Job {
        plugin: &scope.plugin,
        plugin_sha256: &scope.plugin_sha256,
        tool: &scope.tool,
        agent_id: scope.agent_id.as_deref(),
        job: None,
        command,
        step: "refused",
        exit_status: None,
        signal: None,
        reason: Some(reason),
        duration_ms: None,
        descendants_killed: None,
    });
}

fn status(record: JobRecord) -> JobStatus {
    let elapsed_ms = record.elapsed_ms();
    let state = match record.state {
        supervised::JobState::Running => JobState::Running,
        supervised::JobState::Exited { code } => JobState::Exited(code),
        supervised::JobState::Signaled { signal } => JobState::Signaled(signal),
        supervised::JobState::Stopped { reason } => JobState::Stopped(match reason {
            supervised::StopReason::Timeout => StopReason::Timeout,
            supervised::StopReason::Cancelled => StopReason::Cancelled,
            supervised::StopReason::Shutdown => StopReason::Shutdown,
        }),
        supervised::JobState::Lost => JobState::Lost,
    };
    JobStatus {
        id: record.id,
        command: record.command,
        args: record.args,
        agent: record.agent,
        started_at_ms: record.started_at_ms,
        elapsed_ms,
        state,
        output_bytes: record.output_bytes,
        output_truncated: record.output_truncated,
    }
}

fn error(error: supervised::JobError) -> JobError {
    match error {
        supervised::JobError::LimitReached(m) => JobError::LimitReached(m),
        supervised::JobError::NotFound(m) => JobError::NotFound(m),
        supervised::JobError::Failed(m) => JobError::Failed(m),
    }
}
