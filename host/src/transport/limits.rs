//! Per-principal limits of the front door: the tool-call rate limiter (one token bucket per
//! principal), and the settings bounding sessions, bodies and slow clients.
//!
//! Holds only counters and settings; the MCP layer charges the bucket a request carries (see
//! `crate::principal`), and it is the MCP layer that answers an over-limit call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::principal::TokenBucket;

/// Default largest request body, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 4 << 20;
/// Default cap on open sessions (legacy SSE and `/mcp` together).
pub const DEFAULT_MAX_SESSIONS: u32 = 1024;
/// Default cap on the open sessions of one principal.
pub const DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: u32 = 256;
/// Default idle time after which a session is closed, in seconds.
pub const DEFAULT_SESSION_IDLE_SECS: u64 = 300;
/// Default tool calls per minute and principal (0 would mean unlimited).
pub const DEFAULT_CALLS_PER_MINUTE: u32 = 600;
/// Default tool calls a principal may make at once before the rate applies.
pub const DEFAULT_CALL_BURST: u32 = 60;

/// Everything the front door bounds, with the defaults `sanctum serve` uses.
#[derive(Debug, Clone)]
pub struct FrontDoorLimits {
    /// Largest request body on any route; larger ones get 413.
    pub max_body_bytes: usize,
    /// Open sessions (legacy SSE and `/mcp` together) at most.
    pub max_sessions: usize,
    /// Open sessions one principal may hold, so one client cannot use up `max_sessions`.
    pub max_sessions_per_principal: usize,
    /// A session without a request for this long is closed.
    pub session_idle: Duration,
    /// Tool calls per minute and principal (`None`: unlimited), refilling a bucket of `call_burst`.
    pub calls_per_minute: Option<u32>,
    pub call_burst: u32,
}

impl Default for FrontDoorLimits {
    fn default() -> Self {
        Self::new(
            DEFAULT_MAX_BODY_BYTES,
            DEFAULT_MAX_SESSIONS,
            DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
            DEFAULT_SESSION_IDLE_SECS,
            DEFAULT_CALLS_PER_MINUTE,
            DEFAULT_CALL_BURST,
        )
    }
}

impl FrontDoorLimits {
    /// The limits as an operator writes them (`calls_per_minute` 0: unlimited).
    pub fn new(
        max_body_bytes: u64,
        max_sessions: u32,
        max_sessions_per_principal: u32,
        session_idle_secs: u64,
        calls_per_minute: u32,
        call_burst: u32,
    ) -> Self {
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            max_body_bytes: to_usize(max_body_bytes),
            max_sessions: to_usize(max_sessions.into()),
            max_sessions_per_principal: to_usize(max_sessions_per_principal.into()),
            session_idle: Duration::from_secs(session_idle_secs),
            calls_per_minute: (calls_per_minute > 0).then_some(calls_per_minute),
            call_burst,
        }
    }
}

type SharedBucket = Arc<Mutex<TokenBucket>>;

/// One token bucket per principal, created on first use.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallLimiter {
    rate: Option<(u32, u32)>,
    buckets: Arc<Mutex<HashMap<Arc<str>, SharedBucket>>>,
}

impl CallLimiter {
    pub(crate) fn new(calls_per_minute: Option<u32>, burst: u32) -> Self {
        Self { rate: calls_per_minute.map(|rate| (rate, burst)), buckets: Arc::default() }
    }

    /// The principal's bucket, or `None` when calls are not limited. Principals are the
    /// configured token names (or `anonymous`), so the map stays as small as the tokens file.
    pub(crate) fn bucket_for(&self, principal: &Arc<str>) -> Option<Arc<Mutex<TokenBucket>>> {
        let (rate, burst) = self.rate?;
        let mut buckets = self.buckets.lock().ok()?;
        let bucket =
            buckets.entry(Arc::clone(principal)).or_insert_with(|| Arc::new(Mutex::new(TokenBucket::new(rate, burst))));
        Some(Arc::clone(bucket))
    }
}
