//! Outcomes and measured accuracy over HTTP (README, "Outcomes and measured accuracy"):
//! - `POST /api/outcomes`: record outcomes from a CSV (multipart `file`, optional `mapping`)
//!   or JSON (`{"outcomes": [{"customer_id", "churned", "date"}]}`); both go through the one
//!   outcomes intake ([`retainwise_model::outcomes::read`]) and answer its validation report;
//! - `GET /api/outcomes?limit=&offset=`: the recorded outcomes, latest first;
//! - `DELETE /api/outcomes/{customer_id}`: forget one;
//! - `GET /api/predictions/{id}/performance`, `GET /api/models/{id}/performance`: measured
//!   accuracy ([`crate::outcomes::performance`]);
//! - `POST /api/models/retrain` (`{"predictions": [ids], "name"}`, both optional): a training
//!   on the scored features joined with outcomes ([`crate::outcomes::retrain`]); 202 with the
//!   training id, as `POST /api/models`;
//! - `POST /api/models/{id}/challenger`, `DELETE /api/models/challenger`,
//!   `POST /api/models/{id}/promote`, `GET /api/predictions/{id}/comparison`: champion and
//!   challenger ([`crate::outcomes::challenger`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use retainwise_model::outcomes::{self as intake, OutcomeError};
use retainwise_model::{InputLimits, ManualMapping, ScoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::csv_upload::{drain, manual_mapping, misnamed_file, read_text_field, second_file};
use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::customer_index::IndexCache;
use crate::domain::{ObjectKey, OrgId, PredictionId, TrainingId, UploadId};
use crate::outcomes::challenger;
use crate::outcomes::performance::{self, PerformanceError, Scored};
use crate::outcomes::retrain::{self, Joiner};

/// The routes of this module over the shared customers `indexes`.
pub(super) fn routes(indexes: Arc<IndexCache>, body_limit: usize) -> Router<App> {
    Router::new()
        .route(
            "/api/outcomes",
            get(list)
                .post(record)
                .layer(axum::extract::DefaultBodyLimit::max(body_limit)),
        )
        .route("/api/outcomes/{customer_id}", delete(remove))
        .route(
            "/api/predictions/{id}/performance",
            get(prediction_performance),
        )
        .route("/api/models/{id}/performance", get(model_performance))
        .route("/api/models/retrain", post(retrain_from_outcomes))
        .route("/api/models/challenger", delete(end_challenger))
        .route("/api/models/{id}/challenger", post(mark_challenger))
        .route("/api/models/{id}/promote", post(promote))
        .route("/api/predictions/{id}/comparison", get(comparison))
        .layer(Extension(indexes))
}

/// `GET /api/outcomes` paging.
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<u32>,
    offset: Option<u64>,
}

async fn list(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let (outcomes, total) =
        crate::outcomes::list(&app.db, &user, limit, page.offset.unwrap_or(0)).await?;
    Ok(Json(
        json!({ "success": true, "total": total, "outcomes": outcomes }),
    ))
}

async fn remove(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(customer): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if crate::outcomes::delete(&app.db, &user, &customer).await? {
        Ok(Json(json!({ "success": true, "deleted": customer })))
    } else {
        let shown: String = customer.chars().take(100).collect();
        Err(ApiError::NotFound(format!(
            "no outcome recorded for customer {shown:?}"
        )))
    }
}

