//! Deleting and keeping, for owners: `DELETE /api/predictions/{id}` and `DELETE /api/org`
//! (`{"confirm": "<the organisation's id>"}`) queue a deletion job and answer 202 with it;
//! `GET /api/deletions/{id}` follows it (what it removed, once COMPLETED); `GET` / `PUT
//! /api/org/retention` (`{"uploads_days", "results_days"}`) read and set how long files are
//! kept. Each change writes its audit entry in the transaction that makes it. The operator's
//! `retainwise org delete` and `retainwise org retention` go through the same functions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::predictions::{find, parse_id, prediction_json};
use super::ApiError;
use crate::app::App;
use crate::audit::{self, Action, Actor, Outcome};
use crate::config::Retention;
use crate::domain::OrgId;
use crate::http::{AuditActor, Caller};
use crate::time::now_ms;
use crate::worker::deletion;

/// `DELETE /api/predictions/{id}`: 202 with the deletion job and the prediction (its
/// `deleted.status` DELETING). 404 for an id not in the caller's organisation; 409 while the
/// prediction is QUEUED or RUNNING (cancel it first), was cancelled less than a lease ago (its
/// worker may still be stopping), or is deleted or being deleted already.
pub async fn delete_prediction(
    State(app): State<App>,
    Caller(me): Caller,
    AuditActor(actor): AuditActor,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pid = parse_id(&id)?;
    let row = find(&app, &me.org, &id).await?;
    if let Some(gone) = row.results_gone().filter(|_| row.deletion_id.is_some()) {
        return Err(ApiError::Conflict(gone));
    }
    if !row.status().is_terminal() {
        return Err(ApiError::Conflict(format!(
            "prediction {pid} is {}; cancel it first (POST /api/predictions/{pid}/cancel), then delete it",
            row.status()
        )));
    }
    let lease_ms = app.config.visibility_timeout.as_millis() as i64;
    let settled_at = row.updated_at + lease_ms;
    if row.status() == crate::db::JobStatus::Cancelled && settled_at > now_ms() {
        return Err(ApiError::Conflict(format!(
            "prediction {pid} was cancelled less than {} s ago and its worker may still be \
             stopping; delete it after {}",
            lease_ms / 1000,
            crate::time::rfc3339(settled_at)
        )));
    }
    let mut tx = app.db.pool().begin().await?;
    let by = me.user.as_str();
    let deletion_id = deletion::queue(&app, &mut tx, &me.org, "prediction", &id, by).await?;
    let marked = sqlx::query(
        "UPDATE predictions SET deletion_id = $1 WHERE id = $2 AND user_id = $3 \
         AND deletion_id IS NULL AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')",
    )
    .bind(&deletion_id)
    .bind(&id)
    .bind(me.org.as_str())
    .execute(&mut *tx)
    .await?;
    if marked.rows_affected() != 1 {
        // Another request marked it (or it was redriven) meanwhile: nothing is queued.
        return Err(ApiError::Conflict(format!(
            "prediction {pid} changed while its deletion was being queued; look at it again"
        )));
    }
    let record = Some(("prediction", id.as_str()));
    audit::record(
        &mut *tx,
        &actor,
        Action::PredictionDelete,
        record,
        &Outcome::Ok,
    )
    .await?;
    tx.commit().await?;
    app.queue.wake();
    tracing::info!(org = me.org.as_str(), by, prediction_id = %pid, deletion_id, "prediction_delete_queued");
    let row = find(&app, &me.org, &id).await?;
    let (days, _) = crate::retention::of(app.db.pool(), &me.org, app.config.retention).await?;
    let job = deletion::find(app.db.pool(), &me.org, &deletion_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "deletion": job,
            "prediction": prediction_json(&row, false, days),
        })),
    ))
}

