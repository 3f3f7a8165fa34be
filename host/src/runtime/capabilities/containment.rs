//! Keeping every process a granted command starts inside its run: when the run ends — the
//! command exits, times out or is cancelled — every process it started is gone, including
//! ones that left its process group (`setsid`) or were orphaned by a double fork.
//!
//! Two mechanisms, chosen once per process by probing the kernel ([`mechanism`]):
//!
//! - **PID namespace** (the default wherever the kernel lets the server's user make one; an
//!   unprivileged user gets it inside a user namespace that maps only its own uid and gid).
//!   The host's child `P` unshares and forks `I`, PID 1 of the new namespace, which forks the
//!   command `C`. A process cannot leave a PID namespace, and when its PID 1 dies the kernel
//!   kills everything in it. `I` reaps orphans; when `C` exits it kills everything left
//!   (`kill(-1)` from a namespace's init reaches exactly its namespace), counts them, and
//!   writes `C`'s wait status and that count to a pipe for the host. A timeout or cancellation
//!   kills `P`'s process group (`P`, `I`, `C`), and `I`'s death takes the namespace with it;
//!   `P` and `I` die with the host (parent-death signal).
//! - **Child subreaper** (fallback: no namespaces, e.g. a container whose seccomp profile
//!   forbids them). The server marks itself a subreaper, so every orphaned descendant of a
//!   command becomes its child rather than init's. When a run ends the host kills the process
//!   group, reaps the command, then repeatedly kills and reaps every child of its own that is
//!   not a command it is running, until none is left.
//!
//! The code between fork and exec may only make async-signal-safe system calls: everything it
//! needs (paths, map lines) is prepared before the fork.

#![allow(unsafe_code)]

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How command runs are contained on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// Each run in its own PID namespace; `user_namespace` when one was needed to make it.
    PidNamespace { user_namespace: bool },
    /// The server adopts orphaned descendants and kills them when a run ends; `forced` when
    /// the operator chose it over namespaces that work.
    Subreaper { forced: bool },
}

impl Mechanism {
    pub(crate) fn describe(self) -> String {
        match self {
            Self::PidNamespace { user_namespace } => format!(
                "each run in its own PID namespace{}: every process it starts is killed when it exits, times \
                 out or is cancelled",
                if user_namespace { " (inside a user namespace mapping only the server's own uid)" } else { "" }
            ),
            Self::Subreaper { forced } => format!(
                "FALLBACK ({}): sanctum adopts the orphaned descendants of a run (child subreaper) and kills them \
                 when the run ends",
                if forced { "chosen by --process-containment" } else { "PID namespaces are unavailable here" }
            ),
        }
    }
}

/// What the operator asked for (`--process-containment`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProcessContainment {
    /// A PID namespace where the kernel allows one, else the subreaper fallback.
    #[default]
    Auto,
    /// The subreaper fallback even where namespaces work (to test it, or where namespace
    /// creation is audited or misbehaves).
    Subreaper,
}

static PREFERENCE: OnceLock<ProcessContainment> = OnceLock::new();
static MECHANISM: OnceLock<Mechanism> = OnceLock::new();

/// Set the operator's choice; effective only before the first command runs (it is one choice
/// for the whole process). Returns false if another was already in force.
pub(crate) fn choose(choice: ProcessContainment) -> bool {
    let kept = *PREFERENCE.get_or_init(|| choice);
    kept == choice
        && MECHANISM
            .get()
            .is_none_or(|m| choice == ProcessContainment::Auto || matches!(m, Mechanism::Subreaper { .. }))
}

/// The mechanism in force, probed once.
pub(crate) fn mechanism() -> Mechanism {
    *MECHANISM.get_or_init(|| {
        if PREFERENCE.get().copied().unwrap_or_default() == ProcessContainment::Subreaper {
            become_subreaper();
            return Mechanism::Subreaper { forced: true };
        }
        for flags in [libc::CLONE_NEWPID, libc::CLONE_NEWPID | libc::CLONE_NEWUSER] {
            if probe_unshare(flags) {
                return Mechanism::PidNamespace { user_namespace: flags & libc::CLONE_NEWUSER != 0 };
            }
        }
        become_subreaper();
        Mechanism::Subreaper { forced: false }
    })
}

