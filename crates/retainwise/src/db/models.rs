//! Queries on `models`, `active_models` and `model_trainings`: the model registry and its
//! training jobs. A training's status moves through the same lifecycle statements as a
//! prediction's ([`super::JobRow`]), every worker write fenced by the lease token.
//!
//! Visibility: a user sees the operator's models (no owner), the models they own, and any model a
//! training of theirs produced (a content-addressed id can be produced by two users).

use serde::Serialize;
use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::domain::{ModelId, ObjectKey, OrgId, TrainingId, UploadId};
use crate::time::now_ms;

/// The `active_models` scope of the installation-wide default.
pub const EVERYONE: &str = "*";

/// One registered model. Times are epoch milliseconds.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ModelRow {
    /// The model id (also its `model_version` in scored rows).
    pub id: String,
    /// The model card, JSON.
    pub card: String,
    /// When it was registered.
    pub created_at: i64,
    /// Who trained it; `None` for the operator's models.
    pub owner_id: Option<String>,
    /// Where its artifact is in object storage; `None` for the model the process started with.
    pub artifact_key: Option<String>,
}

/// One training job, as stored. Times are epoch milliseconds.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct TrainingRow {
    /// Training UUID.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// The labelled upload it learns from.
    pub upload_id: String,
    /// Where the training is in its life.
    pub status: super::JobStatus,
    /// How many times a worker has started it.
    pub attempt: i64,
    /// Label column.
    pub label: String,
    /// Customer id column, when given.
    pub id_column: Option<String>,
    /// Column whose equal values keep their rows in one cross-validation fold, when given.
    pub group_column: Option<String>,
    /// Column holding each row's own observation date, when given.
    pub observation_date_column: Option<String>,
    /// Model name (first part of the model id).
    pub name: String,
    /// When it was queued.
    pub queued_at: i64,
    /// When the latest attempt started.
    pub started_at: Option<i64>,
    /// When it finished.
    pub completed_at: Option<i64>,
    /// The model it produced, once COMPLETED.
    pub model_id: Option<String>,
    /// Why it failed (or the last transient error while retrying).
    pub error_message: Option<String>,
}

/// What a new training is made of (see [`insert_training`]).
#[derive(Debug)]
pub struct NewTraining<'a> {
    /// Its id.
    pub training_id: TrainingId,
    /// The upload's id.
    pub upload_id: UploadId,
    /// Owner.
    pub user_id: &'a OrgId,
    /// The upload's file name.
    pub filename: &'a str,
    /// Where the upload's bytes are.
    pub object_key: &'a ObjectKey,
    /// Size of the upload in bytes.
    pub size_bytes: u64,
    /// Label column.
    pub label: &'a str,
    /// Customer id column.
    pub id_column: Option<&'a str>,
    /// Group column (several rows per customer).
    pub group_column: Option<&'a str>,
    /// Observation date column (each row's own reference date).
    pub observation_date_column: Option<&'a str>,
    /// Model name.
    pub name: &'a str,
}

const MODEL_COLUMNS: &str = "m.id, m.card, m.created_at, m.owner_id, m.artifact_key";
const TRAINING_COLUMNS: &str =
    "id, user_id, upload_id, status, attempt, label, id_column, group_column, observation_date_column, name, \
     queued_at, started_at, completed_at, model_id, error_message";
/// `m` is visible to the user bound as `$1`.
const VISIBLE: &str =
    "(m.owner_id IS NULL OR m.owner_id = $1 OR EXISTS (SELECT 1 FROM model_trainings t \
     WHERE t.user_id = $1 AND t.model_id = m.id AND t.status = 'COMPLETED'))";

