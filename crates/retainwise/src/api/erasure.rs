//! `POST /api/customers/{customer_id}/erase` (an owner asks for one end customer to be erased:
//! 202 with the erasure, whose job does the work) and `GET /api/erasures/{id}` (its progress).
//! Neither answer names the customer in clear: the erasure is known by its keyed hash.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, CurrentUser};
use crate::app::App;

/// The routes of this file.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/customers/{customer_id}/erase", post(erase))
        .route("/api/erasures/{id}", get(show))
}

/// `POST /api/customers/{customer_id}/erase`: 202 `{"erasure_id", "customer_hash", "status":
/// "QUEUED", "status_url"}`. The erasure is queued and audited (`customer.erase`, with the
/// hash) in one transaction; an id the organisation never stored is erased all the same (from
/// nothing), so the answer does not tell whether the customer was known. 400 for an empty or
/// over-long id.
pub async fn erase(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    Path(customer_id): Path<String>,
) -> Result<Response, ApiError> {
    let queued = crate::erasure::request(&app, &org, &actor, &customer_id).await?;
    let url = format!("/api/erasures/{}", queued.erasure_id);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "erasure_id": queued.erasure_id,
            "customer_hash": queued.customer_hash,
            "status": queued.status,
            "status_url": url,
        })),
    )
        .into_response())
}

/// `GET /api/erasures/{id}`: the erasure (hash, who asked, status, when, rows removed, objects
/// rewritten, why it waits or failed); another organisation's answers 404 like a missing one.
pub async fn show(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let erasure = crate::erasure::find(&app, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("erasure {id} not found")))?;
    Ok(Json(json!({ "success": true, "erasure": erasure })))
}
