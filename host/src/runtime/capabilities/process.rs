//! `sanctum:plugin/process`: run a command the operator defined, never a program the plugin
//! names. No shell is involved anywhere: the program is exec'd directly with literal argv.
//!
//! Containment of the child: nothing inherited (environment cleared, stdin null unless granted,
//! only fds 0/1/2 — Rust opens every other descriptor close-on-exec), resource limits set before
//! exec, and capped output (the rest is drained and discarded so the child never blocks on a full
//! pipe). Every process the command starts stays inside the run and is gone when it ends
//! ([`containment`](super::containment): a PID namespace, or the subreaper fallback). The time
//! limit covers the whole run, whatever its descendants do with the pipes, and every run leaves
//! one audit record saying how it ended.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::containment;
use super::spawn::{self, Contained, Reaped};
use crate::audit::{AuditRecord, CapabilityOutcome};
use crate::model::CommandGrant;
use crate::runtime::bindings::process::{self, Output, RunError};
use crate::runtime::sandbox::{CallScope, CallState};

/// How children of granted commands are confined on this machine, reported at start-up and by
/// `sanctum check`.
pub(crate) fn confinement() -> String {
    let landlock = if spawn::landlock_supported() {
        "Landlock filesystem rules (readable/writable per grant): enforced"
    } else {
        "Landlock: NOT enforced (the kernel does not support it)"
    };
    format!(
        "process tree: {}; cleared environment, fds 0-2 only, setrlimit (processes, CPU, address space, open \
         files), no_new_privs; {landlock}",
        containment::mechanism().describe()
    )
}

/// How long the output of a finished run may keep arriving: its processes are all gone, so
/// the pipes are at their end; this only bounds the wait for the last bytes.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Most further arguments a plugin may pass, and the longest one (bytes).
const MAX_ARGS: usize = 64;
const MAX_ARG_BYTES: usize = 4096;
/// Most stdin bytes a plugin may send.
const MAX_STDIN_BYTES: usize = 1 << 20;

impl process::Host for CallState {
    async fn run(&mut self, command: String, args: Vec<String>, stdin: Option<Vec<u8>>) -> Result<Output, RunError> {
        let started = Instant::now();
        let Some(grant) = self.scope.grants.commands.get(&command).cloned() else {
            let reason = format!(
                "command {command:?} is not granted to plugin {plugin:?} (the operator can add \
                 [plugins.{plugin}.commands.{command}] to the policy)",
                plugin = self.scope.plugin
            );
            audit_command(
                &self.scope,
                &command,
                CapabilityOutcome::Denied { rule: "no such command grant".into() },
                started,
            );
            return Err(RunError::NotGranted(reason));
        };
        if let Err(reason) = check_args(&grant, &args, stdin.as_deref()) {
            audit_command(&self.scope, &command, CapabilityOutcome::Denied { rule: reason.clone() }, started);
            return Err(RunError::ArgumentRefused(reason));
        }
        // Epochs cannot interrupt a host call, so the child gets at most what is left of the call.
        let timeout = grant.timeout.min(self.scope.remaining_budget());
        // Written even if the call is dropped mid-run (its hard deadline): then as `abandoned`.
        let mut audit = RunAudit { scope: Arc::clone(&self.scope), command, started, outcome: None };
        let result = run_child(&grant, &args, stdin, timeout, &self.cancel).await;
        let (outcome, result) = match result {
            Ok(run) => {
                let outcome = run.outcome();
                let result = if run.ended == Ended::Cancelled {
                    Err("the call was cancelled; the command was killed".to_owned())
                } else {
                    Ok(run.output)
                };
                (outcome, result)
            }
            Err(reason) => (CapabilityOutcome::Failed { reason: reason.clone() }, Err(reason)),
        };
        audit.outcome = Some(outcome);
        drop(audit);
        result.map_err(RunError::Failed)
    }
}

/// The audit record of one command run, written when dropped: with the outcome once known, as
/// `abandoned` if the call ended before the run did.
struct RunAudit {
    scope: Arc<CallScope>,
    command: String,
    started: Instant,
    outcome: Option<CapabilityOutcome>,
}

impl Drop for RunAudit {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or(CapabilityOutcome::Ran {
            ended: Ended::Abandoned.name(),
            status: None,
            signal: None,
            timed_out: false,
            descendants_killed: None,
        });
        audit_command(&self.scope, &self.command, outcome, self.started);
    }
}

fn audit_command(scope: &CallScope, command: &str, outcome: CapabilityOutcome, started: Instant) {
    if let CapabilityOutcome::Denied { rule } = &outcome {
        tracing::warn!(plugin = %scope.plugin, command, %rule, "command denied");
    }
    scope.audit.record(&AuditRecord::Capability {
        plugin: &scope.plugin,
        plugin_sha256: &scope.plugin_sha256,
        tool: &scope.tool,
        kind: "command",
        target: command,
        outcome,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
    });
}

