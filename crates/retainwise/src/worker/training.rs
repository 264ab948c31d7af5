//! One training delivery, from validation to ack: learn a model from a labelled upload,
//! store its artifact, register it for its owner. The same invariants as a prediction hold
//! (see the module above): the message is acked only after the training's final state is
//! written, every write is fenced by the lease, a finished training is skipped.

use std::time::{Instant, SystemTime};

use retainwise_model::{TrainError, TrainParams};
use tracing::{error, info, warn};

use super::heartbeat::Heartbeat;
use super::{JobError, Outcome, WorkerOptions};
use crate::app::App;
use crate::db::TrainingRow;
use crate::domain::ModelId;
use crate::error_chain::Chain;
use crate::message::{self, TrainingJob};
use crate::storage::StorageError;

/// Processes one training delivery to the end; every path ends in an ack, a nack or a
/// dead-letter (or, for a lost lease, in leaving the message alone).
pub async fn process(
    app: &App,
    options: &WorkerOptions,
    delivery: &retainwise_queue::Delivery,
    received_at: tokio::time::Instant,
) -> Outcome {
    let job = match message::validate_training(
        &delivery.body,
        delivery.sent_at,
        SystemTime::now(),
        app.storage.root_url(),
    ) {
        Ok(job) => job,
        Err(reason) => return reject_invalid(app, delivery, &reason).await,
    };
    let id = job.training_id;
    let receipt = delivery.receipt.as_str();
    let row = match app.db.start_training(&job.user_id, id, receipt).await {
        Ok(Some(row)) => row,
        Ok(None) => return skip_finished(app, delivery, &job).await,
        Err(e) => {
            return retry_or_dead_letter(app, options, delivery, &job, &JobError::from(e), false)
                .await
        }
    };
    info!(training_id = %id, attempt = row.attempt, receive_count = delivery.receive_count, "training_started");
    let started = Instant::now();
    let heartbeat = Heartbeat::lease_only(
        app,
        format!("training {id}"),
        delivery.receipt.clone(),
        received_at,
    );
    let result = train(app, &job, &row, &heartbeat.lost_flag()).await;
    if heartbeat.stop() {
        warn!(training_id = %id, "lease lost while training; leaving the job to its new holder");
        return Outcome::LeaseLost;
    }
    match result {
        Ok(model) => match app.db.complete_training(id, receipt, &model).await {
            Ok(true) => {
                info!(training_id = %id, model_id = %model, duration_ms = started.elapsed().as_millis() as u64, "training_completed");
                ack(app, delivery).await;
                Outcome::Completed
            }
            Ok(false) => Outcome::LeaseLost,
            Err(e) => {
                error!(training_id = %id, error = %Chain(&e), "message_processing_failed");
                Outcome::Retried
            }
        },
        Err(JobError::Permanent(reason)) => {
            match app
                .db
                .end_training_attempt(id, receipt, &reason, false)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Outcome::LeaseLost,
                Err(e) => {
                    error!(training_id = %id, error = %Chain(&e), "message_processing_failed");
                    return Outcome::Retried;
                }
            }
            warn!(training_id = %id, reason, "training_failed");
            ack(app, delivery).await;
            Outcome::Failed
        }
        Err(e) => retry_or_dead_letter(app, options, delivery, &job, &e, true).await,
    }
}

