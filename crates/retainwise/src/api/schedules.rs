//! `POST /api/schedules`, `GET /api/schedules`, `GET|DELETE /api/schedules/{id}`,
//! `POST /api/schedules/{id}/pause|resume`: an organisation's re-scoring schedules
//! ([`crate::schedules`]), each listed with its next run and latest runs.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::http::AuditActor;
use crate::schedules::{self, AddError, NewSchedule};

/// Runs answered by `GET /api/schedules/{id}`, newest first.
const RUNS_OF_ONE: i64 = 100;

/// The body of `POST /api/schedules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    cron: Option<String>,
    source: Option<String>,
    name: Option<String>,
}

/// Adds a schedule: 201 with the schedule as listed (`id`, `next_run_at`, …). The body:
/// `{"cron": "0 6 * * 1", "source": "latest" | "uploads/{org}/NAME.csv", "name": "…"}`
/// (`source` defaults to `latest`, `name` to the cron expression). 400 for a body that is not
/// that JSON; 422 naming the field, what is wrong and what is expected for a bad cron
/// expression, source or name; 409 at the organisation's limit of schedules.
pub async fn create(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
    AuditActor(actor): AuditActor,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"cron\": \"0 6 * * 1\", \"source\": \"latest\", \"name\": \"…\"}} ({e})"
        ))
    })?;
    let new = NewSchedule::check(
        body.cron.as_deref(),
        body.source.as_deref(),
        body.name.as_deref(),
        app.storage.root_url(),
        &org,
    )
    .map_err(|(field, why)| ApiError::Unprocessable(format!("field {field}: {why}")))?;
    let id = schedules::add(app.db.pool(), &org, &new, &actor)
        .await
        .map_err(|e| match e {
            AddError::TooMany => ApiError::Conflict(e.to_string()),
            AddError::Database(e) => e.into(),
        })?;
    let now = crate::time::now_ms();
    let made = schedules::get(app.db.pool(), &org, &id, 0, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "success": true, "schedule": made })),
    ))
}

/// The organisation's schedules, each with `next_run_at` and its latest runs (`slot`,
/// `status` QUEUED or SKIPPED, `prediction_id`, `reason`, `missed`).
pub async fn list(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let list = schedules::list(app.db.pool(), &org, crate::time::now_ms()).await?;
    Ok(Json(json!({ "success": true, "schedules": list })))
}

/// One schedule with its latest 100 runs. 404 for an id the organisation does not have.
pub async fn show(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = crate::time::now_ms();
    let found = schedules::get(app.db.pool(), &org, &id, RUNS_OF_ONE, now)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({ "success": true, "schedule": found })))
}

/// Removes a schedule (the predictions it queued stay). 404 for an id the organisation does
/// not have.
pub async fn remove(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
    AuditActor(actor): AuditActor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !schedules::remove(app.db.pool(), &org, &id, &actor).await? {
        return Err(not_found(&id));
    }
    Ok(Json(json!({ "success": true, "removed": id })))
}

/// Pauses a schedule: no slot runs until it is resumed. 404 for an unknown id.
pub async fn pause(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
    AuditActor(actor): AuditActor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&app, &org, &id, true, &actor).await
}

/// Resumes a paused schedule from now: slots that passed while it was paused never run. 404
/// for an unknown id.
pub async fn resume(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
    AuditActor(actor): AuditActor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&app, &org, &id, false, &actor).await
}

async fn set_paused(
    app: &App,
    org: &crate::domain::OrgId,
    id: &str,
    paused: bool,
    actor: &crate::audit::Actor,
) -> Result<Json<Value>, ApiError> {
    if !schedules::set_paused(app.db.pool(), org, id, paused, actor).await? {
        return Err(not_found(id));
    }
    let now = crate::time::now_ms();
    let found = schedules::get(app.db.pool(), org, id, 0, now).await?;
    Ok(Json(json!({ "success": true, "schedule": found })))
}

fn not_found(id: &str) -> ApiError {
    let shown: String = id.chars().take(64).collect();
    ApiError::NotFound(format!("no schedule {shown:?} in your organisation"))
}
