//! The worker: receive a message under a lease, keep the lease alive, run the job, record the
//! outcome, and only then delete the message. Every kind of job (`kinds.rs`) goes through the
//! one life cycle in `driver.rs`.
//!
//! Invariants:
//! - the message is acked only after the job's final state is written, so a crash at any point
//!   leaves a message that will be delivered again;
//! - every write to a running job is fenced by the lease token (the queue receipt), so a worker
//!   that lost its lease cannot complete or fail a job someone else holds;
//! - an already COMPLETED, FAILED or CANCELLED job is acked and skipped (duplicate deliveries do
//!   nothing);
//! - permanent errors (the input itself is at fault) fail the job at once; transient ones (a
//!   panic included) retry with backoff until `max_receives`, then dead-letter.

pub mod deletion;
mod driver;
mod error;
mod failure_points;
mod heartbeat;
mod kind;
mod kinds;
mod merge;
mod pieces;
mod prediction;
mod public_text;
mod retention;
mod retry;
mod sweeper;
mod training;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::app::App;
use crate::error_chain::Chain;
pub(crate) use driver::panic_message;
pub use error::JobError;
pub use failure_points::{FailurePoint, FailurePoints};
pub use kind::{Checks, Events, Job, JobContext, LogId};
pub use kinds::{enqueue, Kind, KINDS};
pub use retention::{RetentionMessage, RetentionRun};
pub use retry::{parse_schedule, RetryPolicy, JITTER, WEBHOOK_SCHEDULE};
pub use sweeper::sweep;
pub use webhook::{WebhookDelivery, WebhookMessage};

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, recorded COMPLETED, message deleted.
    Completed,
    /// A permanent error: recorded FAILED, message deleted.
    Failed,
    /// A transient error: job back to QUEUED, message visible again after a backoff.
    Retried,
    /// Invalid message, or retries exhausted: moved to the dead-letter store.
    DeadLettered,
    /// The job was already finished (a duplicate delivery): message deleted, nothing done.
    Skipped,
    /// The owner cancelled the job: it was not started, or stopped and recorded nothing;
    /// message deleted.
    Cancelled,
    /// Another worker holds the job now; this one wrote nothing and left the message alone.
    LeaseLost,
    /// A long job with no free slot in this worker: handed back for a moment, its receive
    /// uncounted, nothing written.
    Deferred,
}

/// How a worker runs. The defaults suit production; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at once (each on its own receive loop).
    pub concurrency: usize,
    /// Long-poll wait of one receive call.
    pub receive_wait: Duration,
    /// First retry delay after a transient error; doubles per receive, with full jitter.
    pub retry_base: Duration,
    /// Largest retry delay.
    pub retry_max: Duration,
    /// How often dead-lettered messages are checked for jobs still marked as running.
    pub sweep_interval: Duration,
    /// Where tests make the worker crash; none by default.
    pub failure_points: FailurePoints,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 2,
            receive_wait: Duration::from_secs(10),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            sweep_interval: Duration::from_secs(30),
            failure_points: FailurePoints::default(),
        }
    }
}

/// Counts of what a worker did, for its shutdown summary.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Jobs completed.
    pub completed: AtomicU64,
    /// Jobs failed (permanent errors and dead-letters).
    pub failed: AtomicU64,
    /// Transient errors handed back for a retry.
    pub retried: AtomicU64,
    /// Duplicate deliveries skipped.
    pub skipped: AtomicU64,
}

/// A worker bound to an [`App`]. Cheap to clone.
#[derive(Clone)]
pub struct Worker {
    app: App,
    options: WorkerOptions,
    stats: Arc<WorkerStats>,
    /// Trainings this worker runs at once: one less than its loops (at least one), so a
    /// training — minutes long — never holds every loop while scoring jobs wait behind it.
    training_slots: Arc<tokio::sync::Semaphore>,
}

/// How long a training that found no free slot stays invisible before it is offered again
/// (to this worker or another), its receive uncounted; scoring jobs behind it go first.
pub const TRAINING_DEFERRAL: Duration = Duration::from_secs(2);