/// Whether a child can `unshare(flags)` (and map its ids when `flags` makes a user namespace).
fn probe_unshare(flags: libc::c_int) -> bool {
    let maps = IdMaps::current();
    // SAFETY: the child makes only async-signal-safe system calls on data prepared before the
    // fork, then `_exit`s; the parent only waits for it.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let ok = libc::unshare(flags) == 0 && (flags & libc::CLONE_NEWUSER == 0 || maps.write());
            libc::_exit(if ok { 0 } else { 1 });
        }
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        while libc::waitpid(pid, &raw mut status, 0) < 0 && *libc::__errno_location() == libc::EINTR {}
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

/// The one-line identity maps of a user namespace holding only the server's own uid and gid.
struct IdMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl IdMaps {
    fn current() -> Self {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Self { uid_map: format!("{uid} {uid} 1\n").into_bytes(), gid_map: format!("{gid} {gid} 1\n").into_bytes() }
    }

    /// Write the maps for the calling process (after `unshare(CLONE_NEWUSER)`). Async-signal-safe.
    fn write(&self) -> bool {
        write_file(c"/proc/self/setgroups", b"deny")
            && write_file(c"/proc/self/uid_map", &self.uid_map)
            && write_file(c"/proc/self/gid_map", &self.gid_map)
    }
}

fn write_file(path: &std::ffi::CStr, contents: &[u8]) -> bool {
    // SAFETY: plain system calls on a valid C string and a live buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let written = libc::write(fd, contents.as_ptr().cast(), contents.len());
        libc::close(fd);
        usize::try_from(written).is_ok_and(|n| n == contents.len())
    }
}

/// How one run ended, as the namespace's init saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    /// The command's raw wait status.
    pub(crate) wait_status: i32,
    /// Processes still alive in the namespace when the command exited, killed then.
    pub(crate) descendants_killed: u32,
}

const REPORT_MAGIC: u32 = 0x5341_4e43; // "SANC"
const REPORT_LEN: usize = 12;

/// What the fork-and-exec path of one run needs, prepared before the fork.
pub(crate) struct Plan {
    namespace: Option<NamespacePlan>,
}

struct NamespacePlan {
    flags: libc::c_int,
    maps: Option<IdMaps>,
    /// Where `I` writes its [`Report`] (the write end; the host keeps the read end).
    report: OwnedFd,
    report_reader: Option<OwnedFd>,
}

impl Plan {
    /// The plan for a run under the mechanism in force.
    pub(crate) fn new() -> io::Result<Self> {
        let namespace = match mechanism() {
            Mechanism::Subreaper { .. } => None,
            Mechanism::PidNamespace { user_namespace } => {
                let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                let mut flags = libc::CLONE_NEWPID;
                if user_namespace {
                    flags |= libc::CLONE_NEWUSER;
                }
                Some(NamespacePlan {
                    flags,
                    maps: user_namespace.then(IdMaps::current),
                    report: writer,
                    report_reader: Some(reader),
                })
            }
        };
        Ok(Self { namespace })
    }

    /// Called in the forked child before exec (before the limits are set). In namespace mode it
    /// forks twice and returns only in the command's process; the others supervise and exit.
    pub(crate) fn in_child(&self) -> io::Result<()> {
        // A session of its own: the run is a process group the host can kill whole, and none
        // of its processes shares the server's session — which is how the subreaper sweep tells
        // a run's orphans from children other code of this process started.
        // SAFETY: setsid takes no arguments and is async-signal-safe.
        if unsafe { libc::setsid() } < 0 {
            return Err(io::Error::last_os_error());
        }
        let Some(plan) = &self.namespace else {
            // Without a namespace only the command itself can be tied to the server's life: a
            // crashed server must not leave it running unobserved (its record will say lost).
            // SAFETY: prctl with integer arguments.
            unsafe { die_with_parent() };
            return Ok(());
        };
        // SAFETY: only async-signal-safe system calls on data prepared before the fork; the
        // supervising branches never return (they `_exit`).
        unsafe {
            die_with_parent();
            // The host asks `I` to stop the run with SIGUSR1 to the whole group: `P` must not
            // die of it (that would take `I` down before it reports).
            libc::signal(STOP_SIGNAL, libc::SIG_IGN);
            if libc::unshare(plan.flags) != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(maps) = &plan.maps
                && !maps.write()
            {
                return Err(io::Error::other("cannot map the user namespace's ids"));
            }
            let init = libc::fork();
            if init < 0 {
                return Err(io::Error::last_os_error());
            }
            if init > 0 {
                supervise_init(init);
            }
            // PID 1 of the new namespace.
            die_with_parent();
            catch_stop();
            let command = libc::fork();
            if command < 0 {
                libc::_exit(127);
            }
            if command > 0 {
                run_init(command, plan.report.as_raw_fd());
            }
        }
        Ok(())
    }

