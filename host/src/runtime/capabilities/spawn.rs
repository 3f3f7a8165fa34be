//! Starting a granted command inside its containment, and ending it: shared by one-shot runs
//! (`process.rs`) and host-supervised jobs (`runtime/jobs/`), so a job gets exactly the same
//! confinement as a run: literal argv, cleared environment, resource limits, no_new_privs,
//! Landlock rules, its own session, and a PID namespace (or the subreaper fallback) that takes
//! every process it started with it.
//!
//! The one rule that matters here: the run's process-group id is only ever signalled while its
//! leader is unreaped, so the number cannot name an unrelated group that reused it.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::containment;
use crate::model::CommandGrant;

/// How long a run's namespace init gets to kill, count and report before it is killed itself.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Whether this kernel enforces Landlock rules (reported by `confinement`).
pub(crate) fn landlock_supported() -> bool {
    landlock_rules::supported()
}

/// A granted command started in its containment, not yet reaped.
pub(crate) struct Contained {
    /// The host's direct child (in namespace mode, the namespace's supervisor). Its pipes are
    /// the caller's to take.
    pub(crate) child: Child,
    group: Option<u32>,
    report: Option<OwnedFd>,
    in_namespace: bool,
    _running: Option<containment::Running>,
    // Last, so on an early drop the group is killed while the child is still unreaped.
    killer: GroupKiller,
}

/// How a contained run ended, once reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reaped {
    /// The command's exit status, if it exited.
    pub(crate) code: Option<i32>,
    /// The signal that ended the command, if one did.
    pub(crate) signal: Option<i32>,
    /// Processes the containment killed after the command ended (none if unknown).
    pub(crate) descendants_killed: Option<u32>,
}

impl Contained {
    /// Start `grant`'s program with its leading arguments and `args`, with the given standard
    /// streams. The arguments must already have passed the grant's checks.
    pub(crate) fn spawn(
        grant: &CommandGrant,
        args: &[String],
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Self, String> {
        let mut plan =
            containment::Plan::new().map_err(|e| format!("cannot prepare the command's containment: {e}"))?;
        let mut command = Command::new(&grant.program);
        command
            .args(&grant.leading_args)
            .args(args)
            .env_clear()
            .envs(&grant.env)
            .current_dir(&grant.cwd)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            // Its own session (set in the child, see `containment::Plan::in_child`), hence its own
            // process group too.
            .kill_on_drop(true);
        // Built here, in the parent: creating rules allocates, which the child must not do.
        let ruleset = landlock_rules::ruleset(grant);
        let report = plan.take_report_reader();
        let in_namespace = plan.uses_namespace();
        child_limits::apply(&mut command, grant.rlimits, ruleset.as_ref().map(std::os::fd::AsRawFd::as_raw_fd), plan);
        let spawned = command.spawn();
        // The child holds its own copies until exec (CLOEXEC closes them then); dropping the
        // command drops ours, so the report pipe reads EOF once the namespace's init is gone.
        drop(command);
        drop(ruleset);
        let child = spawned.map_err(|e| format!("cannot start {}: {e}", grant.program.display()))?;
        let group = child.id();
        let running = group.and_then(|pid| i32::try_from(pid).ok()).map(containment::Running::new);
        Ok(Self { child, group, report, in_namespace, _running: running, killer: GroupKiller(group) })
    }

    /// Resolves once the command has exited (unreaped, see [`exited_unreaped`]).
    pub(crate) async fn exited(&self) {
        exited_unreaped(self.group).await;
    }

    /// End the run: when `stop` (timeout, cancellation, shutdown) ask the namespace's init to
    /// kill and count everything, then kill the group whatever happened, reap, and report.
    pub(crate) async fn finish(mut self, stop: bool) -> Result<Reaped, String> {
        let group = self.group;
        if stop && self.in_namespace {
            signal_group(group, containment::STOP_SIGNAL);
            let _ = tokio::time::timeout(STOP_GRACE, exited_unreaped(group)).await;
        }
        kill_group(group);
        if stop {
            exited_unreaped(group).await;
        }
        let waited = self.child.wait().await;
        // Reaped (or beyond our reach): from here on the id may name an unrelated process group.
        self.killer.0 = None;
        let status = waited.map_err(|e| format!("waiting for the command failed: {e}"))?;
        if self.in_namespace {
            // The child is the namespace's supervisor; the command's own status comes from its init.
            let report = self.report.take().and_then(containment::read_report);
            Ok(match report {
                Some(report) => {
                    let (code, signal) = decode(report.wait_status);
                    Reaped { code, signal, descendants_killed: Some(report.descendants_killed) }
                }
                None => Reaped { code: None, signal: None, descendants_killed: None },
            })
        } else {
            let descendants = containment::sweep_orphans();
            Ok(Reaped {
                code: status.code(),
                signal: std::os::unix::process::ExitStatusExt::signal(&status),
                descendants_killed: Some(descendants),
            })
        }
    }
}

/// Exit code and terminating signal from a raw wait status.
fn decode(wait_status: i32) -> (Option<i32>, Option<i32>) {
    if libc::WIFEXITED(wait_status) {
        (Some(libc::WEXITSTATUS(wait_status)), None)
    } else if libc::WIFSIGNALED(wait_status) {
        (None, Some(libc::WTERMSIG(wait_status)))
    } else {
        (None, None)
    }
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
    signal_group(group, libc::SIGKILL);
}

fn signal_group(group: Option<u32>, signal: libc::c_int) {
    // Never 0 (our own group) or 1 (-1 is every process we may signal): a child's pid is neither.
    let Some(pid) = group.and_then(|id| i32::try_from(id).ok()).filter(|pid| *pid > 1) else {
        return;
    };
    // ESRCH (already gone) is the normal case after a clean exit. Only called while the group's
    // leader is unreaped, so the number still names this run's group.
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with plain integers; a negative pid addresses the process group.
    unsafe {
        libc::kill(-pid, signal);
    }
}

mod child_limits {
    //! What runs in the child between fork and exec: containment first (in namespace mode it
    //! forks twice and only the command's process comes back), then resource limits,
    //! no_new_privs and the Landlock rules for the command itself.
    #![allow(unsafe_code)]

    use rustix::process::{Resource, Rlimit, setrlimit};

    use super::containment::Plan;
    use crate::model::ChildLimits;

    pub(super) fn apply(command: &mut tokio::process::Command, limits: ChildLimits, landlock: Option<i32>, plan: Plan) {
        let set = move || -> std::io::Result<()> {
            plan.in_child()?;
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
        // SAFETY: the closure runs in the forked child before exec. It only makes system calls
        // that are async-signal-safe (unshare, fork, waitpid, prctl, setrlimit,
        // landlock_restrict_self, on data prepared before the fork), allocates nothing and
        // touches no lock.
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

    use crate::model::CommandGrant;

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
