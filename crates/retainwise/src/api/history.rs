//! Customers across runs ([`crate::history`]): `GET /api/customers/{customer_id}` (a
//! customer's runs over time) and `GET /api/predictions/{id}/changes?since=` (what changed
//! since another prediction, by default the owner's previous one).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::predictions::find;
use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::history::{self, NoComparison, Owner, Since};

/// Most runs one answer of `GET /api/customers/{customer_id}` lists.
pub const MAX_RUNS: i64 = 1000;
/// Most customers each list of `GET /api/predictions/{id}/changes` holds.
pub const MAX_LISTED: i64 = 500;

/// The routes of this file.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/customers/{customer_id}", get(customer))
        .route("/api/predictions/{id}/changes", get(changes))
}

/// `?limit=` of the customer's runs (1–[`MAX_RUNS`], default 100: the latest).
#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    limit: Option<i64>,
}

/// `GET /api/customers/{customer_id}`: `{"customer_id", "total", "runs": [{"prediction_id",
/// "filename", "model_id", "churn_probability", "risk_level", "scored_at", "drivers":
/// [{"feature","value","impact"}]}]}`, the latest `limit` runs oldest first. 404 when none of
/// the caller's completed predictions scored this id.
pub async fn customer(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(customer_id): Path<String>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::BadRequest(format!("{}; limit is 1 to {MAX_RUNS}", e.body_text()))
    })?;
    let limit = bounded(query.limit, 100, MAX_RUNS)?;
    let mut conn = app.db.pool().acquire().await?;
    let runs = history::customer_runs(&mut conn, &Owner::of(&user), &customer_id, limit).await?;
    if runs.total == 0 {
        return Err(ApiError::NotFound(format!(
            "customer {customer_id:?} is in none of your completed predictions"
        )));
    }
    Ok(Json(json!(runs)))
}

/// `?since=&limit=` of the changes.
#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    since: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/predictions/{id}/changes?since={other_id}&limit=`: [`history::Changes`] as JSON
/// (exact counts, and lists of at most `limit`, 1–[`MAX_LISTED`], default 50). 404 for a
/// prediction of someone else; 409 when either prediction has no remembered customers (not
/// COMPLETED, scored before history existed, or without a customer-id column) or, without
/// `since`, when there is no earlier one.
pub async fn changes(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; since is a prediction id, limit 1 to {MAX_LISTED}",
            e.body_text()
        ))
    })?;
    let limit = bounded(query.limit, 50, MAX_LISTED)?;
    let row = find(&app, &user, &id).await?;
    let since = match query.since.as_deref().map(str::trim) {
        None | Some("") => Since::Previous,
        Some(s) => {
            let other = find(&app, &user, s).await?;
            Since::Prediction(other.id)
        }
    };
    let mut conn = app.db.pool().acquire().await?;
    match history::changes(&mut conn, &Owner::of(&user), &row.id, &since, limit).await {
        Ok(c) => Ok(Json(json!(c))),
        Err(NoComparison::Database(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Conflict(e.to_string())),
    }
}

/// `value` (default `default`) checked to lie in 1..=`max`.
fn bounded(value: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match value.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(ApiError::BadRequest(format!(
            "limit {n} is out of range: use 1 to {max}"
        ))),
    }
}
