//! The deletion kinds: `delete_prediction` removes one prediction's files and rows and leaves
//! its tombstone; `delete_organisation` removes everything an organisation stored. Both are rows
//! of `deletions` (the lifecycle columns of every job table), queued with their audit entry in
//! the request's transaction (`api/deletion.rs`, `retainwise org delete`). Their steps
//! (`crate::deletion`) are idempotent, so an attempt that dies midway is run again from the
//! start by the queue's retry and ends in the same state; COMPLETED records what was removed
//! (`removed`, JSON), which is what a person verifies.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use tracing::info;

use super::kind::{Checks, Events, Job, JobContext, LogId};
use super::JobError;
use crate::app::App;
use crate::audit::{self, Action, Actor, Outcome};
use crate::db::{JobRow, JobStatus, JobTable, Value as Column};
use crate::deletion::{self, DeletionError, Removed};
use crate::domain::{OrgId, PredictionId};

/// The table of deletions.
pub const TABLE: JobTable = JobTable::Named("deletions");

/// The message of a deletion: which row, and the organisation it deletes in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeletionMessage {
    /// The deletion's id (a UUID).
    pub deletion_id: String,
    /// The organisation.
    pub user_id: String,
}

impl DeletionMessage {
    fn owner(&self) -> Option<(String, OrgId)> {
        let id: uuid::Uuid = self.deletion_id.parse().ok()?;
        Some((id.to_string(), self.user_id.parse().ok()?))
    }

    fn checked(&self) -> Result<(String, OrgId), String> {
        self.owner().ok_or_else(|| {
            format!(
                "deletion message names deletion {:?} of organisation {:?}: expected a UUID and a \
                 valid organisation id",
                self.deletion_id, self.user_id
            )
        })
    }
}

/// Queues a deletion of `target` (`prediction` or `organisation`) `target_id` in `org`, asked
/// by `by`, on `conn` (the caller's transaction, which also writes the audit entry). Returns the
/// deletion's id.
///
/// Errors: the database's or the queue's.
pub async fn queue(
    app: &App,
    conn: &mut AnyConnection,
    org: &OrgId,
    target: &str,
    target_id: &str,
    by: &str,
) -> Result<String, crate::http::ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::time::now_ms();
    sqlx::query(
        "INSERT INTO deletions (id, user_id, target, target_id, requested_by, status, queued_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, $6)",
    )
    .bind(&id)
    .bind(org.as_str())
    .bind(target)
    .bind(target_id)
    .bind(by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let message = DeletionMessage {
        deletion_id: id.clone(),
        user_id: org.to_string(),
    };
    let priority = retainwise_queue::Priority::Normal;
    if target == "prediction" {
        super::enqueue::<DeletePrediction>(app, conn, &message, priority).await?;
    } else {
        super::enqueue::<DeleteOrganisation>(app, conn, &message, priority).await?;
    }
    Ok(id)
}

/// A deletion's row as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct DeletionRow {
    /// Its id.
    pub id: String,
    /// `prediction` or `organisation`.
    pub target: String,
    /// The prediction's or organisation's id.
    pub target_id: String,
    /// Who asked (a user id, or the operator).
    pub requested_by: String,
    /// Where the job is.
    pub status: JobStatus,
    /// When it was asked, epoch ms.
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub queued_at: i64,
    /// When it finished, epoch ms.
    #[serde(serialize_with = "crate::time::serialize_rfc3339_opt")]
    pub completed_at: Option<i64>,
    /// Why it last failed.
    pub error_message: Option<String>,
    /// What it removed (JSON), once COMPLETED.
    pub removed: Option<String>,
}

/// Deletion `id` of `org`, or `None`.
pub async fn find(
    pool: &sqlx::AnyPool,
    org: &OrgId,
    id: &str,
) -> Result<Option<DeletionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, target, target_id, requested_by, status, queued_at, completed_at, \
         error_message, removed FROM deletions WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(org.as_str())
    .fetch_optional(pool)
    .await
}

/// One deletion of one prediction, validated.
pub struct DeletePrediction {
    id: String,
    org: OrgId,
}

/// One deletion of a whole organisation, validated.
pub struct DeleteOrganisation {
    id: String,
    org: OrgId,
}

impl From<DeletionError> for JobError {
    fn from(e: DeletionError) -> Self {
        match e {
            DeletionError::Storage(e) => JobError::Storage(e),
            DeletionError::Database(e) => JobError::Database(e),
        }
    }
}

