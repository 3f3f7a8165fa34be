//! Who is calling: the principal an authenticated request carries, and what it may still spend.
//!
//! A leaf like `ids` and `audit`: the transport authenticates a request and attaches a
//! [`Principal`] to it (an HTTP request extension); the MCP layer reads it to attribute calls
//! and to charge the tool-call rate limit. It knows nothing of HTTP, MCP or tokens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The name every request carries when authentication is off (loopback without tokens).
pub const ANONYMOUS: &str = "anonymous";

/// An authenticated caller. Cheap to clone; requests of the same principal share one bucket.
#[derive(Debug, Clone)]
pub struct Principal {
    name: Arc<str>,
    /// The groups the operator put the principal in (its token's `groups`, or a JWT claim).
    groups: Arc<[Arc<str>]>,
    /// `None` when tool calls are not rate limited.
    calls: Option<Arc<Mutex<TokenBucket>>>,
}

impl Principal {
    pub fn new(name: Arc<str>, groups: Arc<[Arc<str>]>, calls: Option<Arc<Mutex<TokenBucket>>>) -> Self {
        Self { name, groups, calls }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn groups(&self) -> &Arc<[Arc<str>]> {
        &self.groups
    }

    /// Charge one tool call. `Err` carries how long until the next call would be allowed.
    pub fn take_call(&self) -> Result<(), Duration> {
        let Some(bucket) = &self.calls else { return Ok(()) };
        // A poisoned lock means a panic elsewhere mid-update; refusing would lock the principal
        // out for good, so the call goes through unmetered instead.
        let Ok(mut bucket) = bucket.lock() else { return Ok(()) };
        bucket.take(Instant::now())
    }
}

/// A token bucket: `burst` calls at once, refilled at `per_minute` calls a minute.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    /// Tokens added per second.
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket. `per_minute` and `burst` are at least 1.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let capacity = f64::from(burst.max(1));
        Self { capacity, rate: f64::from(per_minute.max(1)) / 60.0, tokens: capacity, updated: Instant::now() }
    }

    /// Take one token at `now`, or say how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(60, 3);
        for _ in 0..3 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).expect_err("the burst is spent");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900), "{wait:?}");
        assert!(bucket.take(start + Duration::from_secs(1)).is_ok(), "one token a second at 60/min");
        assert!(bucket.take(start + Duration::from_secs(1)).is_err());
        for _ in 0..3 {
            assert!(bucket.take(start + Duration::from_secs(100)).is_ok(), "refill stops at the burst");
        }
        assert!(bucket.take(start + Duration::from_secs(100)).is_err());
    }
}