/// `POST /api/outcomes`: JSON by its content type, else a multipart form.
async fn record(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    request: Request,
) -> Result<Response, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let (csv, manual, source) = if is_json {
        // Through the extractor, so the route's body limit holds.
        let body = axum::body::Bytes::from_request(request, &app)
            .await
            .map_err(|e| {
                ApiError::TooLarge(format!("the body cannot be read: {}", e.body_text()))
            })?;
        (json_to_csv(&body)?, ManualMapping::new(), "json".to_owned())
    } else {
        let mut multipart = Multipart::from_request(request, &app).await.map_err(|e| {
            ApiError::BadRequest(format!(
                "send the outcomes as JSON ({{\"outcomes\": [{{\"customer_id\": \"7590-VHVEG\", \"churned\": true, \"date\": \"2026-03-31\"}}]}}) or a CSV in a multipart field named \"file\" (curl -F file=@outcomes.csv): {}",
                e.body_text()
            ))
        })?;
        let read = read_form(&mut multipart).await;
        if read.is_err() {
            drain(&mut multipart).await;
        }
        read?
    };
    let today = retainwise_model::dates::today();
    let file = tokio::task::spawn_blocking(move || {
        intake::read(csv.as_slice(), &manual, today, &InputLimits::default())
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading outcomes stopped: {e}")))?;
    let file = match file {
        Ok(file) => file,
        Err(OutcomeError::NoUsableRows { report }) => {
            let detail = OutcomeError::NoUsableRows {
                report: report.clone(),
            }
            .to_string();
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "success": false, "detail": detail, "report": report })),
            )
                .into_response());
        }
        Err(OutcomeError::File(ScoreError::Io(e))) => {
            return Err(ApiError::Internal(anyhow::Error::new(e)))
        }
        Err(e @ OutcomeError::File(ScoreError::BadMapping { .. })) => {
            return Err(ApiError::Unprocessable(e.to_string()))
        }
        Err(e) => return Err(ApiError::BadRequest(e.to_string())),
    };
    let done = crate::outcomes::record(&app.db, &user, &file.outcomes, &source).await?;
    tracing::info!(user_id = %user, outcomes = file.outcomes.len(), new = done.new, superseded = done.superseded, older = done.older_than_stored, "outcomes_recorded");
    Ok(Json(json!({
        "success": true,
        "outcomes": file.outcomes.len(),
        "recorded": done,
        "report": file.report,
    }))
    .into_response())
}

/// The CSV bytes, column choices and file name of a multipart form.
async fn read_form(
    multipart: &mut Multipart,
) -> Result<(Vec<u8>, ManualMapping, String), ApiError> {
    let mut fields = Vec::new();
    let mut file: Option<(Vec<u8>, String)> = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the form: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(second_file());
            }
            let filename: String = field
                .file_name()
                .unwrap_or("outcomes.csv")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            let mut bytes = Vec::new();
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| ApiError::TooLarge(format!("reading the file: {}", e.body_text())))?
            {
                bytes.extend_from_slice(&chunk);
            }
            file = Some((bytes, filename));
        } else if name == "mapping" {
            let text = read_text_field(&mut field, &name).await?;
            fields.push((name, text));
        } else {
            if let Some(e) = misnamed_file(&field) {
                return Err(e);
            }
            let shown: String = name.chars().take(40).collect();
            return Err(ApiError::BadRequest(format!(
                "form field {shown:?} is not a setting of outcomes: send \"file\" and, if the columns need choosing, \"mapping\""
            )));
        }
    }
    let (bytes, filename) = file.ok_or_else(|| {
        ApiError::BadRequest(
            "the form has no \"file\" field: send the outcomes CSV as -F file=@outcomes.csv"
                .to_owned(),
        )
    })?;
    if bytes.is_empty() {
        return Err(ApiError::BadRequest(
            "the file is empty: send a CSV with a header (customer_id,churned,date) and one row per customer"
                .to_owned(),
        ));
    }
    Ok((bytes, manual_mapping(&fields)?, filename))
}

