//! Queries on `direct_uploads`: uploads declared before their bytes arrive (`POST
//! /api/uploads`). Every read a user causes is scoped by their id; the move from PENDING to
//! COMPLETED happens in the transaction that queues the prediction, and only once.

use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::domain::{OrgId, PredictionId, UploadId};
use crate::time::now_ms;

/// One direct upload as stored. Times are epoch milliseconds.
#[derive(Debug, Clone, FromRow)]
pub struct DirectUploadRow {
    /// The upload id (also the `uploads` row's id once completed).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The client's file name, sanitised.
    pub filename: String,
    /// Declared size in bytes.
    pub size_bytes: i64,
    /// Declared SHA-256, lower-case hex, when given.
    pub sha256: Option<String>,
    /// Bytes per part (the last part holds the rest).
    pub part_size: i64,
    /// Number of parts (1: one PUT of the whole file).
    pub parts: i64,
    /// The S3 multipart upload's id, for an upload in parts on S3.
    pub multipart_id: Option<String>,
    /// Reference date given at creation (`YYYY-MM-DD`).
    pub reference_date: Option<String>,
    /// Columns chosen by hand at creation (JSON), when any.
    pub column_mapping: Option<String>,
    /// The results' explanation columns chosen at creation: `top`, `none` or `all`.
    pub explanation: String,
    /// 1 when the prediction goes ahead of normal ones.
    pub high_priority: i64,
    /// `PENDING`, `COMPLETED`, `FAILED` or `EXPIRED`.
    pub status: String,
    /// The queued prediction, once COMPLETED.
    pub prediction_id: Option<String>,
    /// Why it FAILED, for its owner.
    pub error_message: Option<String>,
    /// When it was created.
    pub created_at: i64,
    /// When a PENDING upload stops being accepted and is swept.
    pub expires_at: i64,
}

/// What `POST /api/uploads` records.
pub struct NewDirectUpload<'a> {
    /// New upload id.
    pub id: UploadId,
    /// Owner.
    pub user: &'a OrgId,
    /// Sanitised file name.
    pub filename: &'a str,
    /// Declared size in bytes.
    pub size_bytes: u64,
    /// Declared SHA-256 (lower-case hex).
    pub sha256: Option<&'a str>,
    /// Bytes per part.
    pub part_size: u64,
    /// Number of parts.
    pub parts: u32,
    /// S3 multipart upload id.
    pub multipart_id: Option<&'a str>,
    /// Reference date (`YYYY-MM-DD`).
    pub reference_date: Option<&'a str>,
    /// Manual mapping JSON.
    pub column_mapping: Option<&'a str>,
    /// `top`, `none` or `all` ([`retainwise_model::Explain::as_str`]).
    pub explanation: &'a str,
    /// Queue ahead of normal jobs.
    pub high_priority: bool,
    /// Expiry, epoch milliseconds.
    pub expires_at: i64,
}

const COLUMNS: &str = "id, user_id, filename, size_bytes, sha256, part_size, parts, multipart_id, \
     reference_date, column_mapping, explanation, high_priority, status, prediction_id, error_message, created_at, expires_at";

impl Db {
    /// Records a new PENDING direct upload.
    pub async fn insert_direct_upload(&self, new: &NewDirectUpload<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO direct_uploads (id, user_id, filename, size_bytes, sha256, part_size, parts, \
             multipart_id, reference_date, column_mapping, explanation, high_priority, status, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'PENDING', $13, $14)",
        )
        .bind(new.id.to_string())
        .bind(new.user.as_str())
        .bind(new.filename)
        .bind(new.size_bytes as i64)
        .bind(new.sha256)
        .bind(new.part_size as i64)
        .bind(i64::from(new.parts))
        .bind(new.multipart_id)
        .bind(new.reference_date)
        .bind(new.column_mapping)
        .bind(new.explanation)
        .bind(i64::from(new.high_priority))
        .bind(now_ms())
        .bind(new.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// One of `user`'s direct uploads, or `None` (also when it belongs to someone else).
    pub async fn direct_upload(
        &self,
        user: &OrgId,
        id: UploadId,
    ) -> Result<Option<DirectUploadRow>, sqlx::Error> {
        sqlx::query_as::<_, DirectUploadRow>(&format!(
            "SELECT {COLUMNS} FROM direct_uploads WHERE id = $1 AND user_id = $2"
        ))
        .bind(id.to_string())
        .bind(user.as_str())
        .fetch_optional(self.pool())
        .await
    }

    /// Marks a PENDING direct upload FAILED with `why` (its bytes are wrong: a checksum that
    /// does not match, a file that cannot be read); later completions answer the same.
    pub async fn fail_direct_upload(
        &self,
        user: &OrgId,
        id: UploadId,
        why: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE direct_uploads SET status = 'FAILED', error_message = $1, completed_at = $2 \
             WHERE id = $3 AND user_id = $4 AND status = 'PENDING'",
        )
        .bind(why)
        .bind(now_ms())
        .bind(id.to_string())
        .bind(user.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// PENDING direct uploads whose time is up (at most `limit`), every user's: the sweeper's.
    pub async fn expired_direct_uploads(
        &self,
        limit: u32,
    ) -> Result<Vec<DirectUploadRow>, sqlx::Error> {
        sqlx::query_as::<_, DirectUploadRow>(&format!(
            "SELECT {COLUMNS} FROM direct_uploads WHERE status = 'PENDING' AND expires_at < $1 \
             ORDER BY expires_at LIMIT $2"
        ))
        .bind(now_ms())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
    }

    /// Marks a swept direct upload EXPIRED (only while still PENDING: a completion that won
    /// the race keeps its state).
    pub async fn expire_direct_upload(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE direct_uploads SET status = 'EXPIRED', completed_at = $1 \
             WHERE id = $2 AND status = 'PENDING'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Moves `user`'s PENDING direct upload `id` to COMPLETED with `prediction`, on `conn` (the
/// transaction that queues that prediction); false when it was no longer PENDING (another
/// completion won, or it expired), and the caller must roll back.
pub async fn claim_direct_upload(
    conn: &mut AnyConnection,
    user: &OrgId,
    id: UploadId,
    prediction: PredictionId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE direct_uploads SET status = 'COMPLETED', prediction_id = $1, completed_at = $2 \
         WHERE id = $3 AND user_id = $4 AND status = 'PENDING' AND expires_at >= $2",
    )
    .bind(prediction.to_string())
    .bind(now_ms())
    .bind(id.to_string())
    .bind(user.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
