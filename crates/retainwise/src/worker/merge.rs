//! The merge of a prediction scored in pieces (`worker/pieces.rs`): one job, queued by the last
//! piece recorded, that puts the pieces' reports together (`retainwise_model::chunks::Merger`:
//! the report one pass would have made), assembles the result in input order and completes
//! the prediction, whose own row is its record.
//!
//! The result is assembled by streaming each piece's lines, in order, through a local file and
//! storing it as the one result object (`put_file_if_changed`, a multipart upload on S3). S3's
//! UploadPartCopy would join the parts inside S3 without moving their bytes, but every part
//! but the last must be at least 5 MiB and the pieces' lines are of any size (a piece of short
//! rows, or one whose rows were mostly rejected, is smaller), and it needs S3's API beside
//! `object_store`'s; the stream costs one read and one write of the result, the same as one
//! job storing it, and works the same on every store.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use retainwise_model::chunks::Merger;
use retainwise_model::score::Gathered;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::kind::{Checks, Events, Job, JobContext, LogId};
use super::pieces::ChunkPlan;
use super::prediction::{exact_size, record_stage, Scored};
use super::webhook::Subject;
use super::JobError;
use crate::app::App;
use crate::db::{JobRow, Value};
use crate::domain::{ObjectKey, OrgId, PredictionId};
use crate::error_chain::Chain;
use crate::storage::StorageError;

/// The body of a merge's message (besides `kind`, `predict_merge`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergeMessage {
    /// The prediction whose pieces are all scored.
    pub prediction_id: String,
    /// Its owner.
    pub user_id: String,
}

impl MergeMessage {
    fn owner(&self) -> Option<(PredictionId, OrgId)> {
        crate::message::parse_owner(&self.prediction_id, &self.user_id)
    }
}

/// The merge of one prediction's pieces.
pub struct MergeJob {
    prediction_id: PredictionId,
    user: OrgId,
}

impl Job for MergeJob {
    const KIND: &'static str = "predict_merge";
    const LOG_ID: LogId = LogId::Prediction;
    const EVENTS: Events = Events {
        started: "prediction_merge_started",
        failed: "prediction_processing_failed",
        status_updated: Some("prediction_status_updated"),
    };
    const WEBHOOK_SUBJECT: Option<Subject> = Some(Subject::Prediction);
    type Payload = MergeMessage;
    type Output = Scored;

    fn validate(payload: MergeMessage, _checks: &Checks<'_>) -> Result<Self, String> {
        let (prediction_id, user) = payload.owner().ok_or_else(|| {
            format!(
                "merge message names prediction {:?} of user {:?}: expected a UUID and a valid \
                 user id",
                payload.prediction_id, payload.user_id
            )
        })?;
        Ok(Self {
            prediction_id,
            user,
        })
    }

    fn record_named(payload: &MergeMessage) -> Option<JobRow> {
        let (id, user) = payload.owner()?;
        Some(JobRow::prediction(id, &user))
    }

    fn record(&self) -> JobRow {
        JobRow::prediction(self.prediction_id, &self.user)
    }

    async fn run(&self, ctx: &JobContext) -> Result<Scored, JobError> {
        merge(ctx, self.prediction_id, &self.user).await
    }

    fn completed_columns(&self, scored: &Scored) -> Vec<(&'static str, Value)> {
        scored.columns()
    }

    /// Exactly what a prediction scored in one job is followed by (its webhook events, and
    /// whatever else `predict` does when it records COMPLETED or FAILED): the merge is the
    /// step that records it.
    async fn followups(
        app: &App,
        record: &JobRow,
        conn: &mut sqlx::AnyConnection,
        status: crate::db::JobStatus,
    ) -> Result<(), sqlx::Error> {
        <crate::message::PredictionJob as Job>::followups(app, record, conn, status).await
    }

    fn failed_columns(&self, error: &JobError) -> Vec<(&'static str, Value)> {
        super::prediction::failed_counts(error)
    }

