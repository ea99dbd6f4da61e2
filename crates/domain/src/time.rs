//! Time as a parameter: code that needs "now" receives a [`Clock`].

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Stored as BIGINT on every database so that
/// ordering and range queries behave identically on SQLite and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_secs(secs: i64) -> Self {
        Self(secs * 1000)
    }
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0 + secs * 1000)
    }
}

/// The source of "now". Production uses the system clock; tests use [`FixedClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// A clock that only moves when told to. For tests.
#[derive(Debug, Default)]
pub struct FixedClock(std::sync::atomic::AtomicI64);

impl FixedClock {
    pub fn at(ts: Timestamp) -> Self {
        Self(std::sync::atomic::AtomicI64::new(ts.0))
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0
            .fetch_add(secs * 1000, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}
