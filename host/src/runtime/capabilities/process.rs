//! `sanctum:plugin/process`: run a command the operator defined, never a program the plugin
//! names. No shell is involved anywhere: the program is exec'd directly with literal argv.
//!
//! Containment of the child: nothing inherited (environment cleared, stdin null unless granted,
//! only fds 0/1/2 — Rust opens every other descriptor close-on-exec), its own process group that
//! is killed whole on timeout or cancellation and then reaped (no orphans, no zombies), resource
//! limits set before exec, and capped output (the rest is drained and discarded so the child
//! never blocks on a full pipe).

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::audit::{AuditRecord, CapabilityOutcome};
use crate::runtime::bindings::process::{self, Output, RunError};
use crate::runtime::grants::{ChildLimits, CommandGrant};
use crate::runtime::sandbox::CallState;

/// How children of granted commands are confined on this machine, reported at start-up and by
/// `sanctum check`.
pub(crate) fn confinement() -> String {
    let landlock = if landlock_rules::supported() {
        "Landlock filesystem rules (readable/writable per grant): enforced"
    } else {
        "Landlock: NOT enforced (the kernel does not support it)"
    };
    format!(
        "own process group (killed whole), cleared environment, fds 0-2 only, setrlimit (processes, CPU, \
         address space, open files), no_new_privs; {landlock}"
    )
}

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
            self.audit_command(&command, CapabilityOutcome::Denied { rule: "no such command grant".into() }, started);
            return Err(RunError::NotGranted(reason));
        };
        if let Err(reason) = check_args(&grant, &args, stdin.as_deref()) {
            self.audit_command(&command, CapabilityOutcome::Denied { rule: reason.clone() }, started);
            return Err(RunError::ArgumentRefused(reason));
        }
        // Epochs cannot interrupt a host call, so the child gets at most what is left of the call.
        let timeout = grant.timeout.min(self.scope.remaining_budget());
        let result = tokio::select! {
            result = run_child(&grant, &args, stdin, timeout) => result,
            () = self.cancel.cancelled() => Err("the call was cancelled; the command was killed".to_owned()),
        };
        let outcome = match &result {
            Ok(out) => CapabilityOutcome::Ran { status: out.status, timed_out: out.timed_out },
            Err(reason) => CapabilityOutcome::Failed { reason: reason.clone() },
        };
        self.audit_command(&command, outcome, started);
        result.map_err(RunError::Failed)
    }
}

impl CallState {
    fn audit_command(&self, command: &str, outcome: CapabilityOutcome, started: Instant) {
        if let CapabilityOutcome::Denied { rule } = &outcome {
            tracing::warn!(plugin = %self.scope.plugin, command, %rule, "command denied");
        }
        self.scope.audit.record(&AuditRecord::Capability {
            plugin: &self.scope.plugin,
            plugin_sha256: &self.scope.plugin_sha256,
            tool: &self.scope.tool,
            kind: "command",
            target: command,
            outcome,
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
        });
    }
}

