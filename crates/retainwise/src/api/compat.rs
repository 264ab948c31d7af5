//! The original service's frontend calls that the rest of the API has no twin for, answered
//! with the fields its React code reads (`frontend/src/pages/*.tsx`, `components/dashboard/*`
//! of muhammadzeb86/churn-saas):
//!
//! | call | answer |
//! |---|---|
//! | `GET /api/predictions/dashboard/data?limit=N` | `{success, predictions: [one per customer of the latest completed prediction], metadata}` |
//! | `GET /api/predictions/download_predictions/{id}` | `{success, download_url, expires_in}`: presigned S3 GET, or a signed link to `GET /api/downloads/{id}` on local storage |
//! | `GET /api/downloads/{id}?user=&expires=&signature=` | the spreadsheet-safe results CSV, for a valid unexpired link ([`crate::download_link`]) |
//! | `POST /api/sync-user` | `{success, message, user_id}`: the signed-in user |
//! | `GET /api/uploads?user_id=&limit=` | the user's uploads, newest first, as a JSON array |

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::predictions::{find, parse_id, spreadsheet_safe_chunks};
use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::customer_index::{Customer, Factor, IndexCache, IndexError};
use crate::db::PredictionRow;
use crate::domain::{ObjectKey, OrgId, PredictionId};
use crate::download_link::{DownloadLinks, LINK_LIFETIME};
use crate::time::rfc3339;

/// Customers the dashboard call answers by default and at most (the original's bounds).
const DASHBOARD_DEFAULT: u32 = 1_000;
const DASHBOARD_MAX: u32 = 10_000;

/// Uploads listed by default and at most (the original's bounds).
const UPLOADS_DEFAULT: u32 = 20;
const UPLOADS_MAX: u32 = 100;

/// What the routes share: the customers index cache of the web pages, and the link signer.
struct Compat {
    indexes: Arc<IndexCache>,
    links: DownloadLinks,
}

/// The routes of this module over the shared customers `indexes`.
pub(super) fn routes(indexes: Arc<IndexCache>) -> Router<App> {
    let shared = Arc::new(Compat {
        indexes,
        links: DownloadLinks::default(),
    });
    Router::new()
        .route("/api/predictions/dashboard/data", get(dashboard_data))
        .route(
            "/api/predictions/download_predictions/{id}",
            get(download_link),
        )
        .route("/api/downloads/{id}", get(download))
        .route("/api/sync-user", post(sync_user))
        .route("/api/uploads", get(uploads))
        .layer(Extension(shared))
}

#[derive(Debug, Deserialize)]
struct DashboardQuery {
    limit: Option<u32>,
}

/// `GET /api/predictions/dashboard/data`: the first `limit` customers (file order, as the
/// original) of the user's latest completed prediction, read through the customers index (one
/// ranged read, not a parse of the whole result per request).
async fn dashboard_data(
    State(app): State<App>,
    Extension(shared): Extension<Arc<Compat>>,
    CurrentUser(user): CurrentUser,
    query: Result<Query<DashboardQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::BadRequest(format!("{}; limit is 1 to {DASHBOARD_MAX}", e.body_text()))
    })?;
    let limit = query.limit.unwrap_or(DASHBOARD_DEFAULT);
    if limit == 0 || limit > DASHBOARD_MAX {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range: use 1 to {DASHBOARD_MAX}"
        )));
    }
    let Some(row) = app.db.latest_completed(&user).await? else {
        return Ok(Json(json!({
            "success": true,
            "predictions": [],
            "metadata": {
                "total_customers": 0,
                "prediction_id": null,
                "generated_at": null,
                "message": "No predictions yet. Upload a CSV to get started.",
            },
        })));
    };
    let id = parse_id(&row.id)?;
    let key = ObjectKey::result(&user, id);
    let index = shared
        .indexes
        .get(&app.storage, &key, row.erased_customers)
        .await
        .map_err(|e| index_error(id, e))?;
    let shown = index.len().min(limit as usize) as u32;
    let entries: Vec<_> = (1..=shown)
        .filter_map(|r| index.by_row(r).copied())
        .collect();
    let customers = index
        .read(&app.storage, &key, &entries)
        .await
        .map_err(|e| index_error(id, e))?;
    let predictions: Vec<Value> = customers
        .iter()
        .map(|c| customer_json(&row, &user, c))
        .collect();
    Ok(Json(json!({
        "success": true,
        "metadata": {
            "total_customers": predictions.len(),
            "customers_in_prediction": index.len(),
            "prediction_id": row.id,
            "generated_at": rfc3339(row.queued_at),
            "rows_processed": row.rows_processed,
        },
        "predictions": predictions,
    })))
}

