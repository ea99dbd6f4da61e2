//! A per-key token bucket: `per_minute` tokens refill continuously, bursts up to the
//! same number. Used to cap password checks that miss the credential cache per client
//! address (and, later, token requests per client). In-process only; the database
//! lockout covers several nodes.
//!
//! # Bounded memory, O(1) per call
//!
//! Buckets live in an LRU map of fixed capacity ([`hashlink::LruCache`], already in the
//! dependency tree through sqlx). A call hashes the key once, moves its bucket to the
//! back of the recency list, and, when a new key arrives at a full map, drops the least
//! recently used bucket first, so the map never holds more than `capacity` buckets and
//! no call ever scans it.
//!
//! Evicting is safe: an evicted key simply starts again with a full bucket, which is
//! also what it would have after sitting idle for a minute. The least recently used
//! bucket is the one most likely to have refilled already, so under normal load
//! eviction changes nothing; it only matters when more than `capacity` distinct clients
//! are active within one refill period, and an attacker that controls that many
//! addresses already has `capacity × per_minute` attempts a minute without it.
//!
//! One mutex guards the map: the critical section is a hash lookup and a few integer
//! operations (well under a microsecond), which is far from contention at the request
//! rates of `BENCHMARKS.md`, so sharding would add code without measurable gain.

use hashlink::LruCache;
use portcullis_domain::time::{Clock, Timestamp};
use std::hash::RandomState;
use std::sync::{Arc, Mutex};

/// Buckets kept by [`RateLimiter::new`]. Each costs roughly 100–150 bytes with a
/// client-address key, so the map stays below ~15 MB however many clients appear.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Levels are kept in "token-milliseconds ÷ minute" units so that refill is exact
/// integer arithmetic: one token is `UNITS_PER_TOKEN` units, and one millisecond adds
/// `per_minute` units (`per_minute` tokens per 60 000 ms).
const UNITS_PER_TOKEN: i64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Current level in units (see [`UNITS_PER_TOKEN`]), `0..=full`.
    level: i64,
    /// When `level` was last brought up to date (never moves backwards).
    at: Timestamp,
}

pub struct RateLimiter {
    per_minute: i64,
    /// A full bucket, in units: `per_minute` tokens.
    full: i64,
    capacity: usize,
    clock: Arc<dyn Clock>,
    /// Keys come from clients, so the hasher is std's randomly keyed SipHash rather
    /// than hashlink's faster default.
    buckets: Mutex<LruCache<String, Bucket, RandomState>>,
}

impl RateLimiter {
    /// `per_minute <= 0` disables limiting. Keeps at most [`DEFAULT_CAPACITY`] buckets.
    pub fn new(per_minute: i64, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(per_minute, DEFAULT_CAPACITY, clock)
    }

    /// Like [`new`](Self::new) with at most `capacity` buckets (at least one).
    pub fn with_capacity(per_minute: i64, capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let per_minute = per_minute.max(0);
        let capacity = capacity.max(1);
        Self {
            per_minute,
            full: per_minute.saturating_mul(UNITS_PER_TOKEN),
            capacity,
            clock,
            // Grows on demand up to `capacity`; nothing is reserved up front.
            buckets: Mutex::new(LruCache::with_hasher(capacity, RandomState::new())),
        }
    }

