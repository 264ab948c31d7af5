//! Helpers for people preparing a file: `POST /api/csv/preview-mapping` (how a file will be
//! read and which column becomes which feature, before anything is queued),
//! `GET /api/csv/sample-csv/{industry}` (a template that scores as is) and
//! `GET /api/csv/supported-columns/{industry}` (every accepted column, its type and aliases).

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, CurrentUser};
use crate::app::App;

/// How much of a file the preview reads: enough for the header and the first rows.
const PREVIEW_BYTES: usize = 1024 * 1024;
/// Rows shown by the preview.
const PREVIEW_ROWS: usize = 10;
/// The industries with a template: `telecom` is read by the built-in Telco model, `saas` by the
/// rule-based SaaS baseline (or a model trained on the user's own subscription history).
const INDUSTRIES: &[&str] = &["telecom", "saas"];

const SAMPLE_TELECOM: &str = include_str!("../../assets/sample-telecom.csv");
const SAMPLE_SAAS: &str = include_str!("../../assets/sample-saas.csv");

pub async fn preview_mapping(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::BadRequest(format!(
            "send the CSV as multipart/form-data in a field named \"file\": {}",
            e.body_text()
        ))
    })?;
    let mut head = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(mut field)) if field.name() == Some("file") => {
                while head.len() < PREVIEW_BYTES {
                    match field.chunk().await {
                        Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                        Ok(None) => break,
                        Err(e) => {
                            return Err(ApiError::BadRequest(format!(
                                "the upload broke off: {}",
                                e.body_text()
                            )))
                        }
                    }
                }
                break;
            }
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(ApiError::BadRequest(
                    "no file: send the CSV in a multipart field named \"file\"".to_owned(),
                ))
            }
            Err(e) => return Err(ApiError::BadRequest(e.body_text())),
        }
    }
    if head.is_empty() {
        return Err(ApiError::BadRequest(
            "the file is empty; upload a CSV with a header row and customer rows".to_owned(),
        ));
    }
    // The preview maps the file onto the model that would score it: the user's active one,
    // or the SaaS baseline for a subscription file only it can read.
    let active = app.registry.active_id(&app.db, &user).await?;
    let model = app
        .registry
        .load(&app.db, &app.storage, &active)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let model = app.registry.for_file(model, &head);
    let model_id = model.id().to_owned();
    let preview = tokio::task::spawn_blocking(move || {
        retainwise_model::preview(&model, head.as_slice(), PREVIEW_ROWS)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(
        json!({ "success": true, "model_id": model_id, "preview": preview }),
    ))
}

pub async fn sample_csv(Path(industry): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (name, body) = match industry.as_str() {
        "telecom" => ("sample-telecom.csv", SAMPLE_TELECOM),
        "saas" => ("sample-saas.csv", SAMPLE_SAAS),
        other => return Err(unknown_industry(other)),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    ))
}

pub async fn supported_columns(
    State(app): State<App>,
    Path(industry): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let model = match industry.as_str() {
        "telecom" => app.registry.builtin(),
        "saas" => app.registry.baseline(),
        other => return Err(unknown_industry(other)),
    };
    let mut body = json!({
        "success": true,
        "industry": industry,
        "model_id": model.id(),
        "columns": retainwise_model::supported_columns(model),
    });
    if industry == "saas" {
        // The template's other columns (revenue, seats) are for a model trained on the user's
        // own history; the baseline's rules do not read them.
        body["baseline_rules"] = json!(model.card().notes);
    }
    Ok(Json(body))
}

fn unknown_industry(industry: &str) -> ApiError {
    let shown: String = industry.chars().take(40).collect();
    ApiError::NotFound(format!(
        "no template for industry {shown:?}; available: {}",
        INDUSTRIES.join(", ")
    ))
}
