//! Models as data over HTTP:
//! - `GET /api/models`: the models you may use (the built-in one, yours, the operator's), which
//!   one scores your next upload, and your latest trainings;
//! - `GET /api/models/{id}`: one model with its card;
//! - `POST /api/models` (multipart `file`, fields or query `label`, `id_column`, `group`, `name`): train a
//!   model on a labelled CSV through the same queue as predictions; 202 with a training id;
//! - `GET /api/models/trainings/{id}`: a training's status, and the model it produced;
//! - `POST /api/models/{id}/activate`: score your next uploads with that model.

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use retainwise_queue::Priority;
use serde::Deserialize;
use serde_json::{json, Value};

use super::csv_upload::{check_declared_size, drain, fields_after_file, store_csv, StoredCsv};
use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::audit::{self, Action, Actor, Outcome};
use crate::db::{self, ModelRow, NewTraining, TrainingRow};
use crate::domain::{ModelId, OrgId, TrainingId};
use crate::http::AuditActor;
use crate::message::{TrainingJob, TrainingMessage};
use crate::time::rfc3339;

/// Trainings listed by `GET /api/models`.
const RECENT_TRAININGS: u32 = 20;

/// What to train, from the query string (form fields before the file work too).
#[derive(Debug, Default, Deserialize)]
pub struct TrainQuery {
    /// The label column (churned = Yes/1/true/churned). Default `Churn`.
    label: Option<String>,
    /// The customer id column; inferred when absent.
    id_column: Option<String>,
    /// For several rows per customer: the column whose rows stay in one fold.
    group: Option<String>,
    /// For a history: the column holding each row's own observation date (its date columns
    /// count days back from it).
    observation_date: Option<String>,
    /// Model name, the first part of its id; default: the file name without its extension, reduced
    /// to lower-case letters, digits and `-`.
    name: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let active = app.registry.active_id(&app.db, &user).await?;
    let models: Vec<Value> = app
        .db
        .models(Some(&user))
        .await?
        .iter()
        .map(|row| model_json(row, &user, &active, false))
        .collect();
    let trainings: Vec<Value> = app
        .db
        .trainings(&user, RECENT_TRAININGS)
        .await?
        .iter()
        .map(training_json)
        .collect();
    Ok(Json(json!({
        "success": true,
        "active_model_id": active,
        "models": models,
        "trainings": trainings,
    })))
}

pub async fn show(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_model(&app, &user, &id).await?;
    let active = app.registry.active_id(&app.db, &user).await?;
    Ok(Json(
        json!({ "success": true, "model": model_json(&row, &user, &active, true) }),
    ))
}

pub async fn activate(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    AuditActor(actor): AuditActor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_model(&app, &user, &id).await?;
    let model_id: ModelId = row
        .id
        .parse()
        .map_err(|e: crate::domain::DomainError| ApiError::BadRequest(e.0))?;
    // Refuse a model this process cannot load now rather than fail every upload later.
    app.registry
        .load(&app.db, &app.storage, model_id.as_str())
        .await
        .map_err(|e| {
            if e.is_permanent() {
                ApiError::Conflict(e.to_string())
            } else {
                ApiError::Internal(e.into())
            }
        })?;
    app.db
        .activate_model(user.as_str(), &model_id, Some(&actor))
        .await?;
    tracing::info!(user_id = %user, model_id = %model_id, "model_activated");
    Ok(Json(json!({
        "success": true,
        "active_model_id": model_id.as_str(),
        "message": format!("your next uploads are scored by {model_id}"),
    })))
}

pub async fn training(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let training_id: TrainingId = id
        .parse()
        .map_err(|e: crate::domain::DomainError| ApiError::BadRequest(e.0))?;
    let row = app
        .db
        .training(&user, training_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("training {training_id} not found")))?;
    Ok(Json(
        json!({ "success": true, "training": training_json(&row) }),
    ))
}

pub async fn train(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    AuditActor(actor): AuditActor,
    query: Result<Query<TrainQuery>, QueryRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::BadRequest(format!(
            "send the labelled CSV as multipart/form-data in a field named \"file\" \
             (e.g. curl -F label=Churn -F file=@history.csv): {}",
            e.body_text()
        ))
    })?;
    let result = accept(&app, &user, &actor, query, &headers, &mut multipart).await;
    if let Err(e) = &result {
        if !matches!(e, ApiError::TooLarge(_)) {
            drain(&mut multipart).await;
        }
    }
    result
}

