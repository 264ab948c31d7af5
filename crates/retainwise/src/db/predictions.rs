//! Queries on `uploads` and `predictions`. The status column moves only through the life
//! cycle's statements ([`super::JobRow`]); this file inserts, reads and writes progress.

use sqlx::{AnyConnection, FromRow};

use super::{Db, JobStatus};
use crate::domain::{ObjectKey, OrgId, PredictionId, UploadId};
use crate::time::now_ms;

/// One prediction with its upload's file name, as stored. Times are epoch milliseconds.
#[derive(Debug, Clone, FromRow)]
pub struct PredictionRow {
    /// Prediction UUID.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Upload UUID.
    pub upload_id: String,
    /// The upload's original file name.
    pub filename: String,
    /// Where the job is in its life.
    pub status: JobStatus,
    /// How many times a worker has started it.
    pub attempt: i64,
    /// The queue message that carries it.
    pub queue_message_id: Option<String>,
    /// When it was queued.
    pub queued_at: i64,
    /// When the latest attempt started.
    pub started_at: Option<i64>,
    /// When it completed or failed.
    pub completed_at: Option<i64>,
    /// Data records in the file (known once scored).
    pub rows_total: Option<i64>,
    /// Rows scored so far (live while running).
    pub rows_processed: i64,
    /// Rows that could not be scored.
    pub rows_rejected: i64,
    /// Summary JSON (risk counts, mean probability, row issues).
    pub summary: Option<String>,
    /// Object key of the scored CSV.
    pub result_key: Option<String>,
    /// Object key of the validation report.
    pub report_key: Option<String>,
    /// Why it failed, in words a person can act on.
    pub error_message: Option<String>,
    /// When its queue message was dead-lettered (it failed on its last allowed delivery); a
    /// redrive runs it again.
    pub dead_lettered_at: Option<i64>,
    /// Model that scored (or will score) it.
    pub model_id: String,
    /// The reference date given with the upload (`YYYY-MM-DD`) for a model's date columns;
    /// `None`: the file's own latest date.
    pub reference_date: Option<String>,
    /// The columns the uploader chose by hand ([`retainwise_model::ManualMapping`] as JSON),
    /// when any were sent.
    pub column_mapping: Option<String>,
    /// The explanation setting sent with the upload (`none` or `all`); `None`: the default,
    /// `top` ([`retainwise_model::Explain`]).
    pub explanation: Option<String>,
    /// Pieces the file was cut into, when it is scored by many workers (`None`: one job).
    pub chunks_total: Option<i64>,
    /// Pieces scored so far.
    pub chunks_done: i64,
    /// When its row last changed (a cancelled job: when it was cancelled).
    pub updated_at: i64,
    /// The deletion job asked for it, once one was (`deletions`).
    pub deletion_id: Option<String>,
    /// When its deletion finished: every file and row of it is gone, this row is a tombstone.
    pub deleted_at: Option<i64>,
    /// Who asked for the deletion.
    pub deleted_by: Option<String>,
    /// When retention deleted its uploaded file.
    pub upload_deleted_at: Option<i64>,
    /// The days the upload was kept then.
    pub upload_retention_days: Option<i64>,
    /// When retention deleted its results and report.
    pub results_deleted_at: Option<i64>,
    /// The days the results were kept then.
    pub results_retention_days: Option<i64>,
    /// Customers erased from its results since it completed: the version of its results
    /// object (the customers index is cached by it).
    pub erased_customers: i64,
}

impl PredictionRow {
    /// Its status.
    pub fn status(&self) -> JobStatus {
        self.status
    }

    /// When it finished (COMPLETED or FAILED: `completed_at`; CANCELLED: when it was
    /// cancelled), the time retention counts from; `None` while it has not.
    pub fn finished_at(&self) -> Option<i64> {
        match self.status {
            JobStatus::Cancelled => Some(self.updated_at),
            s if s.is_terminal() => self.completed_at,
            _ => None,
        }
    }

    /// Why its results and report can no longer be read, in a sentence naming the day
    /// (`prediction … was deleted on 2026-12-07 by user_1`, `… being deleted`, `results and
    /// report deleted on … (retention: 365 days)`); `None` while they are kept.
    pub fn results_gone(&self) -> Option<String> {
        if let Some(at) = self.deleted_at {
            return Some(format!(
                "prediction {} was deleted on {} by {}",
                self.id,
                crate::time::utc_day(at),
                self.deleted_by.as_deref().unwrap_or("its owner")
            ));
        }
        if self.deletion_id.is_some() {
            return Some(format!("prediction {} is being deleted", self.id));
        }
        self.results_deleted_at.map(|at| {
            format!(
                "prediction {}'s results and report deleted on {} (retention: {} days)",
                self.id,
                crate::time::utc_day(at),
                self.results_retention_days.unwrap_or_default()
            )
        })
    }
}

