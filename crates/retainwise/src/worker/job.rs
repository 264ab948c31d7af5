//! One delivery, from validation to ack.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use retainwise_model::dates::NaiveDate;
use retainwise_model::{Model, ScoreOptions, ScoreReport};
use retainwise_queue::{Delivery, QueueError};
use tracing::{error, info, warn};

use super::heartbeat::Heartbeat;
use super::WorkerOptions;
use crate::app::App;
use crate::domain::ObjectKey;
use crate::error_chain::Chain;
use crate::message::{self, PredictionJob};
use crate::storage::StorageError;

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Scored, recorded COMPLETED, message deleted.
    Completed,
    /// A permanent error: recorded FAILED, message deleted.
    Failed,
    /// A transient error: prediction back to QUEUED, message visible again after a backoff.
    Retried,
    /// Invalid message, or retries exhausted: moved to the dead-letter store.
    DeadLettered,
    /// The prediction was already finished (a duplicate delivery): message deleted, nothing done.
    Skipped,
    /// Another worker holds the job now; this one wrote nothing and left the message alone.
    LeaseLost,
    /// A training with no free training slot in this worker: handed back for a moment, its
    /// receive uncounted, nothing written.
    Deferred,
}

/// Why a job did not complete; decides between failing it and retrying it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input is at fault (unreadable file, missing columns, no usable rows): retrying cannot
    /// help. The text is shown to the user and says what to fix.
    #[error("{0}")]
    Permanent(String),
    /// The infrastructure is at fault (storage, database, local disk): retry later.
    #[error("{0}")]
    Transient(String),
}

// Transient errors keep their causes (`Connection refused`, `timed out`): the text goes to
// the log, to the queue as the message's last error, and to a dead-lettered job's error.
impl From<StorageError> for JobError {
    fn from(e: StorageError) -> Self {
        Self::Transient(Chain(&e).to_string())
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        Self::Transient(format!("database: {}", Chain(&e)))
    }
}

/// A finished scoring run, before it is recorded.
struct Scored {
    /// The model that scored it: the recorded one, or the SaaS baseline for a file only it reads.
    model_id: String,
    report: ScoreReport,
    result_key: ObjectKey,
    report_key: ObjectKey,
}

/// Processes one delivery to the end; never panics, never returns an error: every path ends in
/// an ack, a nack or a dead-letter (or, for a lost lease, in leaving the message alone).
pub async fn process(app: &App, options: &WorkerOptions, delivery: Delivery) -> Outcome {
    let delivery = crate::original_message::normalized(delivery);
    // The lease's clock has been running since the receive, which returned just now.
    let received_at = tokio::time::Instant::now();
    if message::is_training(&delivery.body) {
        return super::training::process(app, options, &delivery, received_at).await;
    }
    let job = match message::validate(
        &delivery.body,
        delivery.sent_at,
        SystemTime::now(),
        app.storage.root_url(),
    ) {
        Ok(job) => job,
        Err(reason) => return reject_invalid(app, &delivery, &reason).await,
    };
    let id = job.prediction_id;
    let receipt = delivery.receipt.as_str();
    let attempt = match app.db.start(&job.user_id, id, receipt).await {
        Ok(Some(attempt)) => attempt,
        Ok(None) => return skip_finished(app, &delivery, &job).await,
        Err(e) => {
            return retry_or_dead_letter(app, options, &delivery, &job, &JobError::from(e), false)
                .await
        }
    };
    info!(prediction_id = %id, attempt, receive_count = delivery.receive_count, "prediction_processing_started");
    info!(prediction_id = %id, status = "RUNNING", "prediction_status_updated");

    let started = Instant::now();
    let rows = Arc::new(AtomicU64::new(0));
    let heartbeat = Heartbeat::start(app, id, delivery.receipt.clone(), received_at, rows.clone());
    let lost = heartbeat.lost_flag();
    let result = match model_of(app, &job).await {
        Ok((model, reference)) => score(app, &job, model, reference, rows, lost).await,
        Err(e) => Err(e),
    };
    if heartbeat.stop() {
        warn!(prediction_id = %id, "lease lost while scoring; leaving the job to its new holder");
        return Outcome::LeaseLost;
    }
    match result {
        Ok(scored) => record_completed(app, &delivery, &job, scored, started).await,
        Err(JobError::Permanent(reason)) => record_failed(app, &delivery, &job, &reason).await,
        Err(e) => retry_or_dead_letter(app, options, &delivery, &job, &e, true).await,
    }
}