/// JSON outcomes as the CSV the one intake reads: `{"outcomes": [...]}` or a bare array of
/// objects with `customer_id` (text or number), `churned` (true/false or a label word) and
/// `date` (text). A value the intake cannot read is written as given and rejected there,
/// naming its row (the item's position, from 1).
///
/// Errors: 400 for text that is not such JSON, naming the item and key at fault.
fn json_to_csv(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let example = "send {\"outcomes\": [{\"customer_id\": \"7590-VHVEG\", \"churned\": true, \"date\": \"2026-03-31\"}]}";
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}; {example}")))?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(o) => match o.get("outcomes") {
            Some(Value::Array(items)) if o.len() == 1 => items,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "the JSON object must have one key, \"outcomes\", holding a list; {example}"
                )))
            }
        },
        _ => return Err(ApiError::BadRequest(example.to_owned())),
    };
    if items.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "the list of outcomes is empty; {example}"
        )));
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let write = |out: &mut csv::Writer<Vec<u8>>, r: &[String]| {
        out.write_record(r)
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))
    };
    write(
        &mut out,
        &[
            intake::ID.into(),
            intake::CHURNED.into(),
            intake::DATE.into(),
        ],
    )?;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(ApiError::BadRequest(format!(
                "outcome {} is not an object; {example}",
                i + 1
            )));
        };
        if let Some(k) = o
            .keys()
            .find(|k| ![intake::ID, intake::CHURNED, intake::DATE].contains(&k.as_str()))
        {
            let shown: String = k.chars().take(40).collect();
            return Err(ApiError::BadRequest(format!(
                "outcome {}: unknown key {shown:?}; an outcome has customer_id, churned and date",
                i + 1
            )));
        }
        let cell = |k: &str| match o.get(k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_owned(),
            Some(other) => other.to_string(),
        };
        write(
            &mut out,
            &[cell(intake::ID), cell(intake::CHURNED), cell(intake::DATE)],
        )?;
    }
    out.into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))
}

fn performance_error(e: PerformanceError) -> ApiError {
    match e {
        PerformanceError::NotCompleted(_) => ApiError::Conflict(e.to_string()),
        PerformanceError::Internal(e) => ApiError::Internal(e),
    }
}

async fn prediction_performance(
    State(app): State<App>,
    Extension(indexes): Extension<Arc<IndexCache>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let prediction: PredictionId = id
        .parse()
        .map_err(|e: crate::domain::DomainError| ApiError::NotFound(e.0))?;
    if app.db.prediction(&user, prediction).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "prediction {prediction} not found"
        )));
    }
    let p = performance::for_prediction(&app, &indexes, &user, &prediction.to_string())
        .await
        .map_err(performance_error)?;
    Ok(Json(json!({ "success": true, "performance": p })))
}

async fn model_performance(
    State(app): State<App>,
    Extension(indexes): Extension<Arc<IndexCache>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_model(&app, &user, &id).await?;
    let card: Value = serde_json::from_str(&row.card).unwrap_or(Value::Null);
    let p = performance::for_model(&app, &indexes, &user, &row.id, &card).await?;
    Ok(Json(json!({ "success": true, "performance": p })))
}

/// A model `user` may see, or 404.
async fn visible_model(app: &App, user: &OrgId, id: &str) -> Result<crate::db::ModelRow, ApiError> {
    performance::visible_model(app, user, id)
        .await?
        .ok_or_else(|| {
            let shown: String = id.chars().take(100).collect();
            ApiError::NotFound(format!(
                "model {shown:?} not found; GET /api/models lists the models you can use"
            ))
        })
}

/// `POST /api/models/retrain`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrainRequest {
    /// Predictions whose scored customers to learn from; default: every completed prediction
    /// with counted outcomes (the latest [`performance::MODEL_PREDICTIONS_POOLED`]).
    predictions: Option<Vec<String>>,
    /// The candidate's name; default `outcomes`.
    name: Option<String>,
}