/// Every further argument must be small, NUL-free, not an option unless allowed, and match an
/// allowed pattern in full.
fn check_args(grant: &CommandGrant, args: &[String], stdin: Option<&[u8]>) -> Result<(), String> {
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

async fn run_child(
    grant: &CommandGrant,
    args: &[String],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<Output, String> {
    let mut command = Command::new(&grant.program);
    command
        .args(&grant.leading_args)
        .args(args)
        .env_clear()
        .envs(&grant.env)
        .current_dir(&grant.cwd)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // Built here, in the parent: creating rules allocates, which the child must not do.
    let ruleset = landlock_rules::ruleset(grant);
    child_limits::apply(&mut command, grant.rlimits, ruleset.as_ref().map(std::os::fd::AsRawFd::as_raw_fd));
    let spawned = command.spawn();
    drop(ruleset); // the child holds its own copy until exec; CLOEXEC closes it then
    let mut child = spawned.map_err(|e| format!("cannot start {}: {e}", grant.program.display()))?;
    let group = child.id();
    // Declared after `child`, so on an early return or a cancelled call it drops first: the
    // group is killed while the child is still unreaped (see `exited_unreaped`).
    let mut kill_group_on_exit = GroupKiller(group);

    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A child that does not read its input must not stall us: write in the background.
        tokio::spawn(async move {
            let _ = pipe.write_all(&bytes).await;
        });
    }
    let stdout = tokio::spawn(read_capped(child.stdout.take(), grant.max_stdout_bytes));
    let stderr = tokio::spawn(read_capped(child.stderr.take(), grant.max_stderr_bytes));

    let timed_out = tokio::time::timeout(timeout, exited_unreaped(group)).await.is_err();
    // Whether it exited or timed out, the child is not reaped yet, so its process-group id still
    // names its group: kill the group (the child on timeout, any grandchildren in every case).
    kill_group(group);
    if timed_out {
        exited_unreaped(group).await;
    }
    let waited = child.wait().await;
    // Reaped (or beyond our reach): from here on the id may name an unrelated process group.
    kill_group_on_exit.0 = None;
    let status = waited.map_err(|e| format!("waiting for the command failed: {e}"))?;
    let status = if timed_out { None } else { status.code() };
    let (stdout, stdout_truncated) = stdout.await.unwrap_or_default();
    let (stderr, stderr_truncated) = stderr.await.unwrap_or_default();
    Ok(Output { status, stdout, stderr, stdout_truncated, stderr_truncated, timed_out })
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

/// Wait until the child `pid` has exited, without reaping it. A process-group id stays reserved
/// while its leader's pid does, and a zombie holds its pid: so between this returning and the
/// reap, `kill_group` cannot hit an unrelated group that reused the number. (Pids do get reused
/// quickly: with pid_max at 32768 a busy host wraps within minutes.)
async fn exited_unreaped(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    let options = rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT;
    let _ = tokio::task::spawn_blocking(move || {
        while let Err(rustix::io::Errno::INTR) = rustix::process::waitid(rustix::process::WaitId::Pid(pid), options) {}
    })
    .await;
}

/// Kills the child's whole process group when the call ends early (error or cancellation),
/// while the child is not yet reaped; disarmed (`None`) once it is.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(group: Option<u32>) {
    let Some(pid) = group.and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw) else {
        return;
    };
    // ESRCH (already gone) is the normal case after a clean exit.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

mod child_limits {
    //! Resource limits set in the child between fork and exec.
    #![allow(unsafe_code)]

    use rustix::process::{Resource, Rlimit, setrlimit};

    use super::ChildLimits;

    pub(super) fn apply(command: &mut tokio::process::Command, limits: ChildLimits, landlock: Option<i32>) {
        let set = move || -> std::io::Result<()> {
            for (resource, value) in [
                (Resource::Nproc, limits.max_processes),
                (Resource::Cpu, limits.cpu_seconds),
                (Resource::As, limits.address_space_bytes),
                (Resource::Nofile, limits.open_files),
            ] {
                setrlimit(resource, Rlimit { current: Some(value), maximum: Some(value) })?;
            }
            // No setuid escalation out of the limits, and required before landlock_restrict_self.
            rustix::thread::set_no_new_privs(true)?;
            if let Some(fd) = landlock {
                // SAFETY: a raw syscall on a ruleset fd the parent opened and keeps open across
                // the fork; it takes no pointers.
                let done = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) };
                if done != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        };
        // SAFETY: the closure runs in the forked child before exec. It only makes syscalls
        // (setrlimit, prctl, landlock_restrict_self) that are async-signal-safe, allocates
        // nothing and touches no lock.
        unsafe {
            command.pre_exec(set);
        }
    }
}

mod landlock_rules {
    //! The child's filesystem view: read and execute beneath `readable`, also write beneath
    //! `writable` (and `/dev/null`), nothing else — where the kernel supports Landlock.

    use std::os::fd::OwnedFd;
    use std::path::PathBuf;

    use landlock::{ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, path_beneath_rules};

    use super::CommandGrant;

    /// The newest ABI this code knows; older kernels get the subset they support.
    const TARGET: ABI = ABI::V5;

    pub(super) fn supported() -> bool {
        Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET))
            .and_then(|r| r.create())
            .is_ok_and(|created| Option::<OwnedFd>::from(created).is_some())
    }

    /// The ruleset fd for `grant`, or `None` where Landlock is unavailable.
    pub(super) fn ruleset(grant: &CommandGrant) -> Option<OwnedFd> {
        let existing = |paths: &[PathBuf]| paths.iter().filter(|p| p.exists()).cloned().collect::<Vec<_>>();
        let mut writable = existing(&grant.writable);
        writable.push(PathBuf::from("/dev/null"));
        let created = Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET))
            .ok()?
            .create()
            .ok()?
            .add_rules(path_beneath_rules(existing(&grant.readable), AccessFs::from_read(TARGET)))
            .ok()?
            .add_rules(path_beneath_rules(writable, AccessFs::from_all(TARGET)))
            .ok()?;
        Option::<OwnedFd>::from(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn grant(patterns: &[&str], allow_flags: bool) -> CommandGrant {
        CommandGrant {
            program: "/bin/echo".into(),
            leading_args: vec![],
            allowed_args: patterns.iter().map(|p| regex::Regex::new(p).expect("pattern")).collect(),
            allow_flags,
            env: BTreeMap::new(),
            cwd: "/".into(),
            timeout: Duration::from_secs(5),
            max_stdout_bytes: 1024,
            max_stderr_bytes: 1024,
            allow_stdin: false,
            rlimits: ChildLimits::default(),
            readable: vec!["/".into()],
            writable: vec![],
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