/// What the API records when a file is accepted.
pub struct NewPrediction<'a> {
    /// New prediction id.
    pub prediction_id: PredictionId,
    /// New upload id.
    pub upload_id: UploadId,
    /// Owner.
    pub user_id: &'a OrgId,
    /// The file name the client sent.
    pub filename: &'a str,
    /// Where the bytes were stored.
    pub object_key: &'a ObjectKey,
    /// Size of the upload in bytes.
    pub size_bytes: u64,
    /// Model that will score it.
    pub model_id: &'a str,
    /// The reference date for date columns (`YYYY-MM-DD`), when the client gave one.
    pub reference_date: Option<&'a str>,
}

const SELECT: &str = "SELECT p.id, p.user_id, p.upload_id, u.filename, p.status, p.attempt, p.queue_message_id, \
     p.queued_at, p.started_at, p.completed_at, p.rows_total, \
     CASE WHEN p.chunks_total IS NOT NULL AND p.status = 'RUNNING' THEN \
     (SELECT CAST(COALESCE(SUM(c.rows_processed), 0) AS BIGINT) FROM prediction_chunks c WHERE c.prediction_id = p.id) \
     ELSE p.rows_processed END AS rows_processed, p.rows_rejected, p.summary, \
     p.result_key, p.report_key, p.error_message, p.model_id, p.reference_date, p.column_mapping, p.explanation, p.dead_lettered_at, \
     p.chunks_total, p.chunks_done, p.updated_at, p.deletion_id, p.deleted_at, p.deleted_by, \
     p.upload_deleted_at, p.upload_retention_days, p.results_deleted_at, p.results_retention_days, \
     p.erased_customers \
     FROM predictions p JOIN uploads u ON u.id = p.upload_id";

/// Inserts the upload and its QUEUED prediction on `conn` (the caller's transaction, which
/// also carries the queue message).
pub async fn insert_queued(
    conn: &mut AnyConnection,
    new: &NewPrediction<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    insert_upload(
        conn,
        new.upload_id,
        new.user_id,
        new.filename,
        new.object_key,
        new.size_bytes,
        now,
    )
    .await?;
    sqlx::query(
        "INSERT INTO predictions (id, user_id, upload_id, status, queued_at, updated_at, model_id, reference_date) \
         VALUES ($1, $2, $3, 'QUEUED', $4, $4, $5, $6)",
    )
    .bind(new.prediction_id.to_string())
    .bind(new.user_id.as_str())
    .bind(new.upload_id.to_string())
    .bind(now)
    .bind(new.model_id)
    .bind(new.reference_date)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts an upload's row on `conn` (the caller's transaction, which also inserts the job that
/// refers to it).
pub(super) async fn insert_upload(
    conn: &mut AnyConnection,
    id: UploadId,
    user: &OrgId,
    filename: &str,
    key: &ObjectKey,
    size_bytes: u64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO uploads (id, user_id, filename, object_key, size_bytes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(user.as_str())
    .bind(filename)
    .bind(key.as_str())
    .bind(size_bytes as i64)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Db {
    /// One of `user`'s predictions, or `None` (also when it belongs to someone else).
    pub async fn prediction(
        &self,
        user: &OrgId,
        id: PredictionId,
    ) -> Result<Option<PredictionRow>, sqlx::Error> {
        sqlx::query_as::<_, PredictionRow>(&format!("{SELECT} WHERE p.id = $1 AND p.user_id = $2"))
            .bind(id.to_string())
            .bind(user.as_str())
            .fetch_optional(self.pool())
            .await
    }

    /// A page of `user`'s predictions, newest first, and how many they have in all.
    pub async fn predictions(
        &self,
        user: &OrgId,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<PredictionRow>, u64), sqlx::Error> {
        let rows = sqlx::query_as::<_, PredictionRow>(&format!(
            "{SELECT} WHERE p.user_id = $1 ORDER BY p.queued_at DESC, p.id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(user.as_str())
        .bind(i64::from(limit))
        // Past the last row either way; never a wrapped negative.
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        let (total,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM predictions WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_one(self.pool())
                .await?;
        Ok((rows, total as u64))
    }

    /// How many of `user`'s jobs are QUEUED or RUNNING.
    pub async fn active_jobs(&self, user: &OrgId) -> Result<u64, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM predictions WHERE user_id = $1 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(user.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(n as u64)
    }
}

impl Db {
    /// Cancels one of `user`'s predictions (see [`super::JobRow::cancel`]): a QUEUED one never
    /// starts, a RUNNING one stops at its next batch and records nothing.
    pub async fn cancel_prediction(
        &self,
        user: &OrgId,
        id: PredictionId,
    ) -> Result<super::Cancelled, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        let outcome = super::JobRow::prediction(id, user)
            .cancel(&mut conn)
            .await?;
        // Logged here, once, whichever door (API, page, command line) the cancel came through.
        if matches!(outcome, super::Cancelled::Now) {
            tracing::info!(prediction_id = %id, status = "CANCELLED", "prediction_status_updated");
        }
        Ok(outcome)
    }

    /// Who owns prediction `id`, for the operator's commands (not scoped: the operator acts on
    /// every user's jobs). `None` when there is no such prediction.
    pub async fn prediction_owner(&self, id: PredictionId) -> Result<Option<OrgId>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT user_id FROM predictions WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(user,)| user.parse().ok()))
    }
}