    async fn discard(&self, app: &App, scored: Scored) {
        if let Some(index) = ObjectKey::stored_index_of(&scored.result_key) {
            if let Err(e) = app.storage.delete(&index).await {
                tracing::warn!(prediction_id = %self.prediction_id, error = %Chain(&e), "could not remove the customers index of a cancelled prediction");
            }
        }
        scored.discard(app, self.prediction_id).await;
        if let Err(e) = crate::history::forget(app, &self.user, self.prediction_id).await {
            tracing::warn!(prediction_id = %self.prediction_id, error = %Chain(&e), "could not remove the customer history of a cancelled prediction");
        }
    }

    fn log_completed(&self, scored: &Scored, took: Duration) {
        scored.log_completed(self.prediction_id, took);
    }

    /// The pieces' objects are not needed once the result is recorded: removed, 16 at a time.
    async fn completed(&self, app: &App, _scored: &Scored) {
        let total = match app.db.prediction(&self.user, self.prediction_id).await {
            Ok(Some(row)) => row.chunks_total.unwrap_or(0).max(0) as u64,
            _ => return,
        };
        let keys: Vec<ObjectKey> = (0..total)
            .flat_map(|seq| {
                PIECE_PARTS.map(|what| ObjectKey::piece(&self.user, self.prediction_id, seq, what))
            })
            .collect();
        let failed = futures::stream::iter(keys)
            .map(|key| async move { app.storage.delete(&key).await.is_err() })
            .buffer_unordered(16)
            .filter(|failed| futures::future::ready(*failed))
            .count()
            .await;
        if failed > 0 {
            tracing::warn!(prediction_id = %self.prediction_id, failed, "could not remove some objects of a merged prediction's pieces");
        }
    }
}

