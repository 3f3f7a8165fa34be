//! Per-call limits and their defaults. Each default is named once here and used by the
//! command line, the configuration file, the policy and every `Default`.

use std::ops::RangeInclusive;
use std::time::Duration;

/// Default wall-clock limit of one call, in milliseconds: below Letta's 60 s execute limit, so
/// the agent gets sanctum's error rather than its own timeout.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 30_000;
/// The call timeouts an operator may set (flag, variable, config file, policy), in milliseconds.
pub const CALL_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=3_600_000;
/// Default memory one call may use (all its memories and tables together), in MiB.
pub const DEFAULT_MEMORY_LIMIT_MIB: u64 = 64;
/// The memory limits an operator may set, in MiB.
pub const MEMORY_LIMIT_MIB_RANGE: RangeInclusive<u64> = 1..=4096;

/// Per-call limits. Every one guards the host or its clients against a hostile or buggy plugin.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory a call may grow to. A memory bomb fails allocation here instead of
    /// taking the host's memory.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call (the guest is interrupted at the next epoch tick after
    /// it). Below Letta's 60 s execute limit, so the agent gets our error, not its timeout.
    pub call_timeout: Duration,
    /// Budget of `describe()` at load: it must be cheap, and a plugin that loops in it must
    /// not stall start-up.
    pub describe_timeout: Duration,
    /// Bytes of guest stdout and of stderr kept per call; the rest is discarded.
    pub captured_output_bytes: usize,
    /// Total bytes of content one call may return (text, images, audio, resources and their
    /// URIs and media types); more is truncated.
    pub max_output_bytes: usize,
    /// Bytes of one log or progress message; longer ones are cut.
    pub max_message_bytes: usize,
    /// Log and progress reports one call may make; later ones are dropped and counted.
    pub max_events_per_call: u32,
    /// Total bytes of `describe()` strings (names, descriptions, schemas).
    pub max_describe_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: memory_bytes_of(DEFAULT_MEMORY_LIMIT_MIB),
            call_timeout: Duration::from_millis(DEFAULT_CALL_TIMEOUT_MS),
            describe_timeout: Duration::from_secs(5),
            captured_output_bytes: 64 << 10,
            max_output_bytes: 1 << 20,
            max_message_bytes: 4 << 10,
            max_events_per_call: 1_000,
            max_describe_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// The default limits with the operator's call timeout and memory limit.
    pub fn with(call_timeout_ms: u64, memory_limit_mib: u64) -> Self {
        Self {
            call_timeout: Duration::from_millis(call_timeout_ms),
            memory_bytes: memory_bytes_of(memory_limit_mib),
            ..Self::default()
        }
    }
}

/// A memory limit in MiB, as the bytes [`Limits::memory_bytes`] holds.
pub fn memory_bytes_of(mib: u64) -> usize {
    usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
}

/// What `serve` compiles in the background rather than where it loads a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackgroundCompiles {
    /// Components at least this large are compiled in the background.
    pub min_bytes: usize,
    /// At most this many compile at once.
    pub parallel: usize,
}