async fn accept(
    app: &App,
    user: &OrgId,
    actor: &Actor,
    query: Result<Query<TrainQuery>, QueryRejection>,
    headers: &HeaderMap,
    multipart: &mut Multipart,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    check_declared_size(app, headers)?;
    // A cheap early refusal before the file is sent; the binding check is in `queue_training`.
    if app.db.active_trainings(user).await? > 0 {
        return Err(trainings_full());
    }
    let mut fields = Vec::new();
    let stored = store_csv(app, user, multipart, &mut fields).await?;
    // Settings may come after the file too (a form's field order is the client's choice).
    let settings = match fields_after_file(multipart, &mut fields).await {
        Ok(()) => TrainSettings::from_parts(query, &fields, &stored.filename),
        Err(e) => Err(e),
    };
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => {
            let _ = app.storage.delete(&stored.key).await;
            return Err(e);
        }
    };
    let training_id = TrainingId::new();
    if let Err(e) = queue_training(app, user, actor, training_id, &stored, &settings).await {
        let _ = app.storage.delete(&stored.key).await;
        return Err(e);
    }
    tracing::info!(training_id = %training_id, upload_id = %stored.upload_id, label = %settings.label, "training_queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "message": "file uploaded; the training is queued",
            "training_id": training_id.to_string(),
            "status": "QUEUED",
            "label": settings.label,
            "id_column": settings.id_column,
            "group": settings.group_column,
            "observation_date": settings.observation_date_column,
            "name": settings.name,
            "status_url": format!("/api/models/trainings/{training_id}"),
        })),
    ))
}

/// Checked training settings.
#[derive(Debug)]
pub(super) struct TrainSettings {
    pub(super) label: String,
    pub(super) id_column: Option<String>,
    pub(super) group_column: Option<String>,
    pub(super) observation_date_column: Option<String>,
    pub(super) name: String,
}

impl TrainSettings {
    /// Query parameters and form fields together; the same setting given twice with different
    /// values is refused rather than one silently winning.
    fn from_parts(
        query: TrainQuery,
        fields: &[(String, String)],
        filename: &str,
    ) -> Result<Self, ApiError> {
        let pick = |key: &str, from_query: Option<String>| -> Result<Option<String>, ApiError> {
            let from_form =
                super::csv_upload::single_field(fields, key)?.map(|v| v.trim().to_owned());
            let from_query = from_query.map(|v| v.trim().to_owned());
            match (from_query, from_form) {
                (Some(q), Some(f)) if q != f => Err(ApiError::BadRequest(format!(
                    "{key} is given twice with different values ({q:?} in the query, {f:?} in the form); give it once"
                ))),
                (q, f) => Ok(q.or(f).filter(|v| !v.is_empty())),
            }
        };
        let label = pick("label", query.label)?.unwrap_or_else(|| "Churn".to_owned());
        let id_column = pick("id_column", query.id_column)?;
        let group_column = pick("group", query.group)?;
        let observation_date_column = pick("observation_date", query.observation_date)?;
        let name = pick("name", query.name)?
            .unwrap_or_else(|| crate::registry::default_model_name(filename));
        for (what, value) in [
            ("label", Some(&label)),
            ("id_column", id_column.as_ref()),
            ("group", group_column.as_ref()),
            ("observation_date", observation_date_column.as_ref()),
        ] {
            if value.is_some_and(|v| v.chars().count() > 200) {
                return Err(ApiError::BadRequest(format!(
                    "{what} is longer than 200 characters; give the column's name as in the header"
                )));
            }
        }
        if name.chars().count() > 40 {
            return Err(ApiError::BadRequest(
                "name is longer than 40 characters; use a short name such as acme".to_owned(),
            ));
        }
        Ok(Self {
            label,
            id_column,
            group_column,
            observation_date_column,
            name,
        })
    }
}

