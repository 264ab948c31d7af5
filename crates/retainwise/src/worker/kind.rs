//! What a kind of job is: the [`Job`] trait every kind implements and the [`JobContext`] its
//! run gets. A job's state lives in a [`JobRow`] (any table with the lifecycle columns). The life cycle around them is written once, in
//! `driver.rs`; a kind says only what is particular to it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use retainwise_queue::Receipt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::AnyConnection;

use super::webhook::{enqueue_event, Subject};
use super::{JobError, RetryPolicy};
use crate::app::App;
use crate::db::{JobRow, JobStatus, Value};

/// One kind of background work. A kind is one file that implements this trait plus one line in
/// the registration list (`worker/kinds.rs`); the driver gives every kind the same life cycle:
/// validate → fenced start → heartbeat → run → record → ack, or nack with backoff, or
/// dead-letter.
pub trait Job: Sized + Send + Sync + 'static {
    /// The `kind` field of this kind's messages (e.g. `"predict"`), unique in the list.
    const KIND: &'static str;
    /// Which id field the life cycle's log events carry.
    const LOG_ID: LogId;
    /// The names of the life cycle's log events for this kind.
    const EVENTS: Events;
    /// A long job (minutes): it runs only while another loop of the worker stays free for the
    /// short ones, and is handed back for a moment otherwise.
    const LONG: bool = false;

    /// The message body as sent (besides `kind`), decoded with serde. Never trusted as is:
    /// [`Job::validate`] turns it into the job.
    type Payload: Serialize + DeserializeOwned + Send;
    /// What a successful run produces, recorded through [`Job::completed_columns`].
    type Output: Send + Sync + 'static;

    /// How a transient failure of this kind is retried. By default the queue's own backoff and
    /// `max_receives` ([`RetryPolicy::Queue`]); a kind with a schedule of its own (webhook
    /// deliveries, for about a day) reads it from `config`.
    fn retry(config: &crate::config::Config) -> RetryPolicy {
        let _ = config;
        RetryPolicy::Queue
    }

    /// Checks a decoded payload (ids, object paths, age by the queue's send time) and makes the
    /// job. Errors: a sentence naming the field, the raw value and what was expected; the
    /// message is then dead-lettered, never retried.
    fn validate(payload: Self::Payload, checks: &Checks<'_>) -> Result<Self, String>;

    /// The record a payload names, when its ids parse, whatever else is wrong with it: lets the
    /// driver and the dead-letter sweeper close the job of a message they dead-letter.
    fn record_named(payload: &Self::Payload) -> Option<JobRow>;

    /// This job's record.
    fn record(&self) -> JobRow;

    /// Does the work. Checks [`JobContext::should_stop`] at every batch boundary and stores
    /// nothing once it is set. Errors say themselves whether a retry can help
    /// ([`JobError::is_permanent`]). A panic is caught by the driver and counted as a failed
    /// attempt.
    fn run(&self, ctx: &JobContext) -> impl Future<Output = Result<Self::Output, JobError>> + Send;

    /// True when a successful run handed its job on to jobs it queued itself, in its own
    /// transaction fenced by its lease (a file cut in pieces: the last piece queues the merge,
    /// which completes the record): the driver then records nothing and acks; the record
    /// stays RUNNING. False by default.
    fn handed_on(output: &Self::Output) -> bool {
        let _ = output;
        false
    }

    /// The kind's own columns a successful run sets with COMPLETED (counts, result keys, the
    /// model it made), for the driver's fenced `JobRow::complete`.
    fn completed_columns(&self, output: &Self::Output) -> Vec<(&'static str, Value)>;

    /// The kind's own columns a permanent failure sets with FAILED, from what the run learnt
    /// before it failed (a file whose every row was rejected still has counts that must agree
    /// with its report). None by default.
    fn failed_columns(&self, error: &JobError) -> Vec<(&'static str, Value)> {
        let _ = error;
        Vec::new()
    }

    /// Logs the kind's completion event with its own figures, once COMPLETED is committed.
    fn log_completed(&self, output: &Self::Output, took: Duration);

    /// Removes what a finished run stored (its result objects) when the job turned out to be
    /// cancelled while it ran: a cancelled job keeps nothing. Never called for a lost lease,
    /// whose objects the new holder may be writing. Nothing by default.
    fn discard(&self, app: &App, output: Self::Output) -> impl Future<Output = ()> + Send {
        let _ = (app, output);
        async {}
    }

    /// Tidies up after COMPLETED is committed (e.g. removes intermediate objects a later
    /// attempt no longer needs); a crash before it leaves them behind, never a wrong result.
    /// Nothing by default.
    fn completed(&self, app: &App, output: &Self::Output) -> impl Future<Output = ()> + Send {
        let _ = (app, output);
        async {}
    }

    /// Whose webhook events this kind's outcomes are (`prediction.*`, `training.*`): the
    /// default [`Job::followups`] sends them. None by default.
    const WEBHOOK_SUBJECT: Option<Subject> = None;

    /// Work that follows a final state of `record`, enqueued on `conn` in the transaction that
    /// records `status` (COMPLETED or FAILED, also a FAILED written by a dead-letter), through
    /// [`crate::worker::enqueue`] with `app`'s queue, so it is neither lost nor sent for an
    /// outcome that was not recorded. By default the webhook events of
    /// [`Job::WEBHOOK_SUBJECT`].
    fn followups(
        app: &App,
        record: &JobRow,
        conn: &mut AnyConnection,
        status: JobStatus,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async move {
            match Self::WEBHOOK_SUBJECT {
                Some(subject) => {
                    enqueue_event(app, conn, subject, record.id(), record.user(), status).await
                }
                None => Ok(()),
            }
        }
    }

    /// What happens when the job's message is dead-lettered (by this worker on its last
    /// allowed receive, or found dead by the sweeper): by default the record is closed FAILED
    /// with `dead_lettered_at` set, unless it changed after `dead_at_ms`, and the kind's
    /// [`Job::followups`] of a FAILED are enqueued with it. True when it changed. `conn` is a
    /// transaction the driver commits when this returns.
    fn on_dead_letter(
        app: &App,
        record: &JobRow,
        conn: &mut AnyConnection,
        shown: &str,
        dead_at_ms: i64,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send {
        async move {
            if !record.dead_lettered(&mut *conn, shown, dead_at_ms).await? {
                return Ok(false);
            }
            Self::followups(app, record, conn, JobStatus::Failed).await?;
            Ok(true)
        }
    }
}

/// What [`Job::validate`] checks a payload against.
#[derive(Debug, Clone, Copy)]
pub struct Checks<'a> {
    /// The queue's own send time (re-stamped on redrive): decides the age check.
    pub sent_at: SystemTime,
    /// The worker's clock.
    pub now: SystemTime,
    /// The configured storage root URL that object paths must lie inside.
    pub storage_root: &'a str,
}

/// What a running job gets.
pub struct JobContext {
    /// The application: database, storage, queue, models, configuration.
    pub app: App,
    /// This attempt's lease (the queue receipt); every write to the record is fenced by it.
    pub lease: Receipt,
    /// This attempt's number (1 on the first start).
    pub attempt: i64,
    /// Counted receives of the message, this one included.
    pub receive_count: u32,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) progress: Arc<AtomicU64>,
}

impl JobContext {
    /// True once the attempt must stop and store nothing: the lease was lost (another attempt
    /// holds the job) or the owner cancelled it.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The flag behind [`JobContext::should_stop`], for blocking code that checks it between
    /// batches.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The progress counter (e.g. rows so far) the heartbeat publishes to the record.
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.progress.clone()
    }
}

/// Which id field a kind's log events carry. Predictions and trainings keep the fields the
/// logs have always had (`prediction_id`, `training_id`), which dashboards and the failure
/// drills read; every other kind logs `job_id` and `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogId {
    /// `prediction_id = …`.
    Prediction,
    /// `training_id = …`.
    Training,
    /// `job_id = …, kind = …`.
    Job,
}

/// The names of a kind's life cycle events (the completion event is the kind's own, see
/// [`Job::log_completed`]).
#[derive(Debug, Clone, Copy)]
pub struct Events {
    /// A fenced start succeeded (fields: `attempt`, `receive_count`).
    pub started: &'static str,
    /// The job ended FAILED, permanently or dead-lettered (field: `reason`).
    pub failed: &'static str,
    /// Logged at every status change with a `status` field, when the kind has such an event.
    pub status_updated: Option<&'static str>,
}