/// The row's target and who asked; `None` when the row is gone.
async fn target(app: &App, id: &str, org: &OrgId) -> Result<Option<(String, String)>, JobError> {
    Ok(sqlx::query_as(
        "SELECT target_id, requested_by FROM deletions WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(org.as_str())
    .fetch_optional(app.db.pool())
    .await?)
}

fn removed_json(removed: &Removed) -> Vec<(&'static str, Column)> {
    let text = serde_json::to_string(removed).unwrap_or_else(|_| "{}".to_owned());
    vec![("removed", Column::Text(text))]
}

impl Job for DeletePrediction {
    const KIND: &'static str = "delete_prediction";
    const LOG_ID: LogId = LogId::Job;
    const EVENTS: Events = Events {
        started: "deletion_started",
        failed: "deletion_failed",
        status_updated: None,
    };
    type Payload = DeletionMessage;
    type Output = Removed;

    fn validate(payload: DeletionMessage, _checks: &Checks<'_>) -> Result<Self, String> {
        let (id, org) = payload.checked()?;
        Ok(Self { id, org })
    }

    fn record_named(payload: &DeletionMessage) -> Option<JobRow> {
        let (id, org) = payload.owner()?;
        Some(JobRow::new(TABLE, id, &org))
    }

    fn record(&self) -> JobRow {
        JobRow::new(TABLE, self.id.clone(), &self.org)
    }

    async fn run(&self, ctx: &JobContext) -> Result<Removed, JobError> {
        let app = &ctx.app;
        let (target, by) = target(app, &self.id, &self.org)
            .await?
            .ok_or(JobError::Stopped)?;
        let prediction: PredictionId = target
            .parse()
            .map_err(|e: crate::domain::DomainError| JobError::Rejected(e.0))?;
        let upload: Option<(String,)> =
            sqlx::query_as("SELECT upload_id FROM predictions WHERE id = $1 AND user_id = $2")
                .bind(prediction.to_string())
                .bind(self.org.as_str())
                .fetch_optional(app.db.pool())
                .await?;
        let Some((upload,)) = upload else {
            // Removed already with its organisation: nothing is left to remove.
            return Ok(Removed::default());
        };
        Ok(deletion::delete_prediction(app, &self.org, prediction, &upload, &by).await?)
    }

    fn completed_columns(&self, removed: &Removed) -> Vec<(&'static str, Column)> {
        removed_json(removed)
    }

    fn log_completed(&self, removed: &Removed, took: Duration) {
        info!(job_id = %self.id, kind = Self::KIND, objects = removed.objects, rows = removed.rows.values().sum::<u64>(), duration_ms = took.as_millis() as u64, "prediction_deleted");
    }
}

impl Job for DeleteOrganisation {
    const KIND: &'static str = "delete_organisation";
    const LOG_ID: LogId = LogId::Job;
    const EVENTS: Events = Events {
        started: "deletion_started",
        failed: "deletion_failed",
        status_updated: None,
    };
    type Payload = DeletionMessage;
    type Output = Removed;

    fn validate(payload: DeletionMessage, _checks: &Checks<'_>) -> Result<Self, String> {
        let (id, org) = payload.checked()?;
        Ok(Self { id, org })
    }

    fn record_named(payload: &DeletionMessage) -> Option<JobRow> {
        let (id, org) = payload.owner()?;
        Some(JobRow::new(TABLE, id, &org))
    }

    fn record(&self) -> JobRow {
        JobRow::new(TABLE, self.id.clone(), &self.org)
    }

    async fn run(&self, ctx: &JobContext) -> Result<Removed, JobError> {
        Ok(deletion::delete_organisation(&ctx.app, &self.org, &self.id).await?)
    }

    fn completed_columns(&self, removed: &Removed) -> Vec<(&'static str, Column)> {
        removed_json(removed)
    }

    /// The audit log's closing entry, `organisation.deleted`, committed with COMPLETED.
    async fn followups(
        _app: &App,
        record: &JobRow,
        conn: &mut AnyConnection,
        status: JobStatus,
    ) -> Result<(), sqlx::Error> {
        if status != JobStatus::Completed {
            return Ok(());
        }
        let actor = Actor {
            org: Some(record.user().clone()),
            user: Some("worker (deletion job)".to_owned()),
            ..Actor::default()
        };
        let deletion = Some(("deletion", record.id()));
        audit::record(conn, &actor, Action::OrgDeleted, deletion, &Outcome::Ok).await
    }

    fn log_completed(&self, removed: &Removed, took: Duration) {
        info!(job_id = %self.id, kind = Self::KIND, org = self.org.as_str(), objects = removed.objects, rows = removed.rows.values().sum::<u64>(), duration_ms = took.as_millis() as u64, "organisation_deleted");
    }
}