    /// Takes one token for `key`; `false` when the bucket is empty. A denied call does
    /// not consume anything, so a client that keeps retrying gets a token back as soon
    /// as one has refilled.
    pub fn try_acquire(&self, key: &str) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(key) {
            return self.take(bucket, now);
        }
        // A new key starts full. Make room first so that the map never holds more than
        // `capacity` entries, not even for the duration of the insert.
        if buckets.len() >= self.capacity {
            buckets.remove_lru();
        }
        let mut bucket = Bucket {
            level: self.full,
            at: now,
        };
        let allowed = self.take(&mut bucket, now);
        buckets.insert(key.to_owned(), bucket);
        allowed
    }

    /// Number of buckets currently held (at most the capacity). For tests and metrics.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no bucket is held (always, when limiting is disabled).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most buckets this limiter keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Refills `bucket` up to `now` and takes one token if there is one.
    fn take(&self, bucket: &mut Bucket, now: Timestamp) -> bool {
        // A clock that steps backwards refills nothing and does not rewind `at`, so the
        // same interval is never credited twice.
        let elapsed_ms = now.0.saturating_sub(bucket.at.0).max(0);
        bucket.level = bucket
            .level
            .saturating_add(elapsed_ms.saturating_mul(self.per_minute))
            .min(self.full);
        if now > bucket.at {
            bucket.at = now;
        }
        if bucket.level >= UNITS_PER_TOKEN {
            bucket.level -= UNITS_PER_TOKEN;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_domain::time::FixedClock;

    const START: Timestamp = Timestamp(1_000_000);

    /// One step of a scenario: move the clock by `advance_ms`, then expect `expect` from
    /// consecutive calls for `key`.
    struct Step {
        advance_ms: i64,
        key: &'static str,
        expect: &'static [bool],
    }

    const fn step(advance_ms: i64, key: &'static str, expect: &'static [bool]) -> Step {
        Step {
            advance_ms,
            key,
            expect,
        }
    }

    /// A clock that can move by milliseconds (FixedClock moves by seconds).
    struct MsClock(std::sync::atomic::AtomicI64);

    impl MsClock {
        fn at(ts: Timestamp) -> Self {
            Self(std::sync::atomic::AtomicI64::new(ts.0))
        }
        fn advance_ms(&self, ms: i64) {
            self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Clock for MsClock {
        fn now(&self) -> Timestamp {
            Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
        }
    }

    #[test]
    fn scenarios() {
        const T: bool = true;
        const F: bool = false;
        let cases: &[(&str, i64, &[Step])] = &[
            (
                "bursts up to per_minute, then refills one per 60/per_minute s",
                3,
                &[
                    step(0, "a", &[T, T, T, F, F]),
                    step(19_999, "a", &[F]),
                    step(1, "a", &[T, F]),
                    step(20_000, "a", &[T, F]),
                ],
            ),
            (
                "refill is capped at one burst however long the key was idle",
                3,
                &[
                    step(0, "a", &[T, T, T, F]),
                    step(3_600_000, "a", &[T, T, T, F]),
                ],
            ),
            (
                "denied calls consume nothing",
                2,
                &[
                    step(0, "a", &[T, T, F, F, F, F]),
                    step(30_000, "a", &[T, F]),
                ],
            ),
            (
                "fractional refill accumulates exactly (7/min: one per 8571.43 ms)",
                7,
                &[
                    step(0, "a", &[T, T, T, T, T, T, T, F]),
                    step(8_571, "a", &[F]),
                    step(1, "a", &[T, F]),
                    // the second token is due 2 × 60000/7 = 17142.86 ms after emptying
                    step(8_570, "a", &[F]),
                    step(1, "a", &[T, F]),
                ],
            ),
            (
                "keys are independent",
                2,
                &[
                    step(0, "a", &[T, T, F]),
                    step(0, "b", &[T, T, F]),
                    step(0, "a", &[F]),
                    step(30_000, "b", &[T, F]),
                    step(0, "a", &[T, F]),
                    step(0, "c", &[T, T, F]),
                ],
            ),
            (
                "keys are compared exactly, not by prefix or case",
                1,
                &[
                    step(0, "10.0.0.1", &[T, F]),
                    step(0, "10.0.0.10", &[T, F]),
                    step(0, "2001:db8::/64", &[T, F]),
                    step(0, "2001:DB8::/64", &[T, F]),
                    step(0, "", &[T, F]),
                ],
            ),
            (
                "a clock stepping backwards refills nothing and credits nothing twice",
                1,
                &[
                    step(0, "a", &[T, F]),
                    step(-30_000, "a", &[F]),
                    step(30_000, "a", &[F]),
                    step(60_000, "a", &[T, F]),
                ],
            ),
            (
                "zero disables",
                0,
                &[step(0, "a", &[T; 1000]), step(0, "b", &[T; 10])],
            ),
            ("negative disables", -5, &[step(0, "a", &[T; 100])]),
        ];
        for (name, per_minute, steps) in cases {
            let clock = Arc::new(MsClock::at(START));
            let limiter = RateLimiter::new(*per_minute, clock.clone());
            for (i, s) in steps.iter().enumerate() {
                clock.advance_ms(s.advance_ms);
                let got: Vec<bool> = s
                    .expect
                    .iter()
                    .map(|_| limiter.try_acquire(s.key))
                    .collect();
                assert_eq!(got, s.expect, "{name}: step {i} (key {:?})", s.key);
            }
            if *per_minute <= 0 {
                assert!(
                    limiter.is_empty(),
                    "{name}: a disabled limiter keeps no state"
                );
            }
        }
    }

    #[test]
    fn works_with_the_second_clock() {
        let clock = Arc::new(FixedClock::at(START));
        let l = RateLimiter::new(3, clock.clone());
        assert!((0..3).all(|_| l.try_acquire("a")));
        assert!(!l.try_acquire("a"));
        assert!(l.try_acquire("b"), "keys are independent");
        clock.advance_secs(20); // one token per 20 s at 3/min
        assert!(l.try_acquire("a"));
        assert!(!l.try_acquire("a"));
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        for capacity in [1, 2, 7, 100, 1000] {
            let clock = Arc::new(FixedClock::at(START));
            let l = RateLimiter::with_capacity(5, capacity, clock.clone());
            assert_eq!(l.capacity(), capacity);
            for i in 0..capacity * 10 {
                assert!(
                    l.try_acquire(&format!("flood-{i}")),
                    "a new key starts full"
                );
                assert!(
                    l.len() <= capacity,
                    "capacity {capacity}: {} after {i}",
                    l.len()
                );
            }
            assert_eq!(l.len(), capacity);
        }
        assert_eq!(
            RateLimiter::with_capacity(5, 0, Arc::new(FixedClock::default())).capacity(),
            1,
            "a zero capacity is raised to one"
        );
        assert_eq!(
            RateLimiter::new(5, Arc::new(FixedClock::default())).capacity(),
            DEFAULT_CAPACITY
        );
    }

    #[test]
    fn eviction_and_return() {
        struct Case {
            name: &'static str,
            /// Distinct other keys touched between the victim's two visits.
            flood: usize,
            /// Whether the victim's bucket is still there (and still empty) afterwards.
            survives: bool,
        }
        let capacity = 100;
        let cases = [
            Case {
                name: "a flood smaller than the capacity keeps the victim's empty bucket",
                flood: capacity - 1,
                survives: true,
            },
            Case {
                name: "a flood of the capacity evicts the victim",
                flood: capacity,
                survives: false,
            },
            Case {
                name: "a flood of 10x the capacity evicts the victim",
                flood: capacity * 10,
                survives: false,
            },
        ];
        for case in cases {
            let clock = Arc::new(FixedClock::at(START));
            let l = RateLimiter::with_capacity(2, capacity, clock.clone());
            assert!(l.try_acquire("victim") && l.try_acquire("victim"));
            assert!(!l.try_acquire("victim"), "{}: emptied", case.name);
            for i in 0..case.flood {
                l.try_acquire(&format!("flood-{i}"));
            }
            assert!(l.len() <= capacity);
            if case.survives {
                assert!(!l.try_acquire("victim"), "{}: still empty", case.name);
            } else {
                // It comes back as a new key: one full burst, then limited as usual.
                assert!(l.try_acquire("victim"), "{}: starts full", case.name);
                assert!(l.try_acquire("victim"), "{}: whole burst", case.name);
                assert!(!l.try_acquire("victim"), "{}: then limited", case.name);
                clock.advance_secs(30);
                assert!(l.try_acquire("victim"), "{}: and refills", case.name);
                assert!(!l.try_acquire("victim"), "{}: one token", case.name);
            }
            assert!(l.len() <= capacity);
        }
    }

    #[test]
    fn recently_used_keys_survive_a_flood_of_new_ones() {
        // The LRU order: a key that keeps being used is never the one evicted.
        let capacity = 10;
        let l = RateLimiter::with_capacity(1, capacity, Arc::new(FixedClock::at(START)));
        assert!(l.try_acquire("busy"));
        for i in 0..capacity * 10 {
            l.try_acquire(&format!("flood-{i}"));
            assert!(!l.try_acquire("busy"), "still limited after {i} new keys");
        }
        assert_eq!(l.len(), capacity);
    }

    #[test]
    fn is_shared_across_threads() {
        let l = Arc::new(RateLimiter::with_capacity(
            50,
            1000,
            Arc::new(FixedClock::at(START)),
        ));
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let l = l.clone();
                    s.spawn(move || (0..100).filter(|_| l.try_acquire("shared")).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            granted, 50,
            "exactly one burst however the calls interleave"
        );
    }
}
