//! The life cycle of one delivery, written once for every kind of job:
//!
//! ```text
//! decode + validate ──invalid──▶ dead-letter (the named record closed FAILED)
//!   │
//! fenced start ──finished / cancelled──▶ ack, skip      ──absent──▶ dead-letter
//!   │ (RUNNING, attempt + 1, lease token)
//! heartbeat (extend the lease; publish progress; notice a lost lease or a cancel)
//!   │
//! run (panics caught) ──lost──▶ leave the message alone   ──cancelled──▶ ack
//!   │
//! record ──ok──▶ COMPLETED (+ follow-ups, one transaction) ──▶ ack
//!        ──permanent error──▶ FAILED (+ follow-ups) ──▶ ack
//!        ──transient error──▶ QUEUED + nack with backoff, or on the last receive:
//!                             dead-letter + FAILED with dead_lettered_at
//! ```
//!
//! The message is acked only after the final state is committed, so a crash anywhere means a
//! redelivery, and a redelivery of a finished job is acked and skipped.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::FutureExt;
use retainwise_queue::{Delivery, QueueError};

use super::failure_points::FailurePoint;
use super::heartbeat::Heartbeat;
use super::kind::{Checks, Job, JobContext, LogId};
use super::retry::Next;
use super::{public_text, JobError, Outcome, RetryPolicy, WorkerOptions};
use crate::app::App;
use crate::db::{Holding, JobRow, JobStatus};
use crate::error_chain::Chain;

/// Logs `$level` event with the job's id in its kind's field (see [`LogId`]).
macro_rules! job_event {
    ($level:ident, $job:ty, $id:expr, $($rest:tt)+) => {
        match <$job as Job>::LOG_ID {
            LogId::Prediction => tracing::$level!(prediction_id = %$id, $($rest)+),
            LogId::Training => tracing::$level!(training_id = %$id, $($rest)+),
            LogId::Job => tracing::$level!(job_id = %$id, kind = <$job as Job>::KIND, $($rest)+),
        }
    };
}

/// Processes one delivery of kind `J` to the end. Every path ends in an ack, a nack or a
/// dead-letter, or (a lost lease) in leaving the message to its new holder; an armed failure
/// point panics out of it, as a crash would.
pub(super) async fn drive<J: Job>(
    app: &App,
    options: &WorkerOptions,
    delivery: Delivery,
    received_at: tokio::time::Instant,
) -> Outcome {
    let points = &options.failure_points;
    let payload: J::Payload = match serde_json::from_str(&delivery.body) {
        Ok(payload) => payload,
        Err(e) => {
            let reason = format!("message body is not a valid {} message: {e}", J::KIND);
            return reject_invalid::<J>(app, &delivery, None, &reason).await;
        }
    };
    let named = J::record_named(&payload);
    let checks = Checks {
        sent_at: delivery.sent_at,
        now: SystemTime::now(),
        storage_root: app.storage.root_url(),
    };
    let job = match J::validate(payload, &checks) {
        Ok(job) => job,
        Err(reason) => return reject_invalid::<J>(app, &delivery, named, &reason).await,
    };
    let record = job.record();
    let id = record.id().to_owned();
    let lease = delivery.receipt.as_str();
    points.pass(FailurePoint::BeforeStart);
    let attempt = match async {
        let mut c = conn(app).await?;
        record.start(&mut *c, lease).await
    }
    .await
    {
        Ok(Some(attempt)) => attempt,
        Ok(None) => return skip_finished::<J>(app, &delivery, &record, &id).await,
        Err(e) => {
            let e = JobError::from(e);
            return retry_or_dead_letter::<J>(app, options, &delivery, &record, &id, &e, None)
                .await;
        }
    };
    job_event!(
        info,
        J,
        id,
        attempt,
        receive_count = delivery.receive_count,
        "{}",
        J::EVENTS.started
    );
    if let Some(event) = J::EVENTS.status_updated {
        job_event!(info, J, id, status = "RUNNING", "{}", event);
    }
    points.pass(FailurePoint::AfterStart);

    let started = Instant::now();
    let ctx = JobContext {
        app: app.clone(),
        lease: delivery.receipt.clone(),
        attempt,
        receive_count: delivery.receive_count,
        stop: Arc::new(AtomicBool::new(false)),
        progress: Arc::new(AtomicU64::new(0)),
    };
    let heartbeat = Heartbeat::start(
        app,
        record.clone(),
        format!("{} {id}", J::KIND),
        delivery.receipt.clone(),
        received_at,
        ctx.progress.clone(),
        ctx.stop.clone(),
    );
    let result = AssertUnwindSafe(async {
        points.pass(FailurePoint::DuringRun);
        job.run(&ctx).await
    })
    .catch_unwind()
    .await
    .unwrap_or_else(|panic| Err(JobError::Panicked(panic_message(&*panic))));
    let handed_on = matches!(&result, Ok(output) if J::handed_on(output));
    match heartbeat.stop() {
        Holding::Held => {}
        // Handed on and committed: the follow-up jobs may already hold the record (a merge
        // takes its prediction's row); this delivery's part is done.
        Holding::Lost if handed_on => {}
        Holding::Lost => {
            job_event!(
                warn,
                J,
                id,
                "lease lost while running; leaving the job to its new holder"
            );
            return Outcome::LeaseLost;
        }
        Holding::Cancelled => {
            // The run may have finished and stored its results before the cancel was seen.
            if let Ok(output) = result {
                job.discard(app, output).await;
            }
            return cancelled::<J>(app, &delivery, &id).await;
        }
    }
    points.pass(FailurePoint::AfterRun);
    match result {
        Ok(output) if J::handed_on(&output) => {
            job_event!(info, J, id, "job_handed_on");
            ack::<J>(app, &delivery, &id).await;
            Outcome::Completed
        }
        Ok(output) => {
            let columns = job.completed_columns(&output);
            let outcome = Final::Completed(&columns);
            let recorded = record_final::<J>(app, options, &delivery, &record, &id, outcome).await;
            if recorded == Outcome::Completed {
                job.log_completed(&output, started.elapsed());
                job.completed(app, &output).await;
            }
            recorded
        }
        Err(e) if e.is_permanent() => {
            let reason = public_text::for_owner(&e);
            let columns = job.failed_columns(&e);
            let outcome = Final::Failed(&reason, &columns);
            record_final::<J>(app, options, &delivery, &record, &id, outcome).await
        }
        Err(e) => {
            retry_or_dead_letter::<J>(app, options, &delivery, &record, &id, &e, Some(attempt))
                .await
        }
    }
}

