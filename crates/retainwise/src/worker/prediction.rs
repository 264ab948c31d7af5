//! The prediction kind: score an uploaded CSV with the model recorded on the prediction, store
//! the scored CSV and the validation report, record the counts and the summary.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use retainwise_model::dates::NaiveDate;
use retainwise_model::{Model, ScoreOptions, ScoreReport};
use tracing::info;

use super::kind::{Checks, Events, Job, JobContext, LogId};
use super::webhook::Subject;
use super::JobError;
use crate::app::App;
use crate::db::{JobRow, Value};
use crate::domain::ObjectKey;
use crate::error_chain::Chain;
use crate::message::{self, PredictionJob, PredictionMessage};
use crate::storage::StorageError;

/// A finished scoring run, before it is recorded.
pub struct Scored {
    /// The model that scored it: the recorded one, or the SaaS baseline for a file only it reads.
    pub(super) model_id: String,
    pub(super) report: ScoreReport,
    pub(super) result_key: ObjectKey,
    pub(super) report_key: ObjectKey,
}

/// What a prediction's run did: scored the file, or cut it in pieces that other jobs score
/// (`worker/pieces.rs`; the merge completes the prediction).
pub enum Ran {
    /// Scored in one pass.
    Scored(Box<Scored>),
    /// Handed on to its pieces.
    Cut,
}

impl Scored {
    /// The prediction's columns a completed scoring sets (one pass, or the merge of pieces).
    pub(super) fn columns(&self) -> Vec<(&'static str, Value)> {
        let r = &self.report;
        let summary = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned());
        let count = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        vec![
            ("rows_total", count(r.rows_total)),
            ("rows_processed", count(r.rows_scored)),
            ("rows_rejected", count(r.rows_rejected)),
            ("summary", Value::Text(summary)),
            ("result_key", Value::Text(self.result_key.to_string())),
            ("report_key", Value::Text(self.report_key.to_string())),
            ("model_id", Value::Text(self.model_id.clone())),
        ]
    }

    /// Removes the stored result and report (a run that finished after a cancel).
    pub(super) async fn discard(self, app: &App, prediction: crate::domain::PredictionId) {
        for key in [&self.result_key, &self.report_key] {
            if let Err(e) = app.storage.delete(key).await {
                tracing::warn!(prediction_id = %prediction, error = %Chain(&e), "could not remove the results of a cancelled prediction");
            }
        }
    }

    /// Logs the completion with its figures.
    pub(super) fn log_completed(&self, prediction: crate::domain::PredictionId, took: Duration) {
        info!(
            prediction_id = %prediction,
            rows_scored = self.report.rows_scored,
            rows_rejected = self.report.rows_rejected,
            duration_ms = took.as_millis() as u64,
            "prediction_processing_completed"
        );
    }
}

impl Job for PredictionJob {
    const KIND: &'static str = message::KIND_PREDICT;
    const LOG_ID: LogId = LogId::Prediction;
    const EVENTS: Events = Events {
        started: "prediction_processing_started",
        failed: "prediction_processing_failed",
        status_updated: Some("prediction_status_updated"),
    };
    const WEBHOOK_SUBJECT: Option<Subject> = Some(Subject::Prediction);
    type Payload = PredictionMessage;
    type Output = Ran;

    fn validate(payload: PredictionMessage, checks: &Checks<'_>) -> Result<Self, String> {
        payload.check(checks.sent_at, checks.now, checks.storage_root)
    }

    fn record_named(payload: &PredictionMessage) -> Option<JobRow> {
        let (id, user) = payload.owner()?;
        Some(JobRow::prediction(id, &user))
    }

    fn record(&self) -> JobRow {
        JobRow::prediction(self.prediction_id, &self.user_id)
    }

    async fn run(&self, ctx: &JobContext) -> Result<Ran, JobError> {
        let recorded = recorded(&ctx.app, self).await?;
        if recorded.cut {
            // Cut in pieces by an earlier attempt whose ack did not arrive: they run already.
            return Ok(Ran::Cut);
        }
        score(&ctx.app, self, recorded, ctx).await
    }

