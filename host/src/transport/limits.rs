//! Per-principal limits of the front door: the tool-call rate limiter (one token bucket per
//! principal), and the settings bounding sessions, bodies and slow clients.
//!
//! Holds only counters and settings; the MCP layer charges the bucket a request carries (see
//! `crate::principal`), and it is the MCP layer that answers an over-limit call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::principal::TokenBucket;

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
        Self {
            max_body_bytes: 4 << 20,
            max_sessions: 1024,
            max_sessions_per_principal: 256,
            session_idle: Duration::from_secs(300),
            calls_per_minute: Some(600),
            call_burst: 60,
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
