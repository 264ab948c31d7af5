//! Queries behind the original service's frontend calls (`api/compat.rs`): a user's uploads
//! with their latest job's status, the latest completed prediction, and the server secret that
//! signs download links; and the writes of `retainwise import-original`. Every user query is
//! scoped by the user's id.

use sqlx::FromRow;

use super::{Db, PredictionRow, PredictionStatus};
use crate::domain::{ObjectKey, OrgId, PredictionId, UploadId};

/// An upload of the original service, as `import-original` records it.
pub struct ImportedUpload<'a> {
    /// Its retainwise id (derived from the original's integer id).
    pub id: UploadId,
    /// Owner.
    pub user: &'a OrgId,
    /// The file name the client sent.
    pub filename: &'a str,
    /// Where its bytes are in retainwise's storage.
    pub object_key: &'a ObjectKey,
    /// Size in bytes.
    pub size_bytes: i64,
    /// When the original received it (epoch ms).
    pub created_at: i64,
}

/// A finished prediction of the original service, as `import-original` records it.
pub struct ImportedPrediction<'a> {
    /// The original's id (a UUID, kept).
    pub id: PredictionId,
    /// Owner.
    pub user: &'a OrgId,
    /// Its upload's retainwise id.
    pub upload: UploadId,
    /// `Completed` or `Failed`.
    pub status: PredictionStatus,
    /// Rows scored.
    pub rows_processed: i64,
    /// Where its results are in retainwise's storage (completed ones).
    pub result_key: Option<&'a ObjectKey>,
    /// Why it failed.
    pub error_message: Option<&'a str>,
    /// Summary JSON (row and risk counts) of completed ones, when their results could be read.
    pub summary: Option<&'a str>,
    /// The model named for it.
    pub model_id: &'a str,
    /// The original's `created_at` and `updated_at` (epoch ms).
    pub created_at: i64,
    /// The original's `updated_at`: when it finished.
    pub updated_at: i64,
}

/// One upload as `GET /api/uploads` lists it. Times are epoch milliseconds.
#[derive(Debug, Clone, FromRow)]
pub struct UploadListRow {
    /// Upload UUID.
    pub id: String,
    /// The file name the client sent.
    pub filename: String,
    /// Where the bytes are, relative to the storage root.
    pub object_key: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// When it was received.
    pub created_at: i64,
    /// Status of the newest prediction of this upload (`QUEUED` … `FAILED`); `None` for an
    /// upload no prediction refers to (a training file).
    pub status: Option<String>,
}

impl Db {
    /// `user`'s newest `limit` uploads, newest first, each with its newest prediction's status.
    pub async fn uploads_with_status(
        &self,
        user: &OrgId,
        limit: u32,
    ) -> Result<Vec<UploadListRow>, sqlx::Error> {
        sqlx::query_as::<_, UploadListRow>(
            "SELECT u.id, u.filename, u.object_key, u.size_bytes, u.created_at, \
             (SELECT p.status FROM predictions p WHERE p.upload_id = u.id AND p.user_id = $1 \
              ORDER BY p.queued_at DESC, p.id DESC LIMIT 1) AS status \
             FROM uploads u WHERE u.user_id = $1 ORDER BY u.created_at DESC, u.id DESC LIMIT $2",
        )
        .bind(user.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
    }

    /// `user`'s newest (by queue time, as the original's `created_at`) COMPLETED prediction
    /// with a stored result, or `None`.
    pub async fn latest_completed(
        &self,
        user: &OrgId,
    ) -> Result<Option<PredictionRow>, sqlx::Error> {
        let id: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM predictions WHERE user_id = $1 AND status = 'COMPLETED' \
             AND result_key IS NOT NULL AND deletion_id IS NULL ORDER BY queued_at DESC, id DESC LIMIT 1",
        )
        .bind(user.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some((id,)) = id else {
            return Ok(None);
        };
        match id.parse::<PredictionId>() {
            Ok(id) => self.prediction(user, id).await,
            Err(e) => Err(sqlx::Error::Decode(e.0.into())),
        }
    }

    /// The secret named `name`, created with `fresh` on first use. Every process on this
    /// database gets the same secret: the first insert wins, later ones change nothing.
    pub async fn signing_secret(&self, name: &str, fresh: &str) -> Result<String, sqlx::Error> {
        sqlx::query(
            "INSERT INTO signing_keys (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(crate::time::now_ms())
        .execute(self.pool())
        .await?;
        let (secret,): (String,) =
            sqlx::query_as("SELECT secret FROM signing_keys WHERE name = $1")
                .bind(name)
                .fetch_one(self.pool())
                .await?;
        Ok(secret)
    }

    /// True when an upload with this id is recorded (for anyone).
    pub async fn upload_recorded(&self, id: UploadId) -> Result<bool, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM uploads WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    /// True when a prediction with this id is recorded (for anyone).
    pub async fn prediction_recorded(&self, id: PredictionId) -> Result<bool, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM predictions WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(self.pool())
            .await?;
        Ok(n > 0)
    }

    /// Records an imported upload unless its id is already there; returns whether it wrote.
    pub async fn insert_imported_upload(
        &self,
        upload: &ImportedUpload<'_>,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO uploads (id, user_id, filename, object_key, size_bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(upload.id.to_string())
        .bind(upload.user.as_str())
        .bind(upload.filename)
        .bind(upload.object_key.as_str())
        .bind(upload.size_bytes)
        .bind(upload.created_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an imported finished prediction unless its id is already there; returns whether
    /// it wrote. Finished rows only: nothing would ever run a QUEUED one.
    pub async fn insert_imported_prediction(
        &self,
        p: &ImportedPrediction<'_>,
    ) -> Result<bool, sqlx::Error> {
        debug_assert!(p.status.is_terminal());
        let done = sqlx::query(
            "INSERT INTO predictions (id, user_id, upload_id, status, attempt, queued_at, \
             completed_at, updated_at, rows_processed, result_key, error_message, model_id, summary) \
             VALUES ($1, $2, $3, $4, 1, $5, $6, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
        )
        .bind(p.id.to_string())
        .bind(p.user.as_str())
        .bind(p.upload.to_string())
        .bind(p.status.as_str())
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(p.rows_processed)
        .bind(p.result_key.map(ObjectKey::as_str))
        .bind(p.error_message)
        .bind(p.model_id)
        .bind(p.summary)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