async fn retrain_from_outcomes(
    State(app): State<App>,
    Extension(indexes): Extension<Arc<IndexCache>>,
    CurrentUser(user): CurrentUser,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: RetrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RetrainRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "{e}; send {{\"predictions\": [\"<prediction id>\", …], \"name\": \"acme\"}} (both optional)"
            ))
        })?
    };
    let name = request.name.unwrap_or_else(|| "outcomes".to_owned());
    if name.trim().is_empty() || name.chars().count() > 40 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 40 characters, such as acme".to_owned(),
        ));
    }
    let chosen: Vec<Scored> = match request.predictions {
        Some(ids) => {
            if ids.is_empty() {
                return Err(ApiError::BadRequest(
                    "predictions is empty: name at least one, or leave it out for all".to_owned(),
                ));
            }
            let mut out = Vec::new();
            for id in ids {
                let shown: String = id.chars().take(60).collect();
                let p = performance::scored(&app, &user, &id)
                    .await?
                    .ok_or_else(|| {
                        ApiError::NotFound(format!(
                            "prediction {shown:?} is not one of your completed predictions"
                        ))
                    })?;
                out.push(p);
            }
            out
        }
        None => performance::scored_all(&app, &user).await?,
    };
    let outcomes = crate::outcomes::all(&app.db, &user).await?;
    let dir = tempfile::tempdir().map_err(|e| ApiError::Internal(e.into()))?;
    let joined_path = dir.path().join("joined.csv");
    let file = std::fs::File::create(&joined_path).map_err(|e| ApiError::Internal(e.into()))?;
    let mut joiner = Joiner::new(std::io::BufWriter::new(file));
    let mut used = Vec::new();
    for p in &chosen {
        let (rows, _) = performance::labelled(&app, &indexes, p, &outcomes).await?;
        if rows.is_empty() {
            continue;
        }
        let labels: HashMap<String, bool> = rows
            .into_iter()
            .map(|r| (r.customer_id, r.churned))
            .collect();
        let model = app
            .registry
            .load(&app.db, &app.storage, &p.model_id)
            .await
            .map_err(|e| ApiError::Conflict(format!("prediction {}: its model: {e}", p.id)))?;
        let manual: ManualMapping = p
            .column_mapping
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored mapping of {}: {e}", p.id)))?
            .unwrap_or_default();
        let upload = dir.path().join("scored.csv");
        let key = ObjectKey::parse_foreign(&p.upload_key)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e.0)))?;
        match app.storage.download_to(&key, &upload).await {
            Ok(_) => {}
            Err(crate::storage::StorageError::NotFound(_)) => {
                return Err(ApiError::Conflict(format!(
                    "prediction {}: its scored file is no longer in storage; leave it out",
                    p.id
                )))
            }
            Err(e) => return Err(e.into()),
        }
        let scored_on = performance::scored_on(p);
        let id = p.id.clone();
        joiner = tokio::task::spawn_blocking(move || {
            let input = std::fs::File::open(&upload)?;
            joiner
                .join(
                    &id,
                    &model,
                    &manual,
                    std::io::BufReader::new(input),
                    &labels,
                    scored_on,
                )
                .map(|()| joiner)
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("joining stopped: {e}")))?
        .map_err(|e| match e {
            retrain::JoinError::Refused(m) => ApiError::Conflict(m),
            retrain::JoinError::Io(e) => ApiError::Internal(e.into()),
        })?;
        used.push(p.id.clone());
    }
    let (rows, churned) = (joiner.rows, joiner.churned);
    if rows == 0 {
        return Err(ApiError::Conflict(
            "no scored customer has a counted outcome yet: record outcomes (POST /api/outcomes) for customers of completed predictions, or wait until their outcome window has passed".to_owned(),
        ));
    }
    if churned == 0 || churned == rows {
        return Err(ApiError::Conflict(format!(
            "the {rows} scored customers with outcomes are all {}: a model learns from both churned and retained customers",
            if churned == 0 { "retained" } else { "churned" }
        )));
    }
    let id_header = joiner
        .id_column()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("rows joined without an id column")))?;
    joiner
        .finish()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let upload_id = UploadId::new();
    let key = ObjectKey::upload(&user, upload_id);
    let size = app.storage.put_file(&key, &joined_path).await?;
    let stored = super::csv_upload::StoredCsv {
        upload_id,
        key: key.clone(),
        filename: format!("{name}-outcomes.csv"),
        size,
        head: Vec::new(),
    };
    let settings = super::models::TrainSettings {
        label: retrain::LABEL.to_owned(),
        group_column: (used.len() > 1).then(|| id_header.clone()),
        id_column: Some(id_header),
        observation_date_column: Some(retrain::SCORED_ON.to_owned()),
        name,
    };
    let training_id = TrainingId::new();
    if let Err(e) =
        super::models::queue_training(&app, &user, &actor, training_id, &stored, &settings).await
    {
        let _ = app.storage.delete(&key).await;
        return Err(e);
    }
    tracing::info!(training_id = %training_id, rows, churned, predictions = used.len(), "training_from_outcomes_queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "message": "the scored features joined with outcomes; the training is queued",
            "training_id": training_id.to_string(),
            "status": "QUEUED",
            "rows": rows,
            "churned": churned,
            "predictions": used,
            "label": settings.label,
            "status_url": format!("/api/models/trainings/{training_id}"),
        })),
    ))
}