    fn handed_on(ran: &Ran) -> bool {
        matches!(ran, Ran::Cut)
    }

    /// A completed prediction's scored rows are metered to its organisation's month in the
    /// transaction that records it (once: `db::usage::meter_completed`), then the webhook
    /// events as for every kind, and on COMPLETED `customers.risk_increased` when customers
    /// moved up a risk level since the organisation's previous prediction (the history this run
    /// wrote is compared in the same transaction).
    async fn followups(
        app: &App,
        record: &JobRow,
        conn: &mut sqlx::AnyConnection,
        status: crate::db::JobStatus,
    ) -> Result<(), sqlx::Error> {
        if status == crate::db::JobStatus::Completed {
            let metered =
                crate::db::usage::meter_completed(conn, record.id(), app.config.default_quota_rows)
                    .await?;
            for threshold in &metered.crossed {
                super::webhook::enqueue_usage_event(app, conn, record.user(), threshold).await?;
            }
        }
        let (id, org) = (record.id(), record.user());
        super::webhook::enqueue_event(app, conn, Subject::Prediction, id, org, status).await?;
        if status == crate::db::JobStatus::Completed {
            super::webhook::enqueue_risk_increased(app, conn, id, org).await?;
        }
        Ok(())
    }

    fn completed_columns(&self, ran: &Ran) -> Vec<(&'static str, Value)> {
        match ran {
            Ran::Scored(scored) => scored.columns(),
            Ran::Cut => Vec::new(),
        }
    }

    fn failed_columns(&self, error: &JobError) -> Vec<(&'static str, Value)> {
        failed_counts(error)
    }

    async fn discard(&self, app: &App, ran: Ran) {
        if let Ran::Scored(scored) = ran {
            (*scored).discard(app, self.prediction_id).await;
        }
        if let Err(e) = crate::history::forget(app, &self.user_id, self.prediction_id).await {
            tracing::warn!(prediction_id = %self.prediction_id, error = %Chain(&e), "could not remove the customer history of a cancelled prediction");
        }
    }

    fn log_completed(&self, ran: &Ran, took: Duration) {
        if let Ran::Scored(scored) = ran {
            scored.log_completed(self.prediction_id, took);
        }
    }
}

/// The counts a permanent scoring failure still knows (a file whose every row was rejected
/// has counts that must agree with its report).
pub(super) fn failed_counts(error: &JobError) -> Vec<(&'static str, Value)> {
    let JobError::Score(e) = error else {
        return Vec::new();
    };
    let Some(v) = e.validation() else {
        return Vec::new();
    };
    let count = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    vec![
        ("rows_total", count(v.rows_total)),
        ("rows_processed", count(v.rows_scored)),
        ("rows_rejected", count(v.rows_rejected)),
    ]
}

/// What the prediction's row recorded when it was queued: the model (the owner's active model
/// then), the reference date given with the upload, and the columns chosen by hand.
pub(super) struct Recorded {
    pub(super) model: Arc<Model>,
    pub(super) reference_date: Option<NaiveDate>,
    pub(super) manual: retainwise_model::ManualMapping,
    pub(super) explain: retainwise_model::Explain,
    /// Already cut in pieces (`chunks_total` set).
    pub(super) cut: bool,
}

/// Reads [`Recorded`] from the prediction's row (one query) and loads its model.
async fn recorded(app: &App, job: &PredictionJob) -> Result<Recorded, JobError> {
    recorded_for(app, &job.user_id, job.prediction_id).await
}

