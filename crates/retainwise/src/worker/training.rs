//! The training kind: learn a model from a labelled upload, store its artifact, register it
//! for its owner. What to train (label, id column, name) is read from the training's row.

use std::time::Duration;

use retainwise_model::{TrainError, TrainParams};
use tracing::info;

use super::kind::{Checks, Events, Job, JobContext, LogId};
use super::webhook::Subject;
use super::JobError;
use crate::app::App;
use crate::db::{JobRow, Value};
use crate::domain::ModelId;
use crate::message::{self, TrainingJob, TrainingMessage};
use crate::storage::StorageError;

impl Job for TrainingJob {
    const KIND: &'static str = message::KIND_TRAIN;
    const LOG_ID: LogId = LogId::Training;
    const EVENTS: Events = Events {
        started: "training_started",
        failed: "training_failed",
        status_updated: None,
    };
    const WEBHOOK_SUBJECT: Option<Subject> = Some(Subject::Training);
    // Minutes long: never holds every loop of a worker while scoring jobs wait behind it.
    const LONG: bool = true;
    type Payload = TrainingMessage;
    type Output = ModelId;

    fn validate(payload: TrainingMessage, checks: &Checks<'_>) -> Result<Self, String> {
        payload.check(checks.sent_at, checks.now, checks.storage_root)
    }

    fn record_named(payload: &TrainingMessage) -> Option<JobRow> {
        let (id, user) = payload.owner()?;
        Some(JobRow::training(id, &user))
    }

    fn record(&self) -> JobRow {
        JobRow::training(self.training_id, &self.user_id)
    }

    async fn run(&self, ctx: &JobContext) -> Result<ModelId, JobError> {
        train(&ctx.app, self, &ctx.stop_flag()).await
    }

    fn completed_columns(&self, model: &ModelId) -> Vec<(&'static str, Value)> {
        vec![("model_id", Value::Text(model.to_string()))]
    }

    fn log_completed(&self, model: &ModelId, took: Duration) {
        info!(training_id = %self.training_id, model_id = %model, duration_ms = took.as_millis() as u64, "training_completed");
    }
}

/// Downloads the labelled CSV, trains on a blocking thread, stores and registers the model —
/// unless `lost` was set meanwhile (the lease is gone): then nothing is stored.
async fn train(
    app: &App,
    job: &TrainingJob,
    lost: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<ModelId, JobError> {
    let row = app
        .db
        .training(&job.user_id, job.training_id)
        .await?
        // Started under this attempt's lease a moment ago: gone means no longer ours.
        .ok_or(JobError::Stopped)?;
    let dir = tempfile::tempdir().map_err(JobError::io("creating a scratch folder"))?;
    let input = dir.path().join("training.csv");
    match app.storage.download_to(&job.object_key, &input).await {
        Ok(_) => {}
        Err(StorageError::NotFound(_)) => {
            return Err(JobError::Rejected(
                "the uploaded file is no longer in storage; upload it again".to_owned(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let mut params = TrainParams::new(row.label.clone());
    params.id_column = row.id_column.clone();
    params.group_column = row.group_column.clone();
    params.observation_date = row.observation_date_column.clone();
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
    let trained = tokio::task::spawn_blocking(move || -> Result<_, JobError> {
        let checked = params.check()?;
        let file = std::fs::File::open(&input).map_err(JobError::io("reading the download"))?;
        let table = retainwise_model::TrainingTable::read_csv(std::io::BufReader::with_capacity(
            1 << 20,
            file,
        ))?;
        // Refused before the search starts, not after it has held a worker for minutes.
        budget
            .check(table.rows() as u64, table.header().len() as u64)
            .map_err(JobError::Rejected)?;
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
                Err(JobError::Stopped)
            }
            Err(TrainError::Stopped) => Err(JobError::Rejected(format!(
                "the training stopped after {} s, over the time limit of {} s \
                 (RETAINWISE_TRAINING_MAX_SECONDS); train on fewer rows or drop columns the \
                 model should not learn from",
                started.elapsed().as_secs(),
                max_time.as_secs()
            ))),
            other => Ok(other?),
        }
    })
    .await
    .map_err(|source| JobError::Task {
        what: "training",
        source,
    })?;
    let (model, _report) = trained?;
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(JobError::Stopped);
    }
    Ok(app
        .registry
        .register(&app.db, &app.storage, &model, Some(&job.user_id))
        .await?)
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
