//! How a kind of job retries a transient failure: [`RetryPolicy`], chosen per kind by
//! [`Job::retry`](super::Job::retry) and applied by the one driver.

use std::time::Duration;

use rand::Rng;

/// The webhook deliveries' schedule: the delays between attempts Svix publishes for its own
/// deliveries (the Standard Webhooks scheme's reference sender): "Immediately, 5 seconds,
/// 5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours, 10 hours", so 8 attempts over 27 h 35 min.
/// Source: Svix documentation, "Retry schedule" (docs.svix.com/retries). The text form of
/// `RETAINWISE_WEBHOOK_RETRY_SCHEDULE`'s default.
pub const WEBHOOK_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";

/// A scheduled delay is drawn uniformly from `[1 − JITTER, 1 + JITTER] ×` itself, so endpoints
/// that failed together (a receiver's outage) are not all retried in the same second; ±20 %
/// keeps a 10-hour step within SQS's 12-hour visibility limit were it ever a nack.
pub const JITTER: f64 = 0.2;

/// How a kind retries a transient failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryPolicy {
    /// The queue's own: nack with exponential backoff and full jitter (`WorkerOptions`'
    /// `retry_base`, doubling per receive, at most `retry_max`), dead-lettered on the
    /// `max_receives`-th receive (`RETAINWISE_MAX_RECEIVES`). Predictions and trainings.
    Queue,
    /// A schedule of its own: after failed attempt `n` (counted by the record's `attempt`,
    /// from 1) the job runs again after `delays[n − 1]` (± [`JITTER`]), as a fresh round of
    /// the queue's receives (`Queue::reschedule`, so `max_receives` counts only crashes within
    /// one attempt); a failure of attempt `delays.len() + 1` dead-letters it. A redriven job
    /// continues its count: each redrive is one more attempt.
    Schedule(Vec<Duration>),
}

/// What to do with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Nack with this delay; the queue counts the receive.
    Nack(Duration),
    /// Reschedule after this delay, with a fresh round of receives.
    Reschedule(Duration),
    /// Give up: dead-letter.
    DeadLetter,
}

impl RetryPolicy {
    /// What follows failed attempt `attempt` (the record's count, `None` when the attempt never
    /// started: then the queue's rule) on its `receive_count`-th receive.
    pub(super) fn next(
        &self,
        attempt: Option<i64>,
        receive_count: u32,
        max_receives: u32,
        backoff: impl FnOnce() -> Duration,
    ) -> Next {
        match (self, attempt) {
            (Self::Schedule(delays), Some(attempt)) => {
                match usize::try_from(attempt.max(1) - 1)
                    .ok()
                    .and_then(|i| delays.get(i))
                {
                    Some(delay) => Next::Reschedule(jittered(*delay)),
                    None => Next::DeadLetter,
                }
            }
            _ if receive_count >= max_receives => Next::DeadLetter,
            _ => Next::Nack(backoff()),
        }
    }
}

/// `delay` times a uniform factor in `[1 − JITTER, 1 + JITTER]`.
pub(super) fn jittered(delay: Duration) -> Duration {
    delay.mul_f64(rand::thread_rng().gen_range((1.0 - JITTER)..=(1.0 + JITTER)))
}

/// Parses a schedule: delays separated by commas, each a number and a unit (`500ms`, `5s`,
/// `5m`, `2h`, humantime's forms); an empty text is no retry at all.
///
/// Errors: the delay that does not parse, quoted, with what is expected.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            humantime::parse_duration(d).map_err(|e| {
                format!(
                    "retry delay {d:?} does not parse ({e}): expected a number and a unit, \
                     e.g. 5s, 5m, 2h"
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_webhook_schedule_is_eight_attempts_over_about_a_day() {
        let delays = parse_schedule(WEBHOOK_SCHEDULE).unwrap();
        assert_eq!(delays.len() + 1, 8);
        let total: Duration = delays.iter().sum();
        assert_eq!(total, Duration::from_secs(27 * 3600 + 35 * 60 + 5));
        // Jitter keeps the longest step under SQS's 12-hour visibility limit.
        let longest = delays.iter().max().unwrap().mul_f64(1.0 + JITTER);
        assert!(longest <= Duration::from_secs(43_200), "{longest:?}");
        assert!(parse_schedule("5s, 5 minutes").is_ok());
        assert_eq!(parse_schedule(" ").unwrap(), Vec::<Duration>::new());
        let e = parse_schedule("5s,soon").unwrap_err();
        assert!(e.contains("\"soon\""), "{e}");
    }

    #[test]
    fn a_schedule_counts_attempts_and_the_queue_counts_receives() {
        let policy = RetryPolicy::Schedule(vec![Duration::from_secs(10), Duration::from_secs(100)]);
        let fixed = || Duration::from_secs(1);
        let Next::Reschedule(d) = policy.next(Some(1), 3, 3, fixed) else {
            panic!("attempt 1 of 3 is retried whatever the receive count");
        };
        assert!((8..=12).contains(&d.as_secs()), "{d:?}");
        let Next::Reschedule(d) = policy.next(Some(2), 1, 3, fixed) else {
            panic!("attempt 2 of 3 is retried");
        };
        assert!((80..=120).contains(&d.as_secs()), "{d:?}");
        assert_eq!(policy.next(Some(3), 1, 3, fixed), Next::DeadLetter);
        assert_eq!(policy.next(Some(9), 1, 3, fixed), Next::DeadLetter);
        // An attempt that never started falls back to the queue's rule.
        assert_eq!(policy.next(None, 1, 3, fixed), Next::Nack(fixed()));
        assert_eq!(policy.next(None, 3, 3, fixed), Next::DeadLetter);
        assert_eq!(
            RetryPolicy::Queue.next(Some(7), 2, 3, fixed),
            Next::Nack(fixed())
        );
        assert_eq!(
            RetryPolicy::Queue.next(Some(1), 3, 3, fixed),
            Next::DeadLetter
        );
    }
}