/// [`Recorded`] of prediction `id` of `user`.
pub(super) async fn recorded_for(
    app: &App,
    user: &crate::domain::OrgId,
    id: crate::domain::PredictionId,
) -> Result<Recorded, JobError> {
    let row = app
        .db
        .prediction(user, id)
        .await?
        // Started under this attempt's lease a moment ago: gone means no longer ours.
        .ok_or(JobError::Stopped)?;
    let reference_date = row
        .reference_date
        .as_deref()
        .map(retainwise_model::dates::parse_reference)
        .transpose()
        .map_err(JobError::Rejected)?;
    // The columns the uploader chose by hand, if any: they pick the model and the mapping as
    // they did in the checks at upload.
    let manual = match row.column_mapping.as_deref() {
        Some(json) => serde_json::from_str(json).map_err(|e| {
            JobError::Rejected(format!(
                "the columns chosen at upload could not be read back ({e}); upload the file again"
            ))
        })?,
        None => retainwise_model::ManualMapping::new(),
    };
    let explain = match row.explanation.as_deref() {
        Some(e) => e.parse().map_err(JobError::Rejected)?,
        None => retainwise_model::Explain::Top,
    };
    let model = app
        .registry
        .load(&app.db, &app.storage, &row.model_id)
        .await?;
    Ok(Recorded {
        model,
        reference_date,
        manual,
        explain,
        cut: row.chunks_total.is_some(),
    })
}