/// `GET /api/deletions/{id}`: one of the organisation's deletion jobs: status, who asked, and
/// `removed` (objects, and rows per table) once COMPLETED. 404 for another organisation's.
pub async fn show(
    State(app): State<App>,
    Caller(me): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = deletion::find(app.db.pool(), &me.org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("deletion {id} not found")))?;
    let removed = job
        .removed
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok());
    let mut value = serde_json::to_value(&job).map_err(|e| ApiError::Internal(e.into()))?;
    value["removed"] = removed.unwrap_or(Value::Null);
    Ok(Json(json!({ "success": true, "deletion": value })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirm {
    confirm: String,
}

/// Why an organisation's deletion was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrgDeleteRefusal {
    /// No such organisation.
    #[error("organisation {0} not found")]
    Missing(String),
    /// Jobs are still queued, running or stopping.
    #[error("organisation {org} has {active} job(s) queued, running or cancelled less than {lease_s} s ago; cancel them (or let them finish) and delete it then")]
    Busy {
        /// The organisation.
        org: String,
        /// How many.
        active: i64,
        /// The lease, in seconds.
        lease_s: i64,
    },
    /// Its deletion is queued already.
    #[error("organisation {0} is being deleted already (deletion {1})")]
    Already(String, String),
    /// The database or the queue failed.
    #[error(transparent)]
    Internal(#[from] ApiError),
}

impl From<sqlx::Error> for OrgDeleteRefusal {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// Queues the deletion of organisation `org`, asked by `actor`: refused while any of its
/// predictions or trainings is QUEUED or RUNNING, or was cancelled less than a lease ago (a
/// worker still writing would leave a file behind). In one transaction: the `deletions` row and
/// its message, the audit entry `organisation.delete`, and every member's access taken away
/// (memberships, API keys, sessions), so nothing new is queued in it. Returns the deletion's id.
///
/// Errors: [`OrgDeleteRefusal`].
pub async fn queue_org_deletion(
    app: &App,
    org: &OrgId,
    actor: &Actor,
) -> Result<String, OrgDeleteRefusal> {
    let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM organisations WHERE id = $1")
        .bind(org.as_str())
        .fetch_optional(app.db.pool())
        .await?;
    if exists.is_none() {
        return Err(OrgDeleteRefusal::Missing(org.to_string()));
    }
    let pending: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM deletions WHERE user_id = $1 AND target = 'organisation' \
         AND status IN ('QUEUED', 'RUNNING')",
    )
    .bind(org.as_str())
    .fetch_optional(app.db.pool())
    .await?;
    if let Some((id,)) = pending {
        return Err(OrgDeleteRefusal::Already(org.to_string(), id));
    }
    let lease_ms = app.config.visibility_timeout.as_millis() as i64;
    let mut tx = app.db.pool().begin().await?;
    let mut active = 0;
    for table in ["predictions", "model_trainings", "prediction_chunks"] {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM {table} WHERE user_id = $1 AND (status IN ('QUEUED', 'RUNNING') \
             OR (status = 'CANCELLED' AND updated_at > $2))"
        ))
        .bind(org.as_str())
        .bind(now_ms() - lease_ms)
        .fetch_one(&mut *tx)
        .await?;
        active += n;
    }
    if active > 0 {
        return Err(OrgDeleteRefusal::Busy {
            org: org.to_string(),
            active,
            lease_s: lease_ms / 1000,
        });
    }
    let by = actor.user.as_deref().unwrap_or(Actor::OPERATOR);
    let id = deletion::queue(app, &mut tx, org, "organisation", org.as_str(), by).await?;
    let record = Some(("deletion", id.as_str()));
    audit::record(&mut *tx, actor, Action::OrgDelete, record, &Outcome::Ok).await?;
    crate::deletion::revoke_access(&mut tx, org).await?;
    tx.commit().await?;
    app.queue.wake();
    tracing::info!(
        org = org.as_str(),
        by,
        deletion_id = id,
        "organisation_delete_queued"
    );
    Ok(id)
}

/// `DELETE /api/org` with `{"confirm": "<the organisation's id>"}`: 202 with the deletion job;
/// every member loses access at once, the job removes every file and row. 400 without the
/// confirmation naming the organisation; 409 for a personal organisation (the operator deletes
/// those: `retainwise org delete`), or while jobs are queued or running (see
/// [`queue_org_deletion`]).
pub async fn delete_org(
    State(app): State<App>,
    Caller(me): Caller,
    AuditActor(actor): AuditActor,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let confirm: Confirm = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"confirm\": \"{}\"}}, naming the organisation to delete ({e})",
            me.org
        ))
    })?;
    if confirm.confirm != me.org.as_str() {
        return Err(ApiError::BadRequest(format!(
            "confirm is {:?}; it must be this organisation's id, {:?}, to delete it",
            confirm.confirm,
            me.org.as_str()
        )));
    }
    if app.db.is_personal(&me.org).await?.unwrap_or(true) {
        return Err(ApiError::Conflict(format!(
            "{} is a personal organisation: the operator deletes it (retainwise org delete {})",
            me.org, me.org
        )));
    }
    let id = queue_org_deletion(&app, &me.org, &actor)
        .await
        .map_err(|e| match e {
            OrgDeleteRefusal::Internal(e) => e,
            OrgDeleteRefusal::Missing(_) => ApiError::NotFound(e.to_string()),
            e => ApiError::Conflict(e.to_string()),
        })?;
    let job = deletion::find(app.db.pool(), &me.org, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "success": true, "deletion": job })),
    ))
}

/// `{"uploads_days", "results_days", "own"}`: how long the organisation keeps files (`own`
/// false: the operator's defaults apply).
pub async fn retention(
    State(app): State<App>,
    Caller(me): Caller,
) -> Result<Json<Value>, ApiError> {
    let (days, own) = crate::retention::of(app.db.pool(), &me.org, app.config.retention).await?;
    Ok(Json(retention_json(&me.org, days, own)))
}

fn retention_json(org: &OrgId, days: Retention, own: bool) -> Value {
    json!({
        "success": true,
        "org": org.as_str(),
        "uploads_days": days.upload_days,
        "results_days": days.result_days,
        "own": own,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionBody {
    uploads_days: i64,
    results_days: i64,
}

/// `PUT /api/org/retention` with `{"uploads_days": N, "results_days": M}` (1 to 36,500 each):
/// the organisation's own retention, from the next daily run on. 400 naming the field and range.
pub async fn set_retention(
    State(app): State<App>,
    Caller(me): Caller,
    AuditActor(actor): AuditActor,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: RetentionBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"uploads_days\": 30, \"results_days\": 365}} ({e})"
        ))
    })?;
    let days = crate::retention::check(body.uploads_days, body.results_days)
        .map_err(ApiError::BadRequest)?;
    set_retention_as(&app, &me.org, days, &actor).await?;
    Ok(Json(retention_json(&me.org, days, true)))
}

/// Sets `org`'s retention with its audit entry, in one transaction (the API's and the CLI's).
///
/// Errors: the database's.
pub async fn set_retention_as(
    app: &App,
    org: &OrgId,
    days: Retention,
    actor: &Actor,
) -> Result<(), sqlx::Error> {
    let mut tx = app.db.pool().begin().await?;
    crate::retention::set(&mut tx, org, days).await?;
    let record = Some(("organisation", org.as_str()));
    audit::record(&mut *tx, actor, Action::RetentionSet, record, &Outcome::Ok).await?;
    tx.commit().await
}