/// A pooled connection for one statement of the life cycle.
async fn conn(app: &App) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
    app.db.pool().acquire().await
}

/// The final state a run ends in: COMPLETED with the kind's columns, or FAILED with the
/// sentence its owner reads and the kind's columns of a failure.
#[derive(Clone, Copy)]
enum Final<'a> {
    Completed(&'a [(&'static str, crate::db::Value)]),
    Failed(&'a str, &'a [(&'static str, crate::db::Value)]),
}

/// Records the final state and the kind's follow-ups in one transaction (fenced by the lease:
/// nothing commits when the attempt no longer holds the job), then acks.
async fn record_final<J: Job>(
    app: &App,
    options: &WorkerOptions,
    delivery: &Delivery,
    record: &JobRow,
    id: &str,
    outcome: Final<'_>,
) -> Outcome {
    let lease = delivery.receipt.as_str();
    let status = match outcome {
        Final::Completed(_) => JobStatus::Completed,
        Final::Failed(..) => JobStatus::Failed,
    };
    let recorded = async {
        let mut tx = app.db.pool().begin().await?;
        let held = match outcome {
            Final::Completed(columns) => record.complete(&mut *tx, lease, columns).await?,
            Final::Failed(reason, columns) => record.fail(&mut *tx, lease, reason, columns).await?,
        };
        if !held {
            return Ok(false);
        }
        J::followups(app, record, &mut tx, status).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(true)
    }
    .await;
    match recorded {
        Ok(true) => {}
        Ok(false) => return not_held::<J>(app, delivery, record, id).await,
        Err(e) => {
            job_event!(error, J, id, error = %Chain(&e), "message_processing_failed");
            // Not acked: the message comes back after its visibility timeout.
            return Outcome::Retried;
        }
    }
    if let Some(event) = J::EVENTS.status_updated {
        job_event!(info, J, id, status = status.as_str(), "{}", event);
    }
    if let Final::Failed(reason, _) = outcome {
        job_event!(warn, J, id, reason = %reason, "{}", J::EVENTS.failed);
    }
    options.failure_points.pass(FailurePoint::AfterRecord);
    ack::<J>(app, delivery, id).await;
    options.failure_points.pass(FailurePoint::AfterAck);
    match status {
        JobStatus::Completed => Outcome::Completed,
        _ => Outcome::Failed,
    }
}

/// A fenced record changed nothing: the job was cancelled meanwhile (ack: it will not run), or
/// another attempt holds it (leave the message alone).
async fn not_held<J: Job>(app: &App, delivery: &Delivery, record: &JobRow, id: &str) -> Outcome {
    match async {
        let mut c = conn(app).await?;
        record.status(&mut *c).await
    }
    .await
    {
        Ok(Some(JobStatus::Cancelled)) => cancelled::<J>(app, delivery, id).await,
        _ => {
            job_event!(
                warn,
                J,
                id,
                "lease lost before the outcome was recorded; the job is its new holder's"
            );
            Outcome::LeaseLost
        }
    }
}

/// The owner cancelled the job while it ran: nothing was recorded; delete the message.
async fn cancelled<J: Job>(app: &App, delivery: &Delivery, id: &str) -> Outcome {
    if let Some(event) = J::EVENTS.status_updated {
        job_event!(info, J, id, status = "CANCELLED", "{}", event);
    }
    ack::<J>(app, delivery, id).await;
    Outcome::Cancelled
}

/// A transient failure: back to QUEUED and retried after a delay, or, once the kind's
/// [`Job::retry`] policy gives up, dead-lettered and closed by the kind's
/// [`Job::on_dead_letter`]. `attempt` is this attempt's number when it started (the record is
/// then this attempt's to write), `None` when the start itself failed.
async fn retry_or_dead_letter<J: Job>(
    app: &App,
    options: &WorkerOptions,
    delivery: &Delivery,
    record: &JobRow,
    id: &str,
    error: &JobError,
    attempt: Option<i64>,
) -> Outcome {
    let lease = delivery.receipt.as_str();
    let cause = Chain(error).to_string();
    job_event!(error, J, id, receive_count = delivery.receive_count, attempt, error = %cause, "message_processing_failed");
    let policy = J::retry(&app.config);
    let next = policy.next(
        attempt,
        delivery.receive_count,
        app.config.max_receives,
        || {
            retainwise_queue::backoff(
                delivery.receive_count,
                options.retry_base,
                options.retry_max,
            )
        },
    );
    let (delay, fresh_round) = match next {
        Next::DeadLetter => {
            let tries = match (&policy, attempt) {
                (RetryPolicy::Schedule(_), Some(n)) => u32::try_from(n).unwrap_or(u32::MAX),
                _ => delivery.receive_count,
            };
            return give_up::<J>(app, delivery, record, id, &cause, tries, Some(error)).await;
        }
        Next::Nack(delay) => (delay, false),
        Next::Reschedule(delay) => (delay, true),
    };
    if attempt.is_some() {
        let shown = public_text::for_owner(error);
        if let Err(e) = async {
            let mut c = conn(app).await?;
            record.requeue(&mut *c, lease, &shown).await
        }
        .await
        {
            job_event!(warn, J, id, error = %Chain(&e), "recording the retry failed");
        }
    }
    let handed_back = if fresh_round {
        job_event!(
            info,
            J,
            id,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            "job_retry_scheduled"
        );
        app.queue.reschedule(&delivery.receipt, delay, &cause).await
    } else {
        app.queue.nack(&delivery.receipt, delay, &cause).await
    };
    if let Err(e) = handed_back {
        tracing::warn!(message_id = %delivery.message_id, error = %Chain(&e), "nack failed; the message returns after its visibility timeout");
    }
    Outcome::Retried
}

/// Dead-letters the message after `tries` attempts and closes the job through the kind's
/// [`Job::on_dead_letter`].
async fn give_up<J: Job>(
    app: &App,
    delivery: &Delivery,
    record: &JobRow,
    id: &str,
    cause: &str,
    tries: u32,
    last: Option<&JobError>,
) -> Outcome {
    let reason = format!("after {tries} attempts: {cause}");
    if let Err(e) = app.queue.dead_letter(&delivery.receipt, &reason).await {
        tracing::warn!(message_id = %delivery.message_id, error = %Chain(&e), "dead-lettering failed; the queue will retry the message");
        return Outcome::Retried;
    }
    // The owner reads a plain sentence; the queue and the log keep `reason`. The message
    // was dead-lettered under this receipt, so no other attempt holds the job.
    let shown = public_text::gave_up(tries, last);
    if let Err(e) = async {
        let mut tx = app.db.pool().begin().await?;
        let closed = J::on_dead_letter(app, record, &mut tx, &shown, i64::MAX).await?;
        tx.commit().await.map(|()| closed)
    }
    .await
    {
        tracing::warn!(message_id = %delivery.message_id, error = %Chain(&e), "closing a dead-lettered job failed; the sweeper closes it");
    }
    job_event!(warn, J, id, reason = %reason, "{}", J::EVENTS.failed);
    Outcome::DeadLettered
}

/// The job is finished or cancelled: delete the duplicate, do nothing else. One that does not
/// exist is dead-lettered.
async fn skip_finished<J: Job>(
    app: &App,
    delivery: &Delivery,
    record: &JobRow,
    id: &str,
) -> Outcome {
    match async {
        let mut c = conn(app).await?;
        record.status(&mut *c).await
    }
    .await
    {
        Ok(Some(status)) => {
            job_event!(info, J, id, status = %status, skipped = true, "message_processed");
            if let Err(e) = app.queue.ack(&delivery.receipt).await {
                job_event!(warn, J, id, error = %Chain(&e), "ack of a duplicate failed");
            }
            if status == JobStatus::Cancelled {
                Outcome::Cancelled
            } else {
                Outcome::Skipped
            }
        }
        Ok(None) => {
            let reason = format!("no such {} job for this user", J::KIND);
            reject_invalid::<J>(app, delivery, None, &reason).await
        }
        Err(e) => {
            job_event!(error, J, id, error = %Chain(&e), "message_processing_failed");
            Outcome::Retried
        }
    }
}

/// An invalid message is never retried: dead-letter it, and close the record it names.
async fn reject_invalid<J: Job>(
    app: &App,
    delivery: &Delivery,
    named: Option<JobRow>,
    reason: &str,
) -> Outcome {
    tracing::warn!(message_id = %delivery.message_id, kind = J::KIND, reason, "message_validation_failed");
    if let Err(e) = app.queue.dead_letter(&delivery.receipt, reason).await {
        tracing::warn!(message_id = %delivery.message_id, error = %Chain(&e), "dead-lettering an invalid message failed");
        return Outcome::Retried;
    }
    if let Some(record) = named {
        // `reason` may name the storage root (a bucket): it stays in the log and the queue.
        let shown = public_text::INVALID_MESSAGE;
        let now = crate::time::now_ms();
        if let Err(e) = async {
            let mut tx = app.db.pool().begin().await?;
            let closed = J::on_dead_letter(app, &record, &mut tx, shown, now).await?;
            tx.commit().await.map(|()| closed)
        }
        .await
        {
            tracing::warn!(message_id = %delivery.message_id, error = %Chain(&e), "closing the job of an invalid message failed");
        }
    }
    Outcome::DeadLettered
}

async fn ack<J: Job>(app: &App, delivery: &Delivery, id: &str) {
    match app.queue.ack(&delivery.receipt).await {
        Ok(()) => {
            job_event!(info, J, id, message_id = %delivery.message_id, "message_processed")
        }
        // The outcome is recorded; a redelivery will see a finished job and be skipped.
        Err(QueueError::LeaseLost { .. }) => {
            job_event!(
                warn,
                J,
                id,
                "ack refused: lease lost; a redelivery will be skipped"
            )
        }
        Err(e) => {
            job_event!(warn, J, id, error = %Chain(&e), "ack failed; a redelivery will be skipped")
        }
    }
}

/// The text of a caught panic (`panic!` with a literal or a formatted message).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Closes the job a dead message names (see [`Job::on_dead_letter`]); true when a record
/// changed. `None` when the body names no record of kind `J`.
pub(super) async fn close_dead<J: Job>(
    app: &App,
    dead: &retainwise_queue::DeadMessage,
) -> Result<bool, sqlx::Error> {
    let Ok(payload) = serde_json::from_str::<J::Payload>(&dead.body) else {
        return Ok(false);
    };
    let Some(record) = J::record_named(&payload) else {
        return Ok(false);
    };
    // The queue's last error is the worker's internal text (paths, endpoints): it goes to the
    // log; the owner reads a plain sentence.
    let reason = dead
        .last_error
        .as_deref()
        .unwrap_or("the job did not finish within the allowed attempts");
    let shown = public_text::gave_up(dead.receive_count, None);
    let dead_at = crate::time::to_ms(dead.dead_at);
    let closed = async {
        let mut tx = app.db.pool().begin().await?;
        let closed = J::on_dead_letter(app, &record, &mut tx, &shown, dead_at).await?;
        tx.commit().await.map(|()| closed)
    }
    .await?;
    if closed {
        let event = J::EVENTS.status_updated.unwrap_or(J::EVENTS.failed);
        job_event!(info, J, record.id(), status = "FAILED", reason, "{}", event);
    }
    Ok(closed)
}

/// A message that names no registered kind (not a JSON object, or an unknown `kind`): never
/// retried, dead-lettered with the reason.
pub(super) async fn reject_unknown(app: &App, delivery: &Delivery) -> Outcome {
    let reason = match crate::message::kind_of(&delivery.body) {
        Some(kind) => format!(
            "message kind \"{}\" is not one this worker runs (expected one of: {})",
            crate::log_safe::Clip(&kind),
            super::kinds::KINDS
                .iter()
                .map(|k| k.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "message body is not a JSON object with a string `kind`".to_owned(),
    };
    tracing::warn!(message_id = %delivery.message_id, reason, "message_validation_failed");
    if let Err(e) = app.queue.dead_letter(&delivery.receipt, &reason).await {
        tracing::warn!(message_id = %delivery.message_id, error = %Chain(&e), "dead-lettering an invalid message failed");
        return Outcome::Retried;
    }
    Outcome::DeadLettered
}
