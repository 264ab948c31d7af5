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

/// Rows shown by the preview, and read by the upload's own check of the column choices, so
/// that both judge a choice on the same values and say the same sentence.
pub(super) const PREVIEW_ROWS: usize = 10;
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
    let mut fields = Vec::new();
    let mut have_file = false;
    // The file (its first HEAD_BYTES, the head every check reads) and the `mapping` field,
    // before or after it.
    loop {
        match multipart.next_field().await {
            Ok(Some(mut field)) if field.name() == Some("file") && !have_file => {
                have_file = true;
                while head.len() < crate::registry::HEAD_BYTES {
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
            }
            Ok(Some(mut field)) if field.name() == Some("mapping") => {
                let text = super::csv_upload::read_text_field(&mut field, "mapping").await?;
                fields.push(("mapping".to_owned(), text));
            }
            Ok(Some(field)) if field.name() == Some("file") => {
                return Err(super::csv_upload::second_file())
            }
            Ok(Some(field)) => {
                if let Some(e) = super::csv_upload::misnamed_file(&field) {
                    return Err(e);
                }
            }
            Ok(None) if have_file => break,
            Ok(None) => {
                return Err(ApiError::BadRequest(
                    "no file: send the CSV in a multipart field named \"file\"".to_owned(),
                ))
            }
            Err(e) => return Err(ApiError::BadRequest(e.body_text())),
        }
    }
    // A column choice the upload would refuse with 422 is a problem the page shows beside the
    // preview (200, `ready: false`, the upload's own sentence in `problems`); the page keeps
    // its selects, so the choice can be undone. A request that is not one (400) stays 400.
    let mut problems: Vec<String> = Vec::new();
    let manual = match super::csv_upload::manual_mapping(&fields) {
        Ok(manual) => manual,
        Err(ApiError::Unprocessable(why)) => {
            problems.push(why);
            retainwise_model::ManualMapping::new()
        }
        Err(e) => return Err(e),
    };
    head.truncate(crate::registry::HEAD_BYTES);
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
    let registry = app.registry.clone();
    let (model, preview, refused) = tokio::task::spawn_blocking(move || {
        let (model, preview) = registry.inspect(model, head.as_slice(), &manual, PREVIEW_ROWS);
        match preview {
            // Choices that cannot be applied at all: the file is shown as the automatic
            // mapping reads it, with the refusal.
            Err(retainwise_model::ScoreError::BadMapping { message }) => {
                let none = retainwise_model::ManualMapping::new();
                let (model, preview) =
                    registry.inspect(model, head.as_slice(), &none, PREVIEW_ROWS);
                (model, preview, Some(message))
            }
            preview => (model, preview, None),
        }
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let mut preview = preview.map_err(|e| {
        super::csv_upload::refused_preview(e).unwrap_or_else(|| {
            ApiError::BadRequest("the file could not be read; try again".to_owned())
        })
    })?;
    problems.extend(refused);
    problems.extend(preview.mapping_problem.clone());
    if !problems.is_empty() {
        preview.ready = false;
        preview.mapping_problem = Some(problems.join(" "));
    }
    Ok(Json(json!({
        "success": true,
        "ready": preview.ready,
        "problems": problems,
        "model_id": model.id(),
        "model": describe_model(&app, &model),
        "preview": preview,
    })))
}

/// Which model will score a previewed file, for a person: its id, its name and, in words, what
/// it is (`"model"` below).
fn describe_model(app: &App, model: &retainwise_model::Model) -> Value {
    let what = if model.id() == app.registry.baseline().id() {
        "the rule-based SaaS baseline (hand-set rules for subscription customers, not trained on data; train a model on your own history for measured accuracy)".to_owned()
    } else if model.id() == app.registry.builtin().id() {
        format!(
            "the built-in model {} (trained on the Telco customer data)",
            model.card().name
        )
    } else {
        format!(
            "your model {} (trained on {} rows)",
            model.card().name,
            model.card().training_data.rows
        )
    };
    json!({ "id": model.id(), "name": model.card().name, "description": what })
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