fn index_error(id: PredictionId, e: IndexError) -> ApiError {
    match e {
        IndexError::Storage(e) => e.into(),
        IndexError::Format(m) => {
            tracing::error!(prediction = %id, error = %m, "customer_index_failed");
            ApiError::Conflict(format!(
                "the results of prediction {id} cannot be browsed: {m}"
            ))
        }
    }
}

/// One customer as the original's dashboard reads it (`types/index.ts` `Prediction`,
/// `utils/validationUtils.ts`): `id` is the customer id as the original's (`row_N` for an
/// empty one), factors are objects with a `message`, `explanation` is a JSON string with a
/// `summary`, `status` is lowercase `completed`.
fn customer_json(row: &PredictionRow, user: &OrgId, c: &Customer) -> Value {
    let id = if c.customer_id.is_empty() {
        format!("row_{}", c.row)
    } else {
        c.customer_id.clone()
    };
    let explanation = json!({
        "customer_id": c.customer_id,
        "summary": c.summary,
        "recommendation": c.recommendation,
        "risk_level": c.level.as_str(),
        "data_quality": c.data_quality,
    });
    json!({
        "id": id,
        "customer_id": c.customer_id,
        "row": c.row,
        "churn_probability": c.churn_probability,
        "retention_probability": c.retention_probability,
        "risk_level": c.level.as_str(),
        "created_at": rfc3339(row.queued_at),
        "updated_at": rfc3339(row.completed_at.unwrap_or(row.queued_at)),
        "status": "completed",
        "prediction_id": row.id,
        "upload_id": row.upload_id,
        "user_id": user.as_str(),
        "model_version": c.model_version,
        "risk_factors": c.risk_factors.iter().map(|f| factor_json(f, true)).collect::<Vec<_>>(),
        "protective_factors": c.protective_factors.iter().map(|f| factor_json(f, false)).collect::<Vec<_>>(),
        "explanation": explanation.to_string(),
    })
}

/// A factor with the sentence the original frontend shows (`message`), e.g. `tenure = 2 raises
/// the churn risk by 12.5 points`.
fn factor_json(f: &Factor, risk: bool) -> Value {
    let value = match &f.value {
        Value::String(s) => s.clone(),
        Value::Null => "missing".to_owned(),
        other => other.to_string(),
    };
    let verb = if risk { "raises" } else { "lowers" };
    let mut message = format!(
        "{} = {value} {verb} the churn risk by {:.1} points",
        f.feature,
        f.impact.abs()
    );
    if let Some(q) = &f.quality {
        message.push_str(&format!(
            " ({q}: the model's rule for such a value, not a fact about the customer)"
        ));
    }
    let mut out = json!({
        "message": message,
        "feature": f.feature,
        "value": f.value,
        "impact": f.impact,
    });
    if let Some(q) = &f.quality {
        out["quality"] = json!(q);
    }
    out
}