/// Reads every piece's report, ids and lines in order, merges, stores the result and report.
async fn merge(ctx: &JobContext, id: PredictionId, user: &OrgId) -> Result<Scored, JobError> {
    let app = &ctx.app;
    let row = app
        .db
        .prediction(user, id)
        .await?
        .ok_or(JobError::Stopped)?;
    let total = row
        .chunks_total
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| JobError::Rejected("this prediction was not cut in pieces".to_owned()))?;
    let plan = ChunkPlan::read(app, user, id).await?;
    let recorded = super::prediction::recorded_for(app, user, id).await?;
    let options = plan.options(app, &recorded)?;
    let model = app
        .registry
        .load(&app.db, &app.storage, &plan.model_id)
        .await?;
    let stage = Instant::now();
    let dir = tempfile::tempdir().map_err(JobError::io("creating a scratch folder"))?;
    let path = dir.path().join("results.csv");
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(JobError::io("creating the results file"))?;
    let mut written = 0u64;
    let mut merger = Merger::new(&options);
    // Where each piece's lines start in the result: (rows, bytes) before them.
    let mut starts: Vec<(u64, u64)> = Vec::new();
    let mut rows_before = 0u64;
    let missing = || {
        JobError::Rejected(
            "a piece of this file's results is missing from storage; upload the file again"
                .to_owned(),
        )
    };
    for seq in 0..total {
        if ctx.should_stop() {
            return Err(JobError::Stopped);
        }
        let key = |what| ObjectKey::piece(user, id, seq, what);
        let sums = match app.storage.get_bytes(&key("json")).await {
            Err(StorageError::NotFound(_)) => return Err(missing()),
            other => other?,
        };
        let gathered: Gathered = serde_json::from_slice(&sums).map_err(|e| {
            JobError::Rejected(format!("a piece's report could not be read back ({e})"))
        })?;
        let ids = match app.storage.get_bytes(&key("ids.json")).await {
            Err(StorageError::NotFound(_)) => return Err(missing()),
            other => other?,
        };
        starts.push((rows_before, written));
        rows_before += gathered.report.rows_scored;
        let ids: Vec<(u64, String)> = serde_json::from_slice(&ids).map_err(|e| {
            JobError::Rejected(format!("a piece's ids could not be read back ({e})"))
        })?;
        // The repeat check over a piece's ids is CPU work: off the async threads.
        merger = tokio::task::spawn_blocking(move || {
            merger.add(gathered, &ids);
            merger
        })
        .await
        .map_err(|source| JobError::Task {
            what: "merging a piece's report",
            source,
        })?;
        let mut lines = match app.storage.get_stream(&key("csv")).await {
            Err(StorageError::NotFound(_)) => return Err(missing()),
            other => other?,
        };
        while let Some(chunk) = lines.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > app.config.max_result_bytes {
                return Err(JobError::Rejected(format!(
                    "the scored results of this file would be larger than the limit of {} \
                     (RETAINWISE_MAX_RESULT_BYTES); split the file into smaller ones and upload each",
                    exact_size(app.config.max_result_bytes)
                )));
            }
            file.write_all(&chunk)
                .await
                .map_err(JobError::io("writing the results file"))?;
        }
        ctx.progress().store(seq + 1, Ordering::Relaxed);
    }
    file.flush()
        .await
        .map_err(JobError::io("writing the results file"))?;
    drop(file);
    let report_key = ObjectKey::report(user, id);
    let report = match merger.finish(&model) {
        Ok(report) => report,
        Err(e) => {
            let error = JobError::Score(e);
            if let (true, JobError::Score(e)) = (error.is_permanent(), &error) {
                if let Ok(bytes) = serde_json::to_vec_pretty(&e.failure_report()) {
                    if let Err(e) = app.storage.put_bytes(&report_key, bytes).await {
                        tracing::warn!(prediction_id = %id, error = %Chain(&e), "could not store the failure report");
                    }
                }
            }
            return Err(error);
        }
    };
    record_stage("merge", stage);
    if ctx.should_stop() {
        return Err(JobError::Stopped);
    }
    let stage = Instant::now();
    metrics::counter!("retainwise_rows_scored_total").increment(report.rows_scored);
    metrics::counter!("retainwise_rows_rejected_total").increment(report.rows_rejected);
    crate::telemetry::record_drift(&plan.model_id, &report.drift);
    let result_key = ObjectKey::result(user, id);
    app.storage.put_file_if_changed(&result_key, &path).await?;
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| JobError::io("serialising the report")(e.into()))?;
    app.storage.put_bytes(&report_key, json).await?;
    record_stage("upload", stage);
    let stage = Instant::now();
    merge_index(
        ctx,
        id,
        user,
        &starts,
        report.rows_scored,
        &result_key,
        dir.path(),
    )
    .await?;
    record_stage("index", stage);
    // What one pass does after storing its result, in its order: the challenger's shadow
    // scores, then the customers remembered across runs, streamed from the merged result
    // still on local disk (`history::record`: batches, fenced by this merge's lease).
    if let Some(challenger) = &plan.challenger {
        if let Err(e) = merge_shadow(ctx, id, user, total, challenger, dir.path()).await {
            tracing::warn!(prediction_id = %id, error = %Chain(e.as_ref()), "shadow_scoring_failed");
        }
    }
    if ctx.should_stop() {
        return Err(JobError::Stopped);
    }
    let stage = Instant::now();
    let has_ids = report
        .validation
        .mapping
        .as_ref()
        .and_then(|m| m.id.as_ref())
        .is_some_and(|id| id.column.is_some());
    // As one pass: a customer erased before this file was uploaded, in it again, is noted.
    crate::erasure::returning::note(app, user, id, &path, has_ids).await?;
    crate::history::record(
        app,
        user,
        id,
        ctx.lease.as_str(),
        &path,
        &plan.model_id,
        has_ids,
    )
    .await?;
    record_stage("history", stage);
    Ok(Scored {
        model_id: plan.model_id,
        report,
        result_key,
        report_key,
    })
}

/// What a piece may store under `pieces/{user}/{prediction}/`, all removed after the merge.
const PIECE_PARTS: [&str; 6] = [
    "csv",
    "json",
    "ids.json",
    "shadow.csv",
    "shadow.json",
    "index",
];

