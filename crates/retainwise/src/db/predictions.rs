//! Queries on `uploads` and `predictions`. The status column moves only along
//! `QUEUED → RUNNING → COMPLETED | FAILED` and `RUNNING → QUEUED` (a retry); these functions are
//! the only writers.

use std::fmt;

use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::domain::{ObjectKey, PredictionId, UploadId, UserId};
use crate::time::now_ms;

/// Where a prediction job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PredictionStatus {
    /// Waiting in the queue.
    Queued,
    /// A worker holds it.
    Running,
    /// Scored; results are ready.
    Completed,
    /// Gave up; `error_message` says why.
    Failed,
}

impl PredictionStatus {
    /// The stored text, e.g. `QUEUED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }

    /// `COMPLETED` or `FAILED`: the job will not run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    fn parse(s: &str) -> Self {
        match s {
            "RUNNING" => Self::Running,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

impl fmt::Display for PredictionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// `QUEUED`, `RUNNING`, `COMPLETED` or `FAILED`; see [`PredictionRow::status`].
    #[sqlx(rename = "status")]
    pub status_text: String,
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
    /// Model that scored (or will score) it.
    pub model_id: String,
    /// The reference date given with the upload (`YYYY-MM-DD`) for a model's date columns;
    /// `None`: the file's own latest date.
    pub reference_date: Option<String>,
}

impl PredictionRow {
    /// The parsed status.
    pub fn status(&self) -> PredictionStatus {
        PredictionStatus::parse(&self.status_text)
    }
}

/// What the API records when a file is accepted.
pub struct NewPrediction<'a> {
    /// New prediction id.
    pub prediction_id: PredictionId,
    /// New upload id.
    pub upload_id: UploadId,
    /// Owner.
    pub user_id: &'a UserId,
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
     p.queued_at, p.started_at, p.completed_at, p.rows_total, p.rows_processed, p.rows_rejected, p.summary, \
     p.result_key, p.report_key, p.error_message, p.model_id, p.reference_date \
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
    user: &UserId,
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

/// Records which queue message carries a prediction (same transaction as [`insert_queued`]).
pub async fn set_message_id(
    conn: &mut AnyConnection,
    id: PredictionId,
    message_id: &str,
) -> Result<(), sqlx::Error> {
    super::set_job_message_id(
        conn,
        super::JobTable::Predictions,
        &id.to_string(),
        message_id,
    )
    .await
}

impl Db {
    /// One of `user`'s predictions, or `None` (also when it belongs to someone else).
    pub async fn prediction(
        &self,
        user: &UserId,
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
        user: &UserId,
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
    pub async fn active_jobs(&self, user: &UserId) -> Result<u64, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM predictions WHERE user_id = $1 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(user.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(n as u64)
    }

    /// Takes the job for the worker holding `lease`: `QUEUED|RUNNING → RUNNING`, attempt + 1.
    /// A RUNNING row is taken over because the queue only re-delivers a message whose previous
    /// lease expired; a job FAILED by dead-lettering is taken too, because its message comes back
    /// only when someone redrives it. Returns the new attempt number, or `None` when the job is
    /// finished or absent.
    pub async fn start(
        &self,
        user: &UserId,
        id: PredictionId,
        lease: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let now = now_ms();
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE predictions SET status = 'RUNNING', attempt = attempt + 1, lease_token = $1, \
             started_at = $2, updated_at = $2, rows_processed = 0, error_message = NULL \
             WHERE id = $3 AND user_id = $4 AND (status IN ('QUEUED', 'RUNNING') \
             OR (status = 'FAILED' AND error_message LIKE 'dead-lettered:%')) RETURNING attempt",
        )
        .bind(lease)
        .bind(now)
        .bind(id.to_string())
        .bind(user.as_str())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(attempt,)| attempt))
    }

    /// Live progress: rows seen so far. Fenced by `lease`; returns false when the lease is lost.
    pub async fn progress(
        &self,
        id: PredictionId,
        lease: &str,
        rows: u64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE predictions SET rows_processed = $1, updated_at = $2 \
             WHERE id = $3 AND lease_token = $4 AND status = 'RUNNING'",
        )
        .bind(rows as i64)
        .bind(now_ms())
        .bind(id.to_string())
        .bind(lease)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the model that scored a running job when it is not the one recorded at queue
    /// time (a subscription file the SaaS baseline read). Fenced by `lease`.
    pub async fn set_model(
        &self,
        id: PredictionId,
        lease: &str,
        model_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE predictions SET model_id = $1 WHERE id = $2 AND lease_token = $3 AND status = 'RUNNING'",
        )
        .bind(model_id)
        .bind(id.to_string())
        .bind(lease)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `RUNNING → COMPLETED` with the counts, summary and result keys. Fenced by `lease`:
    /// returns false (and changes nothing) when another worker took the job over.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete(
        &self,
        id: PredictionId,
        lease: &str,
        rows_total: u64,
        rows_scored: u64,
        rows_rejected: u64,
        summary_json: &str,
        result_key: &ObjectKey,
        report_key: &ObjectKey,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE predictions SET status = 'COMPLETED', completed_at = $1, updated_at = $1, rows_total = $2, \
             rows_processed = $3, rows_rejected = $4, summary = $5, result_key = $6, report_key = $7, \
             error_message = NULL, lease_token = NULL \
             WHERE id = $8 AND lease_token = $9 AND status = 'RUNNING'",
        )
        .bind(now)
        .bind(rows_total as i64)
        .bind(rows_scored as i64)
        .bind(rows_rejected as i64)
        .bind(summary_json)
        .bind(result_key.as_str())
        .bind(report_key.as_str())
        .bind(id.to_string())
        .bind(lease)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `RUNNING → FAILED` with a message a person can act on. Fenced by `lease`.
    pub async fn fail(
        &self,
        id: PredictionId,
        lease: &str,
        message: &str,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE predictions SET status = 'FAILED', completed_at = $1, updated_at = $1, error_message = $2, \
             lease_token = NULL WHERE id = $3 AND lease_token = $4 AND status = 'RUNNING'",
        )
        .bind(now)
        .bind(message)
        .bind(id.to_string())
        .bind(lease)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `RUNNING → QUEUED` after a transient error; the message will be delivered again.
    /// Fenced by `lease`.
    pub async fn requeue(
        &self,
        id: PredictionId,
        lease: &str,
        error: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE predictions SET status = 'QUEUED', updated_at = $1, error_message = $2, lease_token = NULL \
             WHERE id = $3 AND lease_token = $4 AND status = 'RUNNING'",
        )
        .bind(now_ms())
        .bind(format!("retrying after: {error}"))
        .bind(id.to_string())
        .bind(lease)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a job whose message was dead-lettered at `dead_at_ms` as FAILED, whoever last held
    /// it. A finished job, or one touched after the message died (it was redriven and started
    /// again), is left alone. Returns true when a row changed.
    pub async fn fail_dead_lettered(
        &self,
        id: PredictionId,
        user: &UserId,
        reason: &str,
        dead_at_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        self.fail_dead_lettered_in(
            super::JobTable::Predictions,
            &id.to_string(),
            user,
            reason,
            dead_at_ms,
        )
        .await
    }
}