/// Inserts the upload and its QUEUED training on `conn` (the caller's transaction, which also
/// carries the queue message).
pub async fn insert_training(
    conn: &mut AnyConnection,
    new: &NewTraining<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    super::predictions::insert_upload(
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
        "INSERT INTO model_trainings (id, user_id, upload_id, status, label, id_column, group_column, observation_date_column, name, queued_at, updated_at) \
         VALUES ($1, $2, $3, 'QUEUED', $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(new.training_id.to_string())
    .bind(new.user_id.as_str())
    .bind(new.upload_id.to_string())
    .bind(new.label)
    .bind(new.id_column)
    .bind(new.group_column)
    .bind(new.observation_date_column)
    .bind(new.name)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Db {
    /// Registers a model: `owner` `None` for the operator's. An id already registered keeps its
    /// first owner and gets the artifact key if it had none (ids are content hashes, so the
    /// artifact is the same). Returns true when the row is new.
    pub async fn register_model(
        &self,
        id: &ModelId,
        card_json: &str,
        owner: Option<&OrgId>,
        artifact: Option<&ObjectKey>,
    ) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(
            "INSERT INTO models (id, card, created_at, owner_id, artifact_key) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(card_json)
        .bind(now_ms())
        .bind(owner.map(OrgId::as_str))
        .bind(artifact.map(ObjectKey::as_str))
        .execute(self.pool())
        .await?;
        if inserted.rows_affected() == 0 {
            if let Some(key) = artifact {
                sqlx::query(
                    "UPDATE models SET artifact_key = $1 WHERE id = $2 AND artifact_key IS NULL",
                )
                .bind(key.as_str())
                .bind(id.as_str())
                .execute(self.pool())
                .await?;
            }
        }
        Ok(inserted.rows_affected() == 1)
    }

    /// The models `user` may use (all models when `user` is `None`), oldest first.
    pub async fn models(&self, user: Option<&OrgId>) -> Result<Vec<ModelRow>, sqlx::Error> {
        match user {
            Some(user) => {
                sqlx::query_as(&format!(
                "SELECT {MODEL_COLUMNS} FROM models m WHERE {VISIBLE} ORDER BY m.created_at, m.id"
            ))
                .bind(user.as_str())
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {MODEL_COLUMNS} FROM models m ORDER BY m.created_at, m.id"
                ))
                .fetch_all(self.pool())
                .await
            }
        }
    }

    /// One model `user` may use (any model when `user` is `None`), or `None`.
    pub async fn model(
        &self,
        user: Option<&OrgId>,
        id: &ModelId,
    ) -> Result<Option<ModelRow>, sqlx::Error> {
        match user {
            Some(user) => {
                sqlx::query_as(&format!(
                    "SELECT {MODEL_COLUMNS} FROM models m WHERE {VISIBLE} AND m.id = $2"
                ))
                .bind(user.as_str())
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {MODEL_COLUMNS} FROM models m WHERE m.id = $1"
                ))
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await
            }
        }
    }

    /// The model activated for `user` (their own choice first, then the installation-wide
    /// one), or `None` when neither is set.
    pub async fn active_model(&self, user: &OrgId) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT model_id FROM active_models WHERE scope = $1 OR scope = $2 \
             ORDER BY CASE WHEN scope = $2 THEN 1 ELSE 0 END LIMIT 1",
        )
        .bind(user.as_str())
        .bind(EVERYONE)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// The installation-wide active model, if one was set.
    pub async fn default_active_model(&self) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT model_id FROM active_models WHERE scope = $1")
                .bind(EVERYONE)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Makes `model` the active one for `scope` (a user id, or [`EVERYONE`]). The caller checks
    /// that the model exists and is visible. With `actor`, the audit log's entry is written in
    /// the same transaction.
    pub async fn activate_model(
        &self,
        scope: &str,
        model: &ModelId,
        actor: Option<&crate::audit::Actor>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO active_models (scope, model_id, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (scope) DO UPDATE SET model_id = excluded.model_id, updated_at = excluded.updated_at",
        )
        .bind(scope)
        .bind(model.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if let Some(actor) = actor {
            use crate::audit::{record, Action, Outcome};
            let model = Some(("model", model.as_str()));
            record(&mut *tx, actor, Action::ModelActivate, model, &Outcome::Ok).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One of `user`'s trainings, or `None` (also when it belongs to someone else).
    pub async fn training(
        &self,
        user: &OrgId,
        id: TrainingId,
    ) -> Result<Option<TrainingRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {TRAINING_COLUMNS} FROM model_trainings WHERE id = $1 AND user_id = $2"
        ))
        .bind(id.to_string())
        .bind(user.as_str())
        .fetch_optional(self.pool())
        .await
    }

    /// `user`'s latest `limit` trainings, newest first.
    pub async fn trainings(
        &self,
        user: &OrgId,
        limit: u32,
    ) -> Result<Vec<TrainingRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {TRAINING_COLUMNS} FROM model_trainings WHERE user_id = $1 \
             ORDER BY queued_at DESC, id DESC LIMIT $2"
        ))
        .bind(user.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
    }

    /// How many of `user`'s trainings are QUEUED or RUNNING.
    pub async fn active_trainings(&self, user: &OrgId) -> Result<u64, sqlx::Error> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM model_trainings WHERE user_id = $1 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(user.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(n as u64)
    }
}
