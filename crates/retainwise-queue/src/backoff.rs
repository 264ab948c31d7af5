//! Retry delays.

use rand::Rng;
use std::time::Duration;

/// Exponential backoff with full jitter: a uniformly random delay in
/// `[0, min(max, base * 2^(attempt-1))]`.
///
/// `attempt` counts from 1 (the first retry); 0 is treated as 1. Overflow saturates at `max`.
/// Full jitter spreads the retries of many workers that failed together (e.g. the database was
/// down) instead of having them retry in lock-step.
/// Source: AWS Architecture Blog, "Exponential Backoff And Jitter" (Marc Brooker, 2015).
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let cap = backoff_cap(attempt, base, max);
    // Duration::MAX does not fit a u64 of nanoseconds; 584 years of delay is enough.
    let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::thread_rng().gen_range(0..=cap_nanos))
}

/// The upper bound of [`backoff`]: `min(max, base * 2^(attempt-1))`, saturating.
fn backoff_cap(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.max(1) - 1;
    2u32.checked_pow(exponent)
        .and_then(|factor| base.checked_mul(factor))
        .map_or(max, |delay| delay.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_doubles_then_saturates() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        assert_eq!(backoff_cap(0, base, max), base);
        assert_eq!(backoff_cap(1, base, max), base);
        assert_eq!(backoff_cap(2, base, max), base * 2);
        assert_eq!(backoff_cap(7, base, max), base * 64);
        assert_eq!(backoff_cap(8, base, max), max);
        assert_eq!(backoff_cap(40, base, max), max);
        assert_eq!(backoff_cap(u32::MAX, Duration::MAX, max), max);
    }
}