/// The model recorded on the prediction when it was queued (the owner's active model then),
/// and the reference date given with the upload, if any.
async fn model_of(
    app: &App,
    job: &PredictionJob,
) -> Result<(Arc<Model>, Option<NaiveDate>), JobError> {
    let row = app
        .db
        .prediction(&job.user_id, job.prediction_id)
        .await?
        .ok_or_else(|| JobError::Transient("the prediction row disappeared".to_owned()))?;
    let reference = row
        .reference_date
        .as_deref()
        .map(retainwise_model::dates::parse_reference)
        .transpose()
        .map_err(JobError::Permanent)?;
    app.registry
        .load(&app.db, &app.storage, &row.model_id)
        .await
        .map_err(|e| {
            if e.is_permanent() {
                JobError::Permanent(format!(
                    "{e}; activate another model (GET /api/models) and upload the file again"
                ))
            } else {
                JobError::Transient(Chain(&e).to_string())
            }
        })
        .map(|model| (model, reference))
}

/// Downloads the upload, scores it on a blocking thread, uploads the results and the report.
/// Once `lost` is set (the lease is gone) scoring stops at its next batch and nothing more is
/// stored: the job is its new holder's.
async fn score(
    app: &App,
    job: &PredictionJob,
    model: Arc<Model>,
    reference_date: Option<NaiveDate>,
    rows: Arc<AtomicU64>,
    lost: Arc<AtomicBool>,
) -> Result<Scored, JobError> {
    let lease_lost =
        || JobError::Transient("the lease was lost; another attempt holds the job".to_owned());
    let dir = tempfile::tempdir()
        .map_err(|e| JobError::Transient(format!("creating a scratch folder: {e}")))?;
    let input = dir.path().join("input.csv");
    let output = dir.path().join("results.csv");
    let stage = Instant::now();
    match app.storage.download_to(&job.object_key, &input).await {
        Ok(_) => {}
        Err(StorageError::NotFound(_)) => {
            return Err(JobError::Permanent(
                "the uploaded file is no longer in storage; upload it again".to_owned(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    record_stage("download", stage);
    let stage = Instant::now();
    let head = read_head(&input)
        .await
        .map_err(|e| JobError::Transient(format!("reading the download: {e}")))?;
    // The columns the uploader chose by hand, if any: they pick the model and the mapping as
    // they did in the checks at upload.
    let manual: retainwise_model::ManualMapping = match app
        .db
        .column_mapping(&job.user_id, job.prediction_id)
        .await?
    {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| JobError::Permanent(format!("the stored column mapping: {e}")))?,
        None => retainwise_model::ManualMapping::new(),
    };
    let model = app.registry.for_file(model, &head, &manual);
    let model_id = model.id().to_owned();
    let options = ScoreOptions {
        thresholds: app.config.thresholds.clone(),
        reference_date,
        mapping: manual,
        ..ScoreOptions::default()
    };
    let (input_path, output_path) = (input.clone(), output.clone());
    let stop = lost.clone();
    let max_result = app.config.max_result_bytes;
    let over = Arc::new(AtomicBool::new(false));
    let too_big = over.clone();
    type Failure = (JobError, Option<Vec<u8>>);
    let report = tokio::task::spawn_blocking(move || -> Result<ScoreReport, Failure> {
        let reader = std::fs::File::open(&input_path).map_err(|e| {
            (
                JobError::Transient(format!("reading the download: {e}")),
                None,
            )
        })?;
        let writer = std::fs::File::create(&output_path).map_err(|e| {
            (
                JobError::Transient(format!("creating the results file: {e}")),
                None,
            )
        })?;
        // Every read and write checks the flag: the scorer reads and writes batch by batch,
        // so a lost lease ends the run at its next batch.
        let mut writer = UntilLost {
            inner: Capped {
                inner: std::io::BufWriter::with_capacity(1 << 20, writer),
                left: max_result,
                over: over.clone(),
            },
            lost: stop.clone(),
        };
        let mut progress = |seen: u64| rows.store(seen, Ordering::Relaxed);
        // Reads the file twice when the model has date columns and no reference date was
        // given: first for the file's latest date.
        let report = retainwise_model::score_seekable(
            &model,
            UntilLost {
                inner: std::io::BufReader::with_capacity(1 << 20, reader),
                lost: stop.clone(),
            },
            &mut writer,
            &options,
            &mut progress,
        )
        .map_err(|e| {
            if e.is_permanent() {
                // Keep what was learnt about the file (mapping, per-column counts, first
                // rejected rows) so the report endpoint can show it for a failed job too.
                let report = serde_json::to_vec_pretty(&e.failure_report()).ok();
                (JobError::Permanent(e.to_string()), report)
            } else {
                (JobError::Transient(e.to_string()), None)
            }
        })?;
        std::io::Write::flush(&mut writer).map_err(|e| {
            (
                JobError::Transient(format!("writing the results file: {e}")),
                None,
            )
        })?;
        Ok(report)
    })
    .await
    .map_err(|e| JobError::Transient(format!("the scoring task stopped unexpectedly: {e}")))?;
    if lost.load(Ordering::SeqCst) {
        return Err(lease_lost());
    }
    if too_big.load(Ordering::SeqCst) {
        return Err(JobError::Permanent(format!(
            "the scored results of this file would be larger than the limit of {} MB \
             (RETAINWISE_MAX_RESULT_BYTES); split the file into smaller ones and upload each",
            app.config.max_result_bytes.div_ceil(1024 * 1024)
        )));
    }
    let report = match report {
        Ok(report) => report,
        Err((error, failure_report)) => {
            if let Some(bytes) = failure_report {
                let key = ObjectKey::report(&job.user_id, job.prediction_id);
                if let Err(e) = app.storage.put_bytes(&key, bytes).await {
                    tracing::warn!(prediction_id = %job.prediction_id, error = %Chain(&e), "could not store the failure report");
                }
            }
            return Err(error);
        }
    };

    record_stage("score", stage);
    metrics::counter!("retainwise_rows_scored_total").increment(report.rows_scored);
    metrics::counter!("retainwise_rows_rejected_total").increment(report.rows_rejected);
    let stage = Instant::now();
    if lost.load(Ordering::SeqCst) {
        return Err(lease_lost());
    }
    let result_key = ObjectKey::result(&job.user_id, job.prediction_id);
    let report_key = ObjectKey::report(&job.user_id, job.prediction_id);
    if !app
        .storage
        .put_file_if_changed(&result_key, &output)
        .await?
    {
        info!(prediction_id = %job.prediction_id, "result already stored by an earlier attempt");
    }
    let report_json = serde_json::to_vec_pretty(&report)
        .map_err(|e| JobError::Transient(format!("serialising the report: {e}")))?;
    app.storage.put_bytes(&report_key, report_json).await?;
    record_stage("upload", stage);
    Ok(Scored {
        model_id,
        report,
        result_key,
        report_key,
    })
}

async fn record_completed(
    app: &App,
    delivery: &Delivery,
    job: &PredictionJob,
    scored: Scored,
    started: Instant,
) -> Outcome {
    let id = job.prediction_id;
    let r = &scored.report;
    let summary = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned());
    if let Err(e) = app
        .db
        .set_model(id, delivery.receipt.as_str(), &scored.model_id)
        .await
    {
        error!(prediction_id = %id, error = %Chain(&e), "message_processing_failed");
        return Outcome::Retried;
    }
    let recorded = app
        .db
        .complete(
            id,
            delivery.receipt.as_str(),
            r.rows_total,
            r.rows_scored,
            r.rows_rejected,
            &summary,
            &scored.result_key,
            &scored.report_key,
        )
        .await;
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            warn!(prediction_id = %id, "lease lost before completion; the result was not recorded by this worker");
            return Outcome::LeaseLost;
        }
        Err(e) => {
            let e = JobError::from(e);
            error!(prediction_id = %id, error = %Chain(&e), "message_processing_failed");
            return Outcome::Retried; // message not acked: it comes back after its visibility timeout
        }
    }
    info!(prediction_id = %id, status = "COMPLETED", "prediction_status_updated");
    info!(
        prediction_id = %id,
        rows_scored = r.rows_scored,
        rows_rejected = r.rows_rejected,
        duration_ms = started.elapsed().as_millis() as u64,
        "prediction_processing_completed"
    );
    ack(app, delivery, job).await;
    Outcome::Completed
}

async fn record_failed(
    app: &App,
    delivery: &Delivery,
    job: &PredictionJob,
    reason: &str,
) -> Outcome {
    let id = job.prediction_id;
    match app.db.fail(id, delivery.receipt.as_str(), reason).await {
        Ok(true) => {}
        Ok(false) => return Outcome::LeaseLost,
        Err(e) => {
            error!(prediction_id = %id, error = %Chain(&e), "message_processing_failed");
            return Outcome::Retried;
        }
    }
    info!(prediction_id = %id, status = "FAILED", "prediction_status_updated");
    warn!(prediction_id = %id, reason, "prediction_processing_failed");
    ack(app, delivery, job).await;
    Outcome::Failed
}

/// A transient failure: back to QUEUED and retried after a backoff, or, on the last allowed
/// receive, dead-lettered and FAILED. `started` says whether the job is ours to write.
async fn retry_or_dead_letter(
    app: &App,
    options: &WorkerOptions,
    delivery: &Delivery,
    job: &PredictionJob,
    error: &JobError,
    started: bool,
) -> Outcome {
    let id = job.prediction_id;
    let receipt = delivery.receipt.as_str();
    error!(prediction_id = %id, receive_count = delivery.receive_count, error = %error, "message_processing_failed");
    if let Some(dead) = dead_letter_if_exhausted(app, delivery, error).await {
        let Ok(reason) = dead else {
            return Outcome::Retried;
        };
        // The owner reads a plain sentence; the queue and the log keep `reason`.
        let shown = super::public_text::gave_up(delivery.receive_count);
        if started {
            let _ = app
                .db
                .fail(id, receipt, &format!("dead-lettered: {shown}"))
                .await;
        } else {
            let _ = app
                .db
                .fail_dead_lettered(id, &job.user_id, &shown, crate::time::now_ms())
                .await;
        }
        warn!(prediction_id = %id, reason, "prediction_processing_failed");
        return Outcome::DeadLettered;
    }
    if started {
        let shown = super::public_text::for_owner(error);
        let _ = app.db.requeue(id, receipt, shown).await;
    }
    nack_with_backoff(app, options, delivery, error).await
}

/// On the last allowed receive, moves the message to the dead-letter store with `error` as its
/// last error. `None` while receives remain; `Some(Ok(reason))` once dead-lettered (the caller
/// closes its job with `reason`); `Some(Err(()))` when dead-lettering failed, so the queue will
/// deliver the message again.
pub(super) async fn dead_letter_if_exhausted(
    app: &App,
    delivery: &Delivery,
    error: &JobError,
) -> Option<Result<String, ()>> {
    if delivery.receive_count < app.config.max_receives {
        return None;
    }
    let reason = format!("after {} attempts: {error}", delivery.receive_count);
    if let Err(e) = app.queue.dead_letter(&delivery.receipt, &reason).await {
        warn!(message_id = %delivery.message_id, error = %Chain(&e), "dead-lettering failed; the queue will retry the message");
        return Some(Err(()));
    }
    Some(Ok(reason))
}

/// Hands the message back to be delivered again after the retry backoff for its receive count
/// (exponential with full jitter); a failed nack only means it returns after its visibility
/// timeout instead.
pub(super) async fn nack_with_backoff(
    app: &App,
    options: &WorkerOptions,
    delivery: &Delivery,
    error: &JobError,
) -> Outcome {
    let delay = retainwise_queue::backoff(
        delivery.receive_count,
        options.retry_base,
        options.retry_max,
    );
    if let Err(e) = app
        .queue
        .nack(&delivery.receipt, delay, &error.to_string())
        .await
    {
        warn!(message_id = %delivery.message_id, error = %Chain(&e), "nack failed; the message returns after its visibility timeout");
    }
    Outcome::Retried
}

/// The prediction is finished (or does not exist): delete the duplicate, do nothing else.
async fn skip_finished(app: &App, delivery: &Delivery, job: &PredictionJob) -> Outcome {
    match app.db.prediction(&job.user_id, job.prediction_id).await {
        Ok(Some(row)) => {
            info!(prediction_id = %job.prediction_id, status = %row.status(), skipped = true, "message_processed");
            if let Err(e) = app.queue.ack(&delivery.receipt).await {
                warn!(prediction_id = %job.prediction_id, error = %Chain(&e), "ack of a duplicate failed");
            }
            Outcome::Skipped
        }
        Ok(None) => reject_invalid(app, delivery, "no such prediction for this user").await,
        Err(e) => {
            error!(prediction_id = %job.prediction_id, error = %Chain(&e), "message_processing_failed");
            Outcome::Retried
        }
    }
}

/// An invalid message is never retried: dead-letter it, and fail its prediction when the
/// message names one.
async fn reject_invalid(app: &App, delivery: &Delivery, reason: &str) -> Outcome {
    warn!(message_id = %delivery.message_id, reason, "message_validation_failed");
    if let Err(e) = app.queue.dead_letter(&delivery.receipt, reason).await {
        warn!(message_id = %delivery.message_id, error = %Chain(&e), "dead-lettering an invalid message failed");
        return Outcome::Retried;
    }
    if let Some((id, user)) = message::owner(&delivery.body) {
        // `reason` may name the storage root (a bucket): it stays in the log and the queue.
        let shown = super::public_text::INVALID_MESSAGE;
        let _ = app
            .db
            .fail_dead_lettered(id, &user, shown, crate::time::now_ms())
            .await;
    }
    Outcome::DeadLettered
}

async fn ack(app: &App, delivery: &Delivery, job: &PredictionJob) {
    match app.queue.ack(&delivery.receipt).await {
        Ok(()) => {
            info!(prediction_id = %job.prediction_id, message_id = %delivery.message_id, "message_processed")
        }
        // The outcome is recorded; a redelivery will see a finished job and be skipped.
        Err(QueueError::LeaseLost { .. }) => {
            warn!(prediction_id = %job.prediction_id, "ack refused: lease lost; a redelivery will be skipped")
        }
        Err(e) => {
            warn!(prediction_id = %job.prediction_id, error = %Chain(&e), "ack failed; a redelivery will be skipped")
        }
    }
}

/// A reader or writer that fails once `lost` is set, so the scorer stops at its next read or
/// write (it reads and writes batch by batch) when the job's lease is lost.
struct UntilLost<T> {
    inner: T,
    lost: Arc<AtomicBool>,
}

impl<T> UntilLost<T> {
    fn check(&self) -> std::io::Result<()> {
        if self.lost.load(Ordering::Relaxed) {
            Err(std::io::Error::other(
                "stopped: the lease was lost; another attempt holds the job",
            ))
        } else {
            Ok(())
        }
    }
}

impl<R: std::io::Read> std::io::Read for UntilLost<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for UntilLost<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount)
    }
}

impl<R: std::io::Seek> std::io::Seek for UntilLost<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.check()?;
        self.inner.seek(pos)
    }
}

impl<W: std::io::Write> std::io::Write for UntilLost<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.check()?;
        self.inner.flush()
    }
}

/// A writer that refuses to write more than `left` bytes in all and sets `over` when asked
/// to: the scored output is bounded while it is written, not after.
struct Capped<W> {
    inner: W,
    left: u64,
    over: Arc<AtomicBool>,
}

impl<W: std::io::Write> std::io::Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            self.over.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other(
                "the scored results are larger than the result limit",
            ));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The first [`HEAD_BYTES`](crate::registry::HEAD_BYTES) of a file (all of a smaller one).
async fn read_head(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut head = Vec::with_capacity(crate::registry::HEAD_BYTES);
    file.take(crate::registry::HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .await?;
    Ok(head)
}

fn record_stage(stage: &'static str, started: Instant) {
    metrics::histogram!("retainwise_job_stage_seconds", "stage" => stage)
        .record(started.elapsed().as_secs_f64());
}