/// Joins the pieces' parts of the customers index (`index`, each a sorted run) into the one
/// stored beside the result (`stored_index::merge_runs`, a k-way merge): each run is fetched
/// to the scratch folder, then read through a 64 KiB buffer, so memory is about 64 KiB per
/// piece whatever the rows. `starts` holds each piece's (rows, bytes) before its lines. When a
/// part is missing or the parts do not add up to the result's rows, nothing is stored (said in
/// the log) and the customers page indexes the result itself, as for one job.
async fn merge_index(
    ctx: &JobContext,
    id: PredictionId,
    user: &OrgId,
    starts: &[(u64, u64)],
    rows: u64,
    result_key: &ObjectKey,
    dir: &std::path::Path,
) -> Result<(), JobError> {
    let app = &ctx.app;
    let mut runs = Vec::with_capacity(starts.len());
    for (seq, &(rows_before, bytes_before)) in starts.iter().enumerate() {
        if ctx.should_stop() {
            return Err(JobError::Stopped);
        }
        let local = dir.join(format!("{seq:06}.index"));
        let key = ObjectKey::piece(user, id, seq as u64, "index");
        match app.storage.download_to(&key, &local).await {
            Ok(_) => {}
            // A piece scored by a version that wrote no part (during an upgrade): no index
            // is stored, and the customers page builds it from the result, as for one job.
            Err(StorageError::NotFound(_)) => {
                tracing::warn!(prediction_id = %id, seq, "customer_index_part_missing");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        runs.push((local, rows_before, bytes_before));
    }
    let path = dir.join("results.index");
    let out = path.clone();
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let runs = runs
            .into_iter()
            .map(|(local, rows_before, bytes_before)| {
                Ok(crate::stored_index::Run {
                    input: std::fs::File::open(local)?,
                    rows_before,
                    bytes_before,
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        crate::stored_index::merge_runs(runs, std::fs::File::create(&out)?)
    })
    .await
    .map_err(|source| JobError::Task {
        what: "merging the customers index",
        source,
    })?
    .map_err(JobError::io("merging the customers index"))?;
    if written != rows {
        // Never stored: the customers page builds the index from the result instead.
        tracing::error!(prediction_id = %id, written, rows, "customer_index_parts_do_not_add_up");
        return Ok(());
    }
    let key = ObjectKey::stored_index_of(result_key).expect("a result key");
    app.storage.put_file(&key, &path).await?;
    Ok(())
}

/// Joins the pieces' shadow scores (`shadow.csv`, in order) into the shadow result one pass
/// stores, when every piece was shadow-scored by `challenger`; otherwise stores nothing and
/// says why, as one pass whose shadow scoring failed.
async fn merge_shadow(
    ctx: &JobContext,
    id: PredictionId,
    user: &OrgId,
    total: u64,
    challenger: &str,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let app = &ctx.app;
    let path = dir.join("shadow.csv");
    let mut file = tokio::fs::File::create(&path).await?;
    let mut rows = 0u64;
    for seq in 0..total {
        if ctx.should_stop() {
            anyhow::bail!("stopped: this attempt no longer holds the prediction");
        }
        let key = |what| ObjectKey::piece(user, id, seq, what);
        let done: super::pieces::ShadowDone = match app.storage.get_bytes(&key("shadow.json")).await
        {
            Ok(bytes) => serde_json::from_slice(&bytes)?,
            Err(StorageError::NotFound(_)) => {
                anyhow::bail!(
                    "piece {} of {total} was not scored by the challenger (its warning says why)",
                    seq + 1
                )
            }
            Err(e) => return Err(e.into()),
        };
        if done.model_id != challenger {
            anyhow::bail!(
                "piece {} was scored by {}, not the challenger {challenger}",
                seq + 1,
                done.model_id
            );
        }
        rows += done.rows_scored;
        let mut lines = app.storage.get_stream(&key("shadow.csv")).await?;
        while let Some(chunk) = lines.next().await {
            file.write_all(&chunk?).await?;
        }
    }
    file.flush().await?;
    drop(file);
    if rows == 0 {
        // One pass's shadow scoring refuses a file with no row it can score.
        anyhow::bail!("the challenger {challenger} scored no row of this file");
    }
    crate::outcomes::challenger::store(app, user, id, challenger, &path, rows).await
}
