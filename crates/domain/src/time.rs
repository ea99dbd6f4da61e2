//! Time as a parameter: code that needs "now" receives a [`Clock`].

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Stored as BIGINT on every database so that
/// ordering and range queries behave identically on SQLite and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Saturates at the ends of the range; use [`Timestamp::checked_from_secs`] for
    /// values that come from users.
    pub fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }
    /// `None` when `secs` does not fit in milliseconds.
    pub fn checked_from_secs(secs: i64) -> Option<Self> {
        secs.checked_mul(1000).map(Self)
    }
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    /// Saturating, so a huge configured duration means "forever", never a wrap.
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_never_overflow() {
        assert_eq!(Timestamp::from_secs(2), Timestamp(2000));
        assert_eq!(Timestamp::from_secs(i64::MAX), Timestamp(i64::MAX));
        assert_eq!(Timestamp::checked_from_secs(i64::MAX / 999), None);
        assert_eq!(Timestamp::checked_from_secs(-3), Some(Timestamp(-3000)));
        assert_eq!(Timestamp(5).plus_secs(i64::MAX), Timestamp(i64::MAX));
        assert_eq!(Timestamp(-5).as_secs(), -1);
    }
}
