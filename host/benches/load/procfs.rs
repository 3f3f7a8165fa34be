//! What a process costs, read from `/proc` (Linux only): CPU time of all its threads, resident
//! memory now and at its peak, the CPU time of reaped children (for the native CLIs), and how
//! many file descriptors a process holds (for the jobs section; its descendants are counted by
//! the tests' `process_tree`).
//!
//! CPU comes from each thread's `schedstat` (nanoseconds on a CPU) rather than `stat`'s clock
//! ticks: a 2 s cell of sub-millisecond calls needs better than 10 ms resolution. A thread that
//! exits mid-cell takes its time with it, so [`CpuSample::since`] falls back to the process's
//! tick counters (which keep dead threads' time) when one did.

use std::collections::HashMap;
use std::time::Duration;

/// Linux reports `stat` times in `USER_HZ` ticks, which is 100 on every architecture it runs on.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time of a process at one moment.
#[derive(Debug, Clone)]
pub(crate) struct CpuSample {
    /// Thread id → nanoseconds on a CPU.
    threads: HashMap<u32, u64>,
    /// utime + stime of the whole process, dead threads included, in ticks.
    ticks: u64,
}

/// CPU spent between two samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuDelta {
    pub(crate) cpu: Duration,
    /// The nanosecond sum was unusable (a thread exited) and ticks were used.
    pub(crate) coarse: bool,
}

impl CpuSample {
    pub(crate) fn take(pid: u32) -> Result<Self, String> {
        let mut threads = HashMap::new();
        let tasks = format!("/proc/{pid}/task");
        for entry in std::fs::read_dir(&tasks).map_err(|e| format!("{tasks}: {e}"))? {
            let Ok(entry) = entry else { continue };
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            // A thread may exit between listing and reading; it is then simply absent.
            if let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat"))
                && let Some(ns) = text.split_whitespace().next().and_then(|f| f.parse::<u64>().ok())
            {
                threads.insert(tid, ns);
            }
        }
        let stat = stat_fields(pid)?;
        Ok(Self { threads, ticks: stat.utime + stat.stime })
    }

    /// CPU used since `earlier`.
    pub(crate) fn since(&self, earlier: &Self) -> CpuDelta {
        let lost_a_thread = earlier.threads.keys().any(|tid| !self.threads.contains_key(tid));
        if lost_a_thread {
            let ticks = self.ticks.saturating_sub(earlier.ticks);
            return CpuDelta { cpu: Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND), coarse: true };
        }
        // A thread born in between spent all its time in between.
        let ns: u64 = self
            .threads
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        CpuDelta { cpu: Duration::from_nanos(ns), coarse: false }
    }
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the peak of `VmRSS` (since start, or since [`reset_peak`]).
    pub(crate) peak_kib: u64,
    /// `RssAnon`: the private part of `VmRSS` (heap, stacks, copied code), which only the
    /// process's exit gives back.
    pub(crate) anon_kib: u64,
    /// `RssFile`: mapped file pages present (the binary, mapped compile-cache artefacts): clean
    /// page cache the kernel shares and can reclaim; how much of it is mapped depends on what
    /// the page cache held (fault-around), so it moves between runs.
    pub(crate) file_kib: u64,
}

impl Memory {
    pub(crate) fn of(pid: u32) -> Result<Self, String> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Self {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
            anon_kib: field("RssAnon:"),
            file_kib: field("RssFile:"),
        })
    }
}

/// Reset a process's `VmHWM` to its current RSS (Linux ≥ 4.0), so a cell's peak is its own.
/// Returns false where that is not allowed; the peak then counts from the process's start.
pub(crate) fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// CPU time of this process's reaped children (`cutime + cstime`): what the spawned native
/// CLIs cost. Tick resolution, which is enough for processes that each take milliseconds.
pub(crate) fn children_cpu() -> Result<Duration, String> {
    let stat = stat_fields(std::process::id())?;
    Ok(Duration::from_millis((stat.cutime + stat.cstime) * 1000 / TICKS_PER_SECOND))
}

/// How many file descriptors a process has open.
pub(crate) fn open_fds(pid: u32) -> Result<usize, String> {
    let path = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&path).map_err(|e| format!("{path}: {e}"))?.count())
}

struct StatFields {
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

fn stat_fields(pid: u32) -> Result<StatFields, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) is parenthesised and may contain spaces: count after its end.
    let rest = text.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // `rest` starts at field 3 (state); utime is field 14.
    let at = |field: usize| fields.get(field - 3).copied().unwrap_or(0);
    Ok(StatFields { utime: at(14), stime: at(15), cutime: at(16), cstime: at(17) })
}
