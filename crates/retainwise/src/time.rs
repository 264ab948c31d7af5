//! Timestamps: stored as Unix epoch milliseconds (portable across SQLite and Postgres),
//! shown as RFC 3339 UTC strings.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix epoch milliseconds.
pub fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

/// A `SystemTime` in Unix epoch milliseconds (negative before 1970).
pub fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Epoch milliseconds as an RFC 3339 UTC string with millisecond precision, e.g.
/// `2026-11-30T02:00:00.000Z`. Times before 1970 are clamped to the epoch.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 timestamp (e.g. `2026-11-30T02:00:00Z`) into a `SystemTime`.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, humantime::TimestampError> {
    humantime::parse_rfc3339_weak(s.trim())
}

/// Serialises Unix milliseconds as [`rfc3339`] text (`#[serde(serialize_with = …)]`), so JSON
/// answers give times as the API's other fields do.
pub fn serialize_rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

/// [`serialize_rfc3339`] for an optional time (`null` when absent).
pub fn serialize_rfc3339_opt<S: serde::Serializer>(
    ms: &Option<i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_str(&rfc3339(*ms)),
        None => s.serialize_none(),
    }
}

/// What time it is, for work that decides by the date (retention): the system's clock in
/// production, a settable one in tests, so a test of "30 days later" moves the clock instead
/// of sleeping.
pub trait Clock: Send + Sync {
    /// Now, in Unix epoch milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system's clock ([`now_ms`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that says what it was set to, for tests.
#[derive(Debug, Default)]
pub struct FixedClock(std::sync::atomic::AtomicI64);

impl FixedClock {
    /// A clock standing at `ms` (Unix epoch milliseconds).
    pub fn at(ms: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(ms))
    }

    /// Moves it to `ms`.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC calendar day of `ms` as `YYYY-MM-DD`.
pub fn utc_day(ms: i64) -> String {
    rfc3339(ms)[..10].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ms = 1_796_004_000_123;
        let s = rfc3339(ms);
        assert_eq!(to_ms(parse_rfc3339(&s).unwrap()), ms);
    }
}
