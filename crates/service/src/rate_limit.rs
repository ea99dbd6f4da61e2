//! A per-key token bucket: `per_minute` tokens refill continuously, bursts up to the
//! same number. Used to cap password checks that miss the credential cache per client
//! address. In-process only; the database lockout covers several nodes.

use portcullis_domain::time::{Clock, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct RateLimiter {
    per_minute: f64,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, (f64, Timestamp)>>,
}

/// Buckets kept before idle ones are swept.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// `per_minute == 0` disables limiting.
    pub fn new(per_minute: i64, clock: Arc<dyn Clock>) -> Self {
        Self {
            per_minute: per_minute.max(0) as f64,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `false` when the bucket is empty.
    pub fn try_acquire(&self, key: &str) -> bool {
        if self.per_minute == 0.0 {
            return true;
        }
        let now = self.clock.now();
        let rate_per_ms = self.per_minute / 60_000.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            let full_after_ms = (60_000.0) as i64;
            buckets.retain(|_, (_, at)| now.0 - at.0 < full_after_ms);
        }
        let (tokens, at) = buckets
            .entry(key.to_owned())
            .or_insert((self.per_minute, now));
        let refilled = (*tokens + (now.0 - at.0).max(0) as f64 * rate_per_ms).min(self.per_minute);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            true
        } else {
            *tokens = refilled;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_domain::time::FixedClock;

    #[test]
    fn bursts_then_refills() {
        let clock = Arc::new(FixedClock::at(Timestamp(1_000_000)));
        let l = RateLimiter::new(3, clock.clone());
        assert!(l.try_acquire("a"));
        assert!(l.try_acquire("a"));
        assert!(l.try_acquire("a"));
        assert!(!l.try_acquire("a"));
        assert!(l.try_acquire("b"), "keys are independent");
        clock.advance_secs(20); // one token per 20 s at 3/min
        assert!(l.try_acquire("a"));
        assert!(!l.try_acquire("a"));
    }

    #[test]
    fn zero_disables() {
        let l = RateLimiter::new(0, Arc::new(FixedClock::default()));
        assert!((0..1000).all(|_| l.try_acquire("x")));
    }
}