/// Every further argument must be small, NUL-free, not an option unless allowed, and match an
/// allowed pattern in full.
pub(crate) fn check_args(grant: &CommandGrant, args: &[String], stdin: Option<&[u8]>) -> Result<(), String> {
    if args.len() > MAX_ARGS {
        return Err(format!("{} arguments given; at most {MAX_ARGS} are allowed", args.len()));
    }
    if stdin.is_some() && !grant.allow_stdin {
        return Err("this command takes no standard input".into());
    }
    if stdin.is_some_and(|s| s.len() > MAX_STDIN_BYTES) {
        return Err(format!("standard input is over {MAX_STDIN_BYTES} bytes"));
    }
    for (i, arg) in args.iter().enumerate() {
        if arg.len() > MAX_ARG_BYTES {
            return Err(format!("argument {i} is over {MAX_ARG_BYTES} bytes"));
        }
        if arg.contains('\0') {
            return Err(format!("argument {i} contains a NUL byte"));
        }
        if arg.starts_with('-') && !grant.allow_flags {
            return Err(format!("argument {i} starts with '-', and this command does not accept options from plugins"));
        }
        if !grant.allowed_args.iter().any(|pattern| full_match(pattern, arg)) {
            return Err(format!("argument {i} does not match any pattern the operator allowed for this command"));
        }
    }
    Ok(())
}

fn full_match(pattern: &regex::Regex, text: &str) -> bool {
    pattern.find(text).is_some_and(|m| m.start() == 0 && m.end() == text.len())
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Exited,
    Signaled,
    Timeout,
    Cancelled,
    /// The call ended (its hard deadline) while the command ran; only the audit guard sees it.
    Abandoned,
}

impl Ended {
    fn name(self) -> &'static str {
        match self {
            Self::Exited => "exited",
            Self::Signaled => "signaled",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }
}

/// A finished run: what the plugin gets, and what the audit trail records.
struct Run {
    output: Output,
    ended: Ended,
    signal: Option<i32>,
    descendants_killed: Option<u32>,
}

impl Run {
    fn outcome(&self) -> CapabilityOutcome {
        CapabilityOutcome::Ran {
            ended: self.ended.name(),
            status: self.output.status,
            signal: self.signal,
            timed_out: self.ended == Ended::Timeout,
            descendants_killed: self.descendants_killed,
        }
    }
}

async fn run_child(
    grant: &CommandGrant,
    args: &[String],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Run, String> {
    let stdin_stdio = if stdin.is_some() { Stdio::piped() } else { Stdio::null() };
    let mut child = Contained::spawn(grant, args, stdin_stdio, Stdio::piped(), Stdio::piped())?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.child.stdin.take()) {
        // A child that does not read its input must not stall us: write in the background.
        tokio::spawn(async move {
            let _ = pipe.write_all(&bytes).await;
        });
    }
    let mut stdout = tokio::spawn(read_capped(child.child.stdout.take(), grant.max_stdout_bytes));
    let mut stderr = tokio::spawn(read_capped(child.child.stderr.take(), grant.max_stderr_bytes));

    // The limit covers the run, not the pipes: a descendant holding them open cannot stretch it.
    let ended = tokio::select! {
        exited = tokio::time::timeout(timeout, child.exited()) => {
            if exited.is_ok() { Ended::Exited } else { Ended::Timeout }
        }
        () = cancel.cancelled() => Ended::Cancelled,
    };
    let Reaped { code, signal, descendants_killed } = child.finish(ended != Ended::Exited).await?;
    let mut ended = ended;
    if ended == Ended::Exited && signal.is_some() {
        ended = Ended::Signaled;
    }
    let (code, signal) = if matches!(ended, Ended::Exited | Ended::Signaled) { (code, signal) } else { (None, None) };
    let drained = tokio::time::timeout(DRAIN_GRACE, async { ((&mut stdout).await, (&mut stderr).await) }).await;
    let ((stdout, stdout_truncated), (stderr, stderr_truncated)) = match drained {
        Ok((out, err)) => (out.unwrap_or_default(), err.unwrap_or_default()),
        // Not reachable while containment holds (every writer is gone); if it ever were, the
        // run still ends on time, without that output, and nothing is left reading.
        Err(_) => {
            stdout.abort();
            stderr.abort();
            ((Vec::new(), true), (Vec::new(), true))
        }
    };
    let output =
        Output { status: code, stdout, stderr, stdout_truncated, stderr_truncated, timed_out: ended == Ended::Timeout };
    Ok(Run { output, ended, signal, descendants_killed })
}

/// Read everything from `pipe`, keeping the first `cap` bytes.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else { return (Vec::new(), false) };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buffer = [0u8; 8192];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (kept, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(patterns: &[&str], allow_flags: bool) -> CommandGrant {
        CommandGrant {
            allowed_args: patterns.iter().map(|p| regex::Regex::new(p).expect("pattern")).collect(),
            allow_flags,
            ..CommandGrant::for_tests("/bin/echo")
        }
    }

    #[test]
    fn arguments_must_match_a_pattern_in_full() {
        let g = grant(&["[a-z]+"], false);
        assert!(check_args(&g, &["web".into()], None).is_ok());
        assert!(check_args(&g, &["web; rm -rf /".into()], None).expect_err("refused").contains("pattern"));
        assert!(check_args(&g, &["$(id)".into()], None).is_err());
    }

    #[test]
    fn options_nul_bytes_and_stdin_are_refused_unless_granted() {
        let g = grant(&[".*"], false);
        assert!(check_args(&g, &["--upload-pack=evil".into()], None).expect_err("refused").contains("'-'"));
        assert!(grant(&[".*"], true).allowed_args.len() == 1);
        assert!(check_args(&grant(&[".*"], true), &["--verbose".into()], None).is_ok());
        assert!(check_args(&g, &["a\0b".into()], None).expect_err("refused").contains("NUL"));
        assert!(check_args(&g, &[], Some(b"x")).expect_err("refused").contains("standard input"));
    }
}