impl Worker {
    /// A worker over `app`'s database, storage, queue and model.
    pub fn new(app: App, options: WorkerOptions) -> Self {
        let trainings = options.concurrency.saturating_sub(1).max(1);
        Self {
            app,
            options,
            stats: Arc::default(),
            training_slots: Arc::new(tokio::sync::Semaphore::new(trainings)),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Receives at most one message (waiting up to `wait`) and processes it to the end.
    /// `None` when nothing arrived. Tests drive the queue step by step with it.
    ///
    /// Errors: the queue could not be reached (the message, if any, stays in the queue).
    pub async fn run_once(
        &self,
        wait: Duration,
    ) -> Result<Option<Outcome>, retainwise_queue::QueueError> {
        let mut deliveries = self.app.queue.receive(1, wait).await?;
        match deliveries.pop() {
            Some(delivery) => Ok(Some(self.process(delivery).await)),
            None => Ok(None),
        }
    }

    async fn process(&self, delivery: retainwise_queue::Delivery) -> Outcome {
        // The lease's clock has been running since the receive, which returned just now.
        let received_at = tokio::time::Instant::now();
        let delivery = crate::original_message::normalized(delivery);
        let Some(kind) = kinds::of(&delivery.body) else {
            metrics::counter!("retainwise_jobs_received_total").increment(1);
            let outcome = driver::reject_unknown(&self.app, &delivery).await;
            self.count(outcome);
            return outcome;
        };
        // A long job waits for a slot outside the worker: handed back for a moment, uncounted,
        // so this loop is free for the short jobs behind it.
        let _slot = if kind.long {
            match self.training_slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => return self.defer(delivery).await,
            }
        } else {
            None
        };
        metrics::counter!("retainwise_jobs_received_total").increment(1);
        let started = Instant::now();
        let outcome = (kind.process)(&self.app, &self.options, delivery, received_at).await;
        metrics::histogram!("retainwise_job_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        self.count(outcome);
        outcome
    }

    fn count(&self, outcome: Outcome) {
        let (metric, counter) = match outcome {
            Outcome::Completed => ("retainwise_jobs_completed_total", &self.stats.completed),
            Outcome::Failed => ("retainwise_jobs_failed_total", &self.stats.failed),
            Outcome::DeadLettered => ("retainwise_jobs_dead_lettered_total", &self.stats.failed),
            Outcome::Retried => ("retainwise_jobs_retried_total", &self.stats.retried),
            Outcome::Skipped | Outcome::LeaseLost | Outcome::Deferred => {
                ("retainwise_jobs_skipped_total", &self.stats.skipped)
            }
            Outcome::Cancelled => ("retainwise_jobs_cancelled_total", &self.stats.skipped),
        };
        metrics::counter!(metric).increment(1);
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `concurrency` receive loops and the dead-letter sweeper until `shutdown` fires, then
    /// stops receiving, lets the jobs in hand finish, and logs and returns the summary.
    pub async fn run(&self, shutdown: CancellationToken) -> WorkerSummary {
        let started = Instant::now();
        info!(
            concurrency = self.options.concurrency,
            model = self.app.model.id(),
            visibility_timeout_s = self.app.config.visibility_timeout.as_secs(),
            "worker_startup"
        );
        let mut tasks = tokio::task::JoinSet::new();
        let spawn = |tasks: &mut tokio::task::JoinSet<()>| {
            let worker = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move { worker.receive_loop(shutdown).await });
        };
        for _ in 0..self.options.concurrency.max(1) {
            spawn(&mut tasks);
        }
        let sweeper = tokio::spawn(sweeper::run(
            self.app.clone(),
            self.options.sweep_interval,
            shutdown.clone(),
        ));
        // A loop that dies (a panic outside a job's run) is logged and replaced, so the worker
        // never quietly runs fewer loops; the delivery it held returns after its lease.
        while let Some(ended) = tasks.join_next().await {
            if shutdown.is_cancelled() {
                continue;
            }
            let error = match ended {
                Ok(()) => "the loop returned".to_owned(),
                Err(e) if e.is_panic() => driver::panic_message(&*e.into_panic()),
                Err(e) => e.to_string(),
            };
            error!(error, "worker_loop_restarted");
            spawn(&mut tasks);
        }
        sweeper.abort();
        let summary = WorkerSummary::new(started.elapsed(), &self.stats);
        info!(
            uptime_s = summary.uptime.as_secs(),
            processed = summary.processed,
            completed = summary.completed,
            failed = summary.failed,
            success_rate = summary.success_rate,
            "worker_shutdown"
        );
        summary
    }

    async fn receive_loop(&self, shutdown: CancellationToken) {
        let mut errors = 0u32;
        while !shutdown.is_cancelled() {
            // Never dropped mid-claim: a shutdown ends the wait, and a claim already under way
            // comes back here to be handed back (see below).
            let received = self
                .app
                .queue
                .receive_until(1, self.options.receive_wait, &shutdown)
                .await;
            match received {
                Ok(deliveries) if shutdown.is_cancelled() => {
                    // Told to stop while receiving: what the receive leased is not started, so
                    // it goes back at once, its receive uncounted, for another worker.
                    self.hand_back(deliveries).await;
                    break;
                }
                Ok(deliveries) => {
                    errors = 0;
                    // A job once started is finished even when shutdown fires meanwhile.
                    for delivery in deliveries {
                        self.process(delivery).await;
                    }
                }
                Err(e) => {
                    errors = errors.saturating_add(1);
                    let pause = retainwise_queue::backoff(
                        errors,
                        Duration::from_millis(500),
                        Duration::from_secs(30),
                    );
                    error!(error = %Chain(&e), retry_in_ms = pause.as_millis() as u64, "worker_loop_error");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
}

impl Worker {
    /// Hands a training back for [`TRAINING_DEFERRAL`] (with jitter, so deferred trainings do
    /// not return together), its receive uncounted.
    async fn defer(&self, delivery: retainwise_queue::Delivery) -> Outcome {
        let jitter = Duration::from_millis(rand::random::<u64>() % 500);
        if let Err(e) = self
            .app
            .queue
            .release(&delivery.receipt, TRAINING_DEFERRAL + jitter)
            .await
        {
            error!(message_id = %delivery.message_id, error = %Chain(&e), "deferring a training failed; it returns after its visibility timeout");
        }
        Outcome::Deferred
    }

    /// Releases deliveries received but not started (visible at once, receive uncounted); a
    /// failed release only means the message returns after its visibility timeout.
    async fn hand_back(&self, deliveries: Vec<retainwise_queue::Delivery>) {
        for delivery in deliveries {
            match self
                .app
                .queue
                .release(&delivery.receipt, Duration::ZERO)
                .await
            {
                Ok(()) => {
                    info!(message_id = %delivery.message_id, "message_handed_back_at_shutdown")
                }
                Err(e) => {
                    error!(message_id = %delivery.message_id, error = %Chain(&e), "hand-back failed; the message returns after its visibility timeout")
                }
            }
        }
    }
}

/// What a worker did between start and shutdown.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSummary {
    /// Time from start to shutdown.
    pub uptime: Duration,
    /// Jobs that reached COMPLETED or FAILED in this worker.
    pub processed: u64,
    /// Of which completed.
    pub completed: u64,
    /// Of which failed.
    pub failed: u64,
    /// completed / processed, 1.0 when nothing was processed.
    pub success_rate: f64,
}

impl WorkerSummary {
    fn new(uptime: Duration, stats: &WorkerStats) -> Self {
        let completed = stats.completed.load(Ordering::Relaxed);
        let failed = stats.failed.load(Ordering::Relaxed);
        let processed = completed + failed;
        let success_rate = if processed == 0 {
            1.0
        } else {
            completed as f64 / processed as f64
        };
        Self {
            uptime,
            processed,
            completed,
            failed,
            success_rate,
        }
    }
}

impl std::fmt::Display for WorkerSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "worker stopped after {}s: {} processed, {} completed, {} failed, success rate {:.1}%",
            self.uptime.as_secs(),
            self.processed,
            self.completed,
            self.failed,
            self.success_rate * 100.0
        )
    }
}