    /// The read end of the report pipe, taken by the host after the spawn (which also drops
    /// the host's copy of the write end, so the read sees EOF once `I` is gone).
    pub(crate) fn take_report_reader(&mut self) -> Option<OwnedFd> {
        let plan = self.namespace.as_mut()?;
        plan.report_reader.take()
    }

    pub(crate) fn uses_namespace(&self) -> bool {
        self.namespace.is_some()
    }
}

/// Ask for SIGKILL when the parent thread dies: a supervisor outliving its host would leave
/// its command running unobserved.
unsafe fn die_with_parent() {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
}

/// `P`: hold nothing of the run's (pipes, std's exec-error pipe), wait for `I`, exit.
unsafe fn supervise_init(init: libc::pid_t) -> ! {
    // SAFETY: close_range, waitpid and _exit are async-signal-safe.
    unsafe {
        close_from(0);
        let mut status = 0;
        while libc::waitpid(init, &raw mut status, 0) < 0 && *libc::__errno_location() == libc::EINTR {}
        libc::_exit(0)
    }
}

/// What the host sends the run's process group to stop it (timeout, cancellation): `I` kills
/// the namespace, counts and reports, rather than dying uncounted.
pub(crate) const STOP_SIGNAL: libc::c_int = libc::SIGUSR1;

/// Set in `I` (its own copy of this process's memory after the fork) when the host asks it to stop.
static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// `I` handles [`STOP_SIGNAL`] (an init ignores signals it has no handler for).
unsafe fn catch_stop() {
    // SAFETY: sigaction with a handler that only stores to an atomic; sigprocmask on a local set.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_stop as *const () as usize;
        libc::sigemptyset(&raw mut action.sa_mask);
        libc::sigaction(STOP_SIGNAL, &raw const action, std::ptr::null_mut());
        let mut unblock: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut unblock);
        libc::sigaddset(&raw mut unblock, STOP_SIGNAL);
        libc::sigprocmask(libc::SIG_UNBLOCK, &raw const unblock, std::ptr::null_mut());
    }
}

/// `I`: reap everything; when the command exits (or the host asks it to stop), kill what is
/// left, report, exit (which takes the namespace down with it).
unsafe fn run_init(command: libc::pid_t, report: RawFd) -> ! {
    // SAFETY: async-signal-safe system calls only; `report` is a descriptor inherited from the
    // host, kept open here and closed on exec in the command.
    unsafe {
        close_range(0, report - 1);
        close_from(report + 1);
        let mut command_status = None;
        while !STOP_REQUESTED.load(std::sync::atomic::Ordering::SeqCst) {
            let mut status = 0;
            let pid = libc::waitpid(-1, &raw mut status, 0);
            if pid == command {
                command_status = Some(status);
                break;
            }
            if pid < 0 && *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
        // From a namespace's init, -1 means every other process of the namespace. Anywhere
        // else it would mean every process the server may signal, so it is never sent unless
        // this process is that init.
        if libc::getpid() == 1 {
            libc::kill(-1, libc::SIGKILL);
        }
        let mut killed: u32 = 0;
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &raw mut status, 0);
            if pid == command {
                command_status = Some(status);
            } else if pid > 0 {
                killed += 1;
            } else if *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
        let command_status = command_status.unwrap_or(0);
        let mut buffer = [0u8; REPORT_LEN];
        buffer[..4].copy_from_slice(&REPORT_MAGIC.to_le_bytes());
        buffer[4..8].copy_from_slice(&command_status.to_le_bytes());
        buffer[8..].copy_from_slice(&killed.to_le_bytes());
        libc::write(report, buffer.as_ptr().cast(), REPORT_LEN);
        libc::_exit(0)
    }
}

unsafe fn close_from(first: RawFd) {
    // SAFETY: closing descriptors of this process.
    unsafe { close_range(first, RawFd::MAX) }
}

