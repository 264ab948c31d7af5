//! `POST /api/webhooks`, `GET /api/webhooks`, `DELETE /api/webhooks/{id}`: a user's signed
//! webhook endpoints. The signing secret is answered once, at registration.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::http::AuditActor;
use crate::webhooks::{self, endpoints, RegisterError};

/// The body of `POST /api/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    events: Vec<String>,
}

/// Registers an endpoint: 201 with `{"id", "url", "events", "secret"}`; the secret is never
/// shown again. 400 naming the field for a body that is not `{"url": "...", "events": [...]}`,
/// an unknown event, no events, a URL that is not http(s), or one that resolves to a private
/// address (unless `RETAINWISE_WEBHOOK_ALLOW_PRIVATE=true`).
pub async fn create(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    AuditActor(actor): AuditActor,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewEndpoint = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"url\": \"https://…\", \"events\": [\"prediction.completed\", …]}} ({e})"
        ))
    })?;
    let made = webhooks::register(
        app.db.pool(),
        &app.config,
        &user,
        &new.url,
        &new.events,
        &actor,
    )
    .await
    .map_err(|e| match e {
        RegisterError::Invalid(m) => ApiError::BadRequest(m),
        RegisterError::Database(e) => e.into(),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "success": true,
            "id": made.id,
            "url": made.url,
            "events": made.events,
            "secret": made.secret,
        })),
    ))
}

/// The user's endpoints, without their secrets.
pub async fn list(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let list = endpoints::list(app.db.pool(), &user).await?;
    Ok(Json(json!({ "success": true, "webhooks": list })))
}

/// Removes an endpoint: no further delivery goes to it. 404 for an id the user does not own.
pub async fn remove(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    AuditActor(actor): AuditActor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !webhooks::remove(app.db.pool(), &user, &id, &actor).await? {
        return Err(ApiError::NotFound(format!("webhook {id} not found")));
    }
    tracing::info!(endpoint_id = %id, "webhook_endpoint_removed");
    Ok(Json(json!({ "success": true })))
}

/// Deliveries shown per endpoint, newest first.
const DELIVERIES_SHOWN: i64 = 100;

/// `GET /api/webhooks/{id}/deliveries`: the endpoint's latest 100 deliveries with their
/// status, attempts, last HTTP status and whether they were dead-lettered. 404 for an id the
/// user does not own.
pub async fn deliveries(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rows = endpoints::deliveries(app.db.pool(), &user, &id, DELIVERIES_SHOWN)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id} not found")))?;
    Ok(Json(json!({ "success": true, "deliveries": rows })))
}