async fn mark_challenger(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_model(&app, &user, &id).await?;
    let active = app.registry.active_id(&app.db, &user).await?;
    if row.id == active {
        return Err(ApiError::Conflict(format!(
            "{} is your active model (the champion); mark another model as challenger",
            row.id
        )));
    }
    // Refuse a model this process cannot load now rather than fail every shadow score later.
    app.registry
        .load(&app.db, &app.storage, &row.id)
        .await
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    challenger::set(&app, &user, &row.id).await?;
    tracing::info!(user_id = %user, model_id = %row.id, "challenger_marked");
    Ok(Json(json!({
        "success": true,
        "challenger": row.id,
        "champion": active,
        "message": "your next predictions are also scored by the challenger (shadow); compare them once outcomes arrive",
    })))
}

async fn end_challenger(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    if !challenger::clear(&app, &user).await? {
        return Err(ApiError::NotFound(
            "you have no challenger model".to_owned(),
        ));
    }
    Ok(Json(json!({ "success": true })))
}

async fn promote(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_model(&app, &user, &id).await?;
    if challenger::challenger(&app, &user).await?.as_deref() != Some(row.id.as_str()) {
        return Err(ApiError::Conflict(format!(
            "{} is not your challenger: mark it first (POST /api/models/{}/challenger) and compare it on outcomes",
            row.id, row.id
        )));
    }
    let model_id: crate::domain::ModelId = row
        .id
        .parse()
        .map_err(|e: crate::domain::DomainError| ApiError::BadRequest(e.0))?;
    app.db
        .activate_model(crate::outcomes::owner(&user), &model_id, Some(&actor))
        .await?;
    challenger::clear(&app, &user).await?;
    tracing::info!(user_id = %user, model_id = %model_id, "challenger_promoted");
    Ok(Json(json!({
        "success": true,
        "active_model_id": model_id.as_str(),
        "message": format!("{model_id} is now your active model; it has no challenger"),
    })))
}

/// `GET /api/predictions/{id}/comparison?design=split`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Design {
    /// `shadow` (default) or `split`.
    design: Option<String>,
}

async fn comparison(
    State(app): State<App>,
    Extension(indexes): Extension<Arc<IndexCache>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    design: Result<Query<Design>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(design) = design.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let split = match design.design.as_deref() {
        None | Some("shadow") => false,
        Some("split") => true,
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(ApiError::BadRequest(format!(
                "design {shown:?} is not shadow or split"
            )));
        }
    };
    let prediction: PredictionId = id
        .parse()
        .map_err(|e: crate::domain::DomainError| ApiError::NotFound(e.0))?;
    if app.db.prediction(&user, prediction).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "prediction {prediction} not found"
        )));
    }
    let c = challenger::compare(&app, &indexes, &user, &prediction.to_string(), split)
        .await
        .map_err(|e| match e {
            challenger::CompareError::NoShadow(_) => ApiError::Conflict(e.to_string()),
            challenger::CompareError::Internal(e) => ApiError::Internal(e),
        })?;
    Ok(Json(json!({ "success": true, "comparison": c })))
}
