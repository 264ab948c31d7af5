//! Queries behind the original service's frontend calls (`api/compat.rs`): a user's uploads
//! with their latest job's status, the latest completed prediction, and the server secret that
//! signs download links. Every user query is scoped by the user's id.

use sqlx::FromRow;

use super::{Db, PredictionRow};
use crate::domain::{PredictionId, UserId};

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
        user: &UserId,
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
        user: &UserId,
    ) -> Result<Option<PredictionRow>, sqlx::Error> {
        let id: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM predictions WHERE user_id = $1 AND status = 'COMPLETED' \
             AND result_key IS NOT NULL ORDER BY queued_at DESC, id DESC LIMIT 1",
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
}