/// Downloads the upload, scores it on a blocking thread, uploads the results and the report.
/// Once `lost` is set (the lease is gone, or the job was cancelled) scoring stops at its next
/// batch and nothing more is stored.
async fn score(
    app: &App,
    job: &PredictionJob,
    recorded: Recorded,
    ctx: &JobContext,
) -> Result<Ran, JobError> {
    let (rows, lost): (Arc<AtomicU64>, Arc<AtomicBool>) = (ctx.progress(), ctx.stop_flag());
    let dir = tempfile::tempdir().map_err(JobError::io("creating a scratch folder"))?;
    let input = dir.path().join("input.csv");
    let output = dir.path().join("results.csv");
    let stage = Instant::now();
    let size = match app.storage.download_to(&job.object_key, &input).await {
        Ok(size) => size,
        Err(StorageError::NotFound(_)) => {
            return Err(JobError::Rejected(
                "the uploaded file is no longer in storage; upload it again".to_owned(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    record_stage("download", stage);
    // A file that may hold more than a piece's rows is cut in pieces, scored by many workers.
    let chunk_rows = app.config.chunk_rows;
    if chunk_rows > 0
        && size > chunk_rows.saturating_mul(2)
        && super::pieces::cut(app, job, &input, size, &recorded, ctx).await?
    {
        return Ok(Ran::Cut);
    }
    let stage = Instant::now();
    let baseline = app.registry.baseline().clone();
    let Recorded {
        model,
        reference_date,
        manual,
        explain,
        cut: _,
    } = recorded;
    let options = ScoreOptions {
        thresholds: app.config.thresholds.clone(),
        reference_date,
        mapping: manual,
        explain,
        ..ScoreOptions::default()
    };
    let (input_path, output_path) = (input.clone(), output.clone());
    let stop = lost.clone();
    let max_result = app.config.max_result_bytes;
    let over = Arc::new(AtomicBool::new(false));
    let too_big = over.clone();
    type Failure = (JobError, Option<Vec<u8>>);
    let report = tokio::task::spawn_blocking(move || -> Result<(String, ScoreReport), Failure> {
        let reader = std::fs::File::open(&input_path)
            .map_err(|e| (JobError::io("reading the download")(e), None))?;
        let writer = std::fs::File::create(&output_path)
            .map_err(|e| (JobError::io("creating the results file")(e), None))?;
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
        let mut reader = UntilLost {
            inner: std::io::BufReader::with_capacity(1 << 20, reader),
            lost: stop.clone(),
        };
        // The recorded model, or the baseline for a file only it reads, and the reference
        // date (given, or the file's latest: a first pass): the choice `retainwise predict`
        // makes too.
        let plan = retainwise_model::plan::plan(
            &model,
            Some(&baseline),
            options.reference_date,
            &mut reader,
            &options.limits,
            &options.mapping,
        )
        .map_err(|e| (JobError::io("reading the download")(e), None))?;
        let options = ScoreOptions {
            reference_date_found: options.reference_date.is_none(),
            reference_date: plan.reference_date,
            reference_date_source: plan.reference_source.clone(),
            ..options
        };
        let report =
            retainwise_model::score_csv(plan.model, reader, &mut writer, &options, &mut progress)
                .map_err(|e| {
                // Keep what was learnt about a refused file (mapping, per-column counts, first
                // rejected rows) so the report endpoint can show it for a failed job too.
                let error = JobError::Score(e);
                let report = match &error {
                    JobError::Score(e) if error.is_permanent() => {
                        serde_json::to_vec_pretty(&e.failure_report()).ok()
                    }
                    _ => None,
                };
                (error, report)
            })?;
        std::io::Write::flush(&mut writer)
            .map_err(|e| (JobError::io("writing the results file")(e), None))?;
        Ok((plan.model.id().to_owned(), report))
    })
    .await
    .map_err(|source| JobError::Task {
        what: "scoring",
        source,
    })?;
    if lost.load(Ordering::SeqCst) {
        return Err(JobError::Stopped);
    }
    if too_big.load(Ordering::SeqCst) {
        return Err(JobError::Rejected(format!(
            "the scored results of this file would be larger than the limit of {} \
             (RETAINWISE_MAX_RESULT_BYTES); split the file into smaller ones and upload each",
            exact_size(app.config.max_result_bytes)
        )));
    }
    let (model_id, report) = match report {
        Ok(scored) => scored,
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
    crate::telemetry::record_drift(&model_id, &report.drift);
    let stage = Instant::now();
    if lost.load(Ordering::SeqCst) {
        return Err(JobError::Stopped);
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
        .map_err(|e| JobError::io("serialising the report")(e.into()))?;
    app.storage.put_bytes(&report_key, report_json).await?;
    record_stage("upload", stage);
    // The owner's challenger model, if any, scores the same file in this job (shadow).
    crate::outcomes::challenger::shadow(
        app,
        &job.user_id,
        job.prediction_id,
        &input,
        &model_id,
        report.reference_date.as_deref(),
        &lost,
    )
    .await;
    // The customers remembered across runs, from the results file still on local disk: the
    // last step, so nothing after it can fail the run but the recording of COMPLETED (whose
    // retry replaces these rows).
    let stage = Instant::now();
    let has_ids = report
        .validation
        .mapping
        .as_ref()
        .and_then(|m| m.id.as_ref())
        .is_some_and(|id| id.column.is_some());
    // A customer erased before this file was uploaded, in it again: noted, not remembered.
    crate::erasure::returning::note(app, &job.user_id, job.prediction_id, &output, has_ids).await?;
    crate::history::record(
        app,
        &job.user_id,
        job.prediction_id,
        ctx.lease.as_str(),
        &output,
        &model_id,
        has_ids,
    )
    .await?;
    record_stage("history", stage);
    Ok(Ran::Scored(Box::new(Scored {
        model_id,
        report,
        result_key,
        report_key,
    })))
}

/// A reader or writer that fails once `lost` is set, so the scorer stops at its next read or
/// write (it reads and writes batch by batch) when the attempt no longer holds the job.
pub(super) struct UntilLost<T> {
    pub(super) inner: T,
    pub(super) lost: Arc<AtomicBool>,
}

impl<T> UntilLost<T> {
    fn check(&self) -> std::io::Result<()> {
        if self.lost.load(Ordering::Relaxed) {
            Err(std::io::Error::other(
                "stopped: this attempt no longer holds the job (its lease was lost or the job \
                 was cancelled)",
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

pub(super) fn record_stage(stage: &'static str, started: Instant) {
    metrics::histogram!("retainwise_job_stage_seconds", "stage" => stage)
        .record(started.elapsed().as_secs_f64());
}
/// A byte count as written exactly: whole MiB or KiB when it is one, else bytes (a limit read
/// as "1 MB" when it is 64 KiB would mislead whoever splits the file).
pub(super) fn exact_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}