/// `GET /api/predictions/download_predictions/{id}`: a link valid for 10 minutes to the
/// spreadsheet-safe results. On S3 a presigned GET of a safe copy (`downloads/…`, written once
/// on the first request); on local storage a link signed by this server. Another user's id
/// answers 404 like a missing one.
async fn download_link(
    State(app): State<App>,
    Extension(shared): Extension<Arc<Compat>>,
    CurrentUser(user): CurrentUser,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let row = find(&app, &user, &id).await?;
    let prediction = parse_id(&id)?;
    super::predictions::completed(&row, &id)?;
    let action = crate::audit::Action::DownloadResults;
    crate::audit::prediction_read(app.db.pool(), &actor, action, &id).await?;
    let url = if app.storage.root_url().starts_with("s3://") {
        let safe = ObjectKey::download(&user, prediction);
        if !app.storage.exists(&safe).await? {
            let raw = app
                .storage
                .get_stream(&ObjectKey::result(&user, prediction))
                .await?;
            app.storage
                .put_download_stream(
                    &safe,
                    spreadsheet_safe_chunks(raw),
                    &download_name(prediction),
                )
                .await?;
        }
        app.storage
            .presigned_get(&safe, LINK_LIFETIME)
            .await?
            .ok_or_else(|| anyhow::anyhow!("S3 storage gave no presigned URL"))?
    } else {
        let origin = match &app.config.http.public_origin {
            Some(origin) => origin.clone(),
            // The Host was checked against the allowed names before any handler ran; the
            // scheme is what the session cookie's `Secure` follows (https unless loopback).
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .ok_or_else(|| ApiError::BadRequest("the request has no Host".to_owned()))?;
                let secure = crate::http::session::is_secure(&headers, &app.config.http);
                format!("{}://{host}", if secure { "https" } else { "http" })
            }
        };
        let query = shared.links.query(&app.db, &user, prediction).await?;
        format!("{origin}/api/downloads/{prediction}?{query}")
    };
    Ok(Json(json!({
        "success": true,
        "download_url": url,
        "expires_in": LINK_LIFETIME.as_secs(),
    })))
}

fn download_name(prediction: PredictionId) -> String {
    format!("prediction_results_{prediction}.csv")
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    user: String,
    expires: u64,
    signature: String,
}

/// `GET /api/downloads/{id}`: the results behind a signed link, without credentials.
/// A bad or expired signature, or a link missing one of its parameters, answers 403 with what
/// to do (a cut link is as unusable as a forged one).
async fn download(
    State(app): State<App>,
    Extension(shared): Extension<Arc<Compat>>,
    Path(id): Path<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(link) = query.map_err(|e| {
        ApiError::Forbidden(format!(
            "{}; a download link carries user, expires and signature",
            e.body_text()
        ))
    })?;
    let prediction = parse_id(&id)?;
    let user: OrgId = link
        .user
        .parse()
        .map_err(|e: crate::domain::DomainError| ApiError::BadRequest(e.0))?;
    if let Err(refused) = shared
        .links
        .check(&app.db, &user, prediction, link.expires, &link.signature)
        .await?
    {
        return Err(ApiError::Forbidden(refused.to_string()));
    }
    let row = find(&app, &user, &id).await?;
    super::predictions::completed(&row, &id)?;
    let raw = app
        .storage
        .get_stream(&ObjectKey::result(&user, prediction))
        .await?;
    Ok(super::predictions::csv_attachment(
        &download_name(prediction),
        axum::body::Body::from_stream(spreadsheet_safe_chunks(raw)),
    ))
}

/// `POST /api/sync-user`: the original stored the Clerk user on sign-in; retainwise keeps no
/// user table (the verified token is the user), so this answers who is signed in.
async fn sync_user(CurrentUser(user): CurrentUser) -> Json<Value> {
    Json(json!({
        "success": true,
        "message": "User already exists",
        "user_id": user.as_str(),
    }))
}

#[derive(Debug, Deserialize)]
struct UploadsQuery {
    user_id: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/uploads?user_id=&limit=`: the user's newest uploads (20 by default, at most 100)
/// as a JSON array; `status` is the newest prediction's (`processing`, `completed`, `failed`),
/// `uploaded` when none. A `user_id` other than the signed-in user's is refused (403, as the
/// original).
async fn uploads(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    query: Result<Query<UploadsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::BadRequest(format!("{}; limit is 1 to {UPLOADS_MAX}", e.body_text()))
    })?;
    if let Some(asked) = &query.user_id {
        if asked != user.as_str() {
            return Err(ApiError::Forbidden(
                "uploads can be listed only by their own user".to_owned(),
            ));
        }
    }
    let limit = query.limit.unwrap_or(UPLOADS_DEFAULT).clamp(1, UPLOADS_MAX);
    let rows = app.db.uploads_with_status(&user, limit).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|u| {
            let status = match u.status.as_deref() {
                None => "uploaded".to_owned(),
                Some("QUEUED" | "RUNNING") => "processing".to_owned(),
                Some(other) => other.to_ascii_lowercase(),
            };
            json!({
                "id": u.id,
                "user_id": user.as_str(),
                "filename": u.filename,
                "s3_key": u.object_key,
                "file_size": u.size_bytes,
                "created_at": rfc3339(u.created_at),
                "status": status,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}
