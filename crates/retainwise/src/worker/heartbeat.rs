//! Keeps a job's lease alive while it runs, and tells the job when it has lost it.
//!
//! The lease is extended once a third of the visibility timeout has passed since the current
//! lease began, counted from the moment the delivery was received (the lease's clock starts at
//! the receive, not when the heartbeat starts) and, after each extension, from the moment the
//! extension was *asked for* (the queue's clock restarts no earlier). The beat looks every
//! twelfth of the timeout, so the lease is renewed with at least half of it left even when a
//! beat or the database answers late; a failed extension is retried at the next look. The
//! original service did not extend, so a long file outlived its visibility timeout and ran twice.
//!
//! The lease is lost when the queue refuses an extension, when the job's record no longer
//! carries this attempt's lease token (another worker started it), or when the whole timeout
//! passed without a successful extension (another worker may hold it by now); it is cancelled
//! when the record says so. The job sees its stop flag and stops at its next batch; the
//! progress counter is published to the record every second.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use retainwise_queue::{QueueError, Receipt};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::app::App;
use crate::db::{Holding, JobRow};
use crate::error_chain::Chain;

/// How often the record is looked at (progress published, a cancel or takeover noticed).
const LOOK_EVERY: Duration = Duration::from_secs(1);

const HELD: u8 = 0;
const LOST: u8 = 1;
const CANCELLED: u8 = 2;

/// A running heartbeat; stop it with [`Heartbeat::stop`] (dropping it stops it too).
pub struct Heartbeat {
    task: JoinHandle<()>,
    state: Arc<AtomicU8>,
}

impl Heartbeat {
    /// Starts beating for `receipt`, received at `received_at`, on `record`: `progress` is
    /// published when it changes, and `stop` is set once the attempt must stop (lease lost, job
    /// taken over or cancelled). `job` names the job in logs.
    pub fn start(
        app: &App,
        record: JobRow,
        job: String,
        receipt: Receipt,
        received_at: Instant,
        progress: Arc<AtomicU64>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let state = Arc::new(AtomicU8::new(HELD));
        let timeout = app.config.visibility_timeout;
        let mut clock = LeaseClock::new(timeout, received_at);
        let (app, shared) = (app.clone(), state.clone());
        let end = move |how: u8| {
            shared.store(how, Ordering::SeqCst);
            stop.store(true, Ordering::SeqCst);
        };
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(LOOK_EVERY.min(clock.look_every()));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut published = 0;
            loop {
                tick.tick().await;
                let now = Instant::now();
                if clock.due(now) {
                    match app.queue.extend(&receipt, timeout).await {
                        Ok(()) => clock.extended(now),
                        Err(QueueError::LeaseLost { .. }) => {
                            warn!(job = %job, "lease lost: another worker may take this job over");
                            return end(LOST);
                        }
                        // A blip: the next look retries, well before the lease runs out.
                        Err(e) => {
                            warn!(job = %job, error = %Chain(&e), "heartbeat failed")
                        }
                    }
                }
                if clock.expired(Instant::now()) {
                    warn!(job = %job, "lease ran out before it could be extended: stopping this attempt");
                    return end(LOST);
                }
                let seen = progress.load(Ordering::Relaxed);
                let publish = (seen != published).then_some(seen);
                let looked = match app.db.pool().acquire().await {
                    Ok(mut conn) => record.beat(&mut conn, receipt.as_str(), publish).await,
                    Err(e) => Err(e),
                };
                match looked {
                    Ok(Holding::Held) => published = seen,
                    Ok(Holding::Cancelled) => {
                        warn!(job = %job, "cancelled by its owner: stopping this attempt");
                        return end(CANCELLED);
                    }
                    // The row carries another attempt's lease: someone else runs it now.
                    Ok(Holding::Lost) => {
                        warn!(job = %job, "lease lost: the job was started by another attempt");
                        return end(LOST);
                    }
                    Err(e) => warn!(job = %job, error = %Chain(&e), "progress update failed"),
                }
            }
        });
        Self { task, state }
    }

    /// Stops beating; says whether the attempt still held the job when it stopped.
    pub fn stop(self) -> Holding {
        self.task.abort();
        match self.state.load(Ordering::SeqCst) {
            HELD => Holding::Held,
            CANCELLED => Holding::Cancelled,
            _ => Holding::Lost,
        }
    }
}

impl Drop for Heartbeat {
    // A driver that unwinds (a crash at a failure point) must not leave the lease extended.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// When a lease needs extending: pure arithmetic over the visibility timeout, kept apart from
/// the task so its margins can be checked in a unit test.
#[derive(Debug, Clone, Copy)]
struct LeaseClock {
    timeout: Duration,
    /// No later than when the queue started the current lease's clock.
    since: Instant,
}

impl LeaseClock {
    fn new(timeout: Duration, received_at: Instant) -> Self {
        Self {
            timeout,
            since: received_at,
        }
    }

    /// How often the heartbeat looks: a twelfth of the timeout (at least 10 ms).
    fn look_every(&self) -> Duration {
        (self.timeout / 12).max(Duration::from_millis(10))
    }

    /// A third of the timeout has passed since the lease began.
    fn due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= self.timeout / 3
    }

    /// An extension asked for at `asked` succeeded.
    fn extended(&mut self, asked: Instant) {
        self.since = asked;
    }

    /// The whole timeout passed since the lease began: it may be someone else's now.
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_at_a_third_counted_from_the_receive_and_from_each_request() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(30);
        let mut clock = LeaseClock::new(timeout, t0);
        // A job whose heartbeat starts 12 s after the receive (a slow start under load) is
        // already due: the lease has been running since the receive.
        assert!(!clock.due(t0 + Duration::from_secs(9)));
        assert!(clock.due(t0 + Duration::from_secs(12)));
        // An extension asked at 12 s that took 5 s to answer restarts the clock at 12 s.
        clock.extended(t0 + Duration::from_secs(12));
        assert!(clock.due(t0 + Duration::from_secs(22)));
        assert!(!clock.expired(t0 + Duration::from_secs(41)));
        assert!(clock.expired(t0 + Duration::from_secs(42)));
        // Looking every twelfth, a due extension is asked with more than half the lease left.
        assert!(clock.look_every() + timeout / 3 <= timeout / 2);
    }
}