/// The upload row, the training row and the queue message, in one transaction (also for a
/// training from outcomes, `api/outcomes.rs`).
pub(super) async fn queue_training(
    app: &App,
    user: &OrgId,
    actor: &Actor,
    training_id: TrainingId,
    stored: &StoredCsv,
    settings: &TrainSettings,
) -> Result<(), ApiError> {
    let mut tx = app.db.pool().begin().await?;
    if db::admit(&mut tx, user, db::JobKind::Training, 1)
        .await?
        .is_err()
    {
        return Err(trainings_full());
    }
    let new = NewTraining {
        training_id,
        upload_id: stored.upload_id,
        user_id: user,
        filename: &stored.filename,
        object_key: &stored.key,
        size_bytes: stored.size,
        label: &settings.label,
        id_column: settings.id_column.as_deref(),
        group_column: settings.group_column.as_deref(),
        observation_date_column: settings.observation_date_column.as_deref(),
        name: &settings.name,
    };
    db::insert_training(&mut tx, &new).await?;
    let training = Some(("training", training_id.to_string()));
    let training = training.as_ref().map(|(k, id)| (*k, id.as_str()));
    audit::record(&mut *tx, actor, Action::ModelTrain, training, &Outcome::Ok).await?;
    crate::worker::enqueue::<TrainingJob>(
        app,
        &mut tx,
        &TrainingMessage::new(training_id, user, stored.upload_id, &stored.key),
        Priority::Normal,
    )
    .await?;
    tx.commit().await?;
    app.queue.wake();
    Ok(())
}

/// The 429 for a user whose training is still QUEUED or RUNNING (one at a time per user).
fn trainings_full() -> ApiError {
    ApiError::TooManyRequests {
        retry_after: std::time::Duration::from_secs(30),
        what: "trainings at once: one training per user runs at a time; wait for yours to finish",
    }
}

async fn visible_model(app: &App, user: &OrgId, id: &str) -> Result<ModelRow, ApiError> {
    let not_found = || {
        let shown: String = id.chars().take(100).collect();
        ApiError::NotFound(format!(
            "model {shown:?} not found; GET /api/models lists the models you can use"
        ))
    };
    let model_id: ModelId = id.parse().map_err(|_| not_found())?;
    app.db
        .model(Some(user), &model_id)
        .await?
        .ok_or_else(not_found)
}

fn model_json(row: &ModelRow, user: &OrgId, active: &str, with_card: bool) -> Value {
    let card: Value = serde_json::from_str(&row.card).unwrap_or(Value::Null);
    let owner = match row.owner_id.as_deref() {
        None => "operator",
        Some(owner) if owner == user.as_str() => "you",
        Some(_) => "shared",
    };
    let mut out = json!({
        "id": row.id,
        "name": card.get("name"),
        "active": row.id == active,
        "owner": owner,
        "created_at": rfc3339(row.created_at),
        "label": card.get("label"),
        "features": card.get("features").and_then(Value::as_array).map(Vec::len),
        "training_rows": card.pointer("/training_data/rows"),
        "roc_auc": card.pointer("/cross_validation/roc_auc/mean"),
        "log_loss": card.pointer("/cross_validation/log_loss/mean"),
        // Its live accuracy, measured on outcomes (`api/outcomes.rs`).
        "performance_url": format!("/api/models/{}/performance", row.id),
    });
    if with_card {
        out["card"] = card;
    }
    out
}

fn training_json(row: &TrainingRow) -> Value {
    json!({
        "id": row.id,
        "status": row.status,
        "attempt": row.attempt,
        "label": row.label,
        "id_column": row.id_column,
        "group": row.group_column,
        "observation_date": row.observation_date_column,
        "name": row.name,
        "queued_at": rfc3339(row.queued_at),
        "started_at": row.started_at.map(rfc3339),
        "completed_at": row.completed_at.map(rfc3339),
        "model_id": row.model_id,
        "error_message": row.error_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_from_query_and_form() {
        let q = TrainQuery {
            label: Some("Churn".into()),
            ..TrainQuery::default()
        };
        let fields = vec![("id_column".to_owned(), " customerID ".to_owned())];
        let s = TrainSettings::from_parts(q, &fields, "acme-history.csv").unwrap();
        assert_eq!(s.label, "Churn");
        assert_eq!(s.id_column.as_deref(), Some("customerID"));
        assert_eq!(s.name, "acme-history");

        let q = TrainQuery {
            label: Some("Churn".into()),
            ..TrainQuery::default()
        };
        let fields = vec![("label".to_owned(), "Exited".to_owned())];
        let err = TrainSettings::from_parts(q, &fields, "x.csv").unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");

        let s = TrainSettings::from_parts(TrainQuery::default(), &[], "x.csv").unwrap();
        assert_eq!(s.label, "Churn");
    }
}