/// Downloads the labelled CSV, trains on a blocking thread, stores and registers the model —
/// unless `lost` was set meanwhile (the lease is gone): then nothing is stored.
async fn train(
    app: &App,
    job: &TrainingJob,
    row: &TrainingRow,
    lost: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<ModelId, JobError> {
    let dir = tempfile::tempdir()
        .map_err(|e| JobError::Transient(format!("creating a scratch folder: {e}")))?;
    let input = dir.path().join("training.csv");
    match app.storage.download_to(&job.object_key, &input).await {
        Ok(_) => {}
        Err(StorageError::NotFound(_)) => {
            return Err(JobError::Permanent(
                "the uploaded file is no longer in storage; upload it again".to_owned(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let mut params = TrainParams::new(row.label.clone());
    params.id_column = row.id_column.clone();
    params.name = row.name.clone();
    // Model ids hash the model's content: the owner's tag in it keeps two tenants who train
    // the same file from sharing one id (and one seeing the other's model as "shared").
    params.namespace = Some(job.user_id.model_namespace());
    let budget = Budget {
        max_cells: app.config.training_max_cells,
        max_memory_mb: app.config.training_max_memory_mb,
    };
    let max_time = app.config.training_max_time;
    let lost_in_search = std::sync::Arc::clone(lost);
    let trained = tokio::task::spawn_blocking(move || {
        let failed = |e: TrainError| match e {
            TrainError::Io(e) => JobError::Transient(format!("reading the download: {e}")),
            other => JobError::Permanent(other.to_string()),
        };
        let checked = params.check().map_err(failed)?;
        let file = std::fs::File::open(&input)
            .map_err(|e| JobError::Transient(format!("reading the download: {e}")))?;
        let table = retainwise_model::TrainingTable::read_csv(std::io::BufReader::with_capacity(
            1 << 20,
            file,
        ))
        .map_err(failed)?;
        // Refused before the search starts, not after it has held a worker for minutes.
        budget
            .check(table.rows() as u64, table.header().len() as u64)
            .map_err(JobError::Permanent)?;
        // The search asks after every fit whether to go on: past the time budget, or once
        // another attempt holds the lease, it stops instead of running to the end for nothing.
        let started = std::time::Instant::now();
        let go_on = |_| {
            started.elapsed() <= max_time
                && !lost_in_search.load(std::sync::atomic::Ordering::SeqCst)
        };
        match checked.fit_with_progress(&table, &go_on) {
            Err(TrainError::Stopped)
                if lost_in_search.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                Err(JobError::Transient(
                    "the lease was lost; another attempt holds the training".to_owned(),
                ))
            }
            Err(TrainError::Stopped) => Err(JobError::Permanent(format!(
                "the training stopped after {} s, over the time limit of {} s \
                 (RETAINWISE_TRAINING_MAX_SECONDS); train on fewer rows or drop columns the \
                 model should not learn from",
                started.elapsed().as_secs(),
                max_time.as_secs()
            ))),
            other => other.map_err(failed),
        }
    })
    .await
    .map_err(|e| JobError::Transient(format!("the training task stopped unexpectedly: {e}")))?;
    let (model, _report) = trained?;
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(JobError::Transient(
            "the lease was lost; another attempt holds the training".to_owned(),
        ));
    }
    app.registry
        .register(&app.db, &app.storage, &model, Some(&job.user_id))
        .await
        .map_err(|e| {
            if e.is_permanent() {
                JobError::Permanent(e.to_string())
            } else {
                JobError::Transient(e.to_string())
            }
        })
}

/// Bytes of memory the built-in search needs per cell of the training table (rows × columns),
/// an upper estimate: `retainwise train` on 3,000 rows × 101 columns (303,030 cells) peaked at
/// 61 MB resident (`/usr/bin/time -v`; the command and the file's generator are in the README's
/// training limits), about 200 bytes a cell with the process's own baseline included.
pub const BYTES_PER_CELL: u64 = 300;

/// What a training may use, checked on the table before the search starts.
#[derive(Debug, Clone, Copy)]
struct Budget {
    max_cells: u64,
    max_memory_mb: u64,
}

impl Budget {
    /// `Err` with a sentence naming the limit that `rows` × `columns` is over.
    fn check(&self, rows: u64, columns: u64) -> Result<(), String> {
        let cells = rows.saturating_mul(columns);
        if cells > self.max_cells {
            return Err(format!(
                "the file has {rows} rows × {columns} columns = {cells} cells, more than the \
                 training limit of {} cells (RETAINWISE_TRAINING_MAX_CELLS); train on fewer rows \
                 or drop columns the model should not learn from",
                self.max_cells
            ));
        }
        let estimate_mb = cells.saturating_mul(BYTES_PER_CELL).div_ceil(1024 * 1024);
        if estimate_mb > self.max_memory_mb {
            return Err(format!(
                "training on {rows} rows × {columns} columns would need about {estimate_mb} MB \
                 of memory, more than the limit of {} MB (RETAINWISE_TRAINING_MAX_MEMORY_MB); \
                 train on fewer rows or drop columns",
                self.max_memory_mb
            ));
        }
        Ok(())
    }
}

/// A transient failure: back to QUEUED and retried after a backoff, or, on the last allowed
/// receive, dead-lettered and FAILED. `started` says whether the training is ours to write.
async fn retry_or_dead_letter(
    app: &App,
    options: &WorkerOptions,
    delivery: &retainwise_queue::Delivery,
    job: &TrainingJob,
    error: &JobError,
    started: bool,
) -> Outcome {
    let id = job.training_id;
    let receipt = delivery.receipt.as_str();
    error!(training_id = %id, receive_count = delivery.receive_count, error = %error, "message_processing_failed");
    if let Some(dead) = super::job::dead_letter_if_exhausted(app, delivery, error).await {
        let Ok(reason) = dead else {
            return Outcome::Retried;
        };
        // The owner reads a plain sentence; the queue and the log keep `reason`.
        let shown = super::public_text::gave_up(delivery.receive_count);
        let _ = app
            .db
            .fail_dead_lettered_training(id, &job.user_id, &shown, i64::MAX)
            .await;
        warn!(training_id = %id, reason, "training_failed");
        return Outcome::DeadLettered;
    }
    if started {
        let _ = app
            .db
            .end_training_attempt(id, receipt, super::public_text::for_owner(error), true)
            .await;
    }
    super::job::nack_with_backoff(app, options, delivery, error).await
}

/// The training is finished: delete the duplicate. One that does not exist is dead-lettered.
async fn skip_finished(
    app: &App,
    delivery: &retainwise_queue::Delivery,
    job: &TrainingJob,
) -> Outcome {
    match app.db.training(&job.user_id, job.training_id).await {
        Ok(Some(row)) => {
            info!(training_id = %job.training_id, status = %row.status, skipped = true, "message_processed");
            ack(app, delivery).await;
            Outcome::Skipped
        }
        Ok(None) => reject_invalid(app, delivery, "no such training for this user").await,
        Err(e) => {
            error!(training_id = %job.training_id, error = %Chain(&e), "message_processing_failed");
            Outcome::Retried
        }
    }
}

/// An invalid message is never retried: dead-letter it, and fail its training when it names one.
async fn reject_invalid(app: &App, delivery: &retainwise_queue::Delivery, reason: &str) -> Outcome {
    warn!(message_id = %delivery.message_id, reason, "message_validation_failed");
    if let Err(e) = app.queue.dead_letter(&delivery.receipt, reason).await {
        warn!(message_id = %delivery.message_id, error = %Chain(&e), "dead-lettering an invalid message failed");
        return Outcome::Retried;
    }
    if let Some((id, user)) = message::training_owner(&delivery.body) {
        // `reason` may name the storage root (a bucket): it stays in the log and the queue.
        let shown = super::public_text::INVALID_MESSAGE;
        let _ = app
            .db
            .fail_dead_lettered_training(id, &user, shown, i64::MAX)
            .await;
    }
    Outcome::DeadLettered
}

async fn ack(app: &App, delivery: &retainwise_queue::Delivery) {
    if let Err(e) = app.queue.ack(&delivery.receipt).await {
        // The outcome is recorded; a redelivery will see a finished training and be skipped.
        warn!(message_id = %delivery.message_id, error = %Chain(&e), "ack failed; a redelivery will be skipped");
    }
}