unsafe fn close_range(first: RawFd, last: RawFd) {
    if last < first {
        return;
    }
    // SAFETY: close_range (Linux 5.9) with plain integers; older kernels get a bounded loop.
    unsafe {
        let done = libc::syscall(libc::SYS_close_range, first as libc::c_uint, last as libc::c_uint, 0);
        if done != 0 {
            for fd in first..last.min(4096) {
                libc::close(fd);
            }
        }
    }
}

/// Read `I`'s report from `reader`, if it wrote one (none when the run was killed from outside).
pub(crate) fn read_report(reader: OwnedFd) -> Option<Report> {
    let mut file = std::fs::File::from(reader);
    let mut buffer = [0u8; REPORT_LEN];
    std::io::Read::read_exact(&mut file, &mut buffer).ok()?;
    let word = |at: usize| buffer[at..at + 4].try_into().ok();
    (u32::from_le_bytes(word(0)?) == REPORT_MAGIC).then(|| Report {
        wait_status: i32::from_le_bytes(word(4).unwrap_or_default()),
        descendants_killed: u32::from_le_bytes(word(8).unwrap_or_default()),
    })
}

/// Pids of commands the host is running now: the subreaper sweep leaves these alone.
fn running() -> &'static Mutex<HashSet<i32>> {
    static RUNNING: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    RUNNING.get_or_init(Mutex::default)
}

/// Marks a command's pid as one the host is running (until dropped).
pub(crate) struct Running(i32);

impl Running {
    pub(crate) fn new(pid: i32) -> Self {
        running().lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(pid);
        Self(pid)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        running().lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.0);
    }
}

fn become_subreaper() {
    // SAFETY: prctl with integer arguments; affects only this process.
    let done = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if done != 0 {
        tracing::error!(error = %io::Error::last_os_error(), "cannot become a child subreaper");
    }
}

/// Longest a sweep keeps killing: a fork bomb is bounded by the run's process limit, so this is
/// only a guard against spinning forever on a process that will not die.
const SWEEP_LIMIT: Duration = Duration::from_secs(5);

/// Subreaper mode: kill and reap every child of this process that came from a command run (it
/// is in another session than the server's: runs start their own) and is not a running
/// command, until none is left. Returns how many were killed.
pub(crate) fn sweep_orphans() -> u32 {
    let me = std::process::id();
    // SAFETY: getsid(0) asks for this process's own session.
    let my_session = unsafe { libc::getsid(0) };
    let started = Instant::now();
    let mut killed = 0;
    loop {
        let orphans: Vec<i32> = {
            let running = running().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            children_of(me)
                .into_iter()
                .filter(|(pid, session)| !running.contains(pid) && *session != my_session)
                .map(|(pid, _)| pid)
                .collect()
        };
        if orphans.is_empty() || started.elapsed() > SWEEP_LIMIT {
            return killed;
        }
        for pid in orphans {
            // SAFETY: `pid` is our own child and not yet reaped, so the number cannot have been
            // reused by another process; kill and waitpid on it are plain system calls.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut status = 0;
                while libc::waitpid(pid, &raw mut status, 0) < 0 && *libc::__errno_location() == libc::EINTR {}
            }
            killed += 1;
        }
    }
}

/// Children of process `parent` with their session ids, from `/proc/*/stat` (after the
/// command name: state, parent pid, process group, session).
fn children_of(parent: u32) -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may hold spaces and parentheses: fields follow the last ')'.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(1);
            let ppid: u32 = fields.next()?.parse().ok()?;
            let session: i32 = fields.nth(1)?.parse().ok()?;
            (ppid == parent).then_some((pid, session))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mechanism_is_probed_and_described() {
        let text = mechanism().describe();
        assert!(text.contains("PID namespace"), "{text}");
    }

    #[test]
    fn a_report_round_trips_through_its_pipe() {
        let (reader, writer) = rustix::pipe::pipe().expect("pipe");
        let mut buffer = Vec::new();
        buffer.extend_from_slice(&REPORT_MAGIC.to_le_bytes());
        buffer.extend_from_slice(&(3_i32 << 8).to_le_bytes());
        buffer.extend_from_slice(&2_u32.to_le_bytes());
        rustix::io::write(&writer, &buffer).expect("write");
        drop(writer);
        assert_eq!(read_report(reader), Some(Report { wait_status: 3 << 8, descendants_killed: 2 }));
        let (reader, writer) = rustix::pipe::pipe().expect("pipe");
        drop(writer);
        assert_eq!(read_report(reader), None, "no report when the init was killed");
    }
}
