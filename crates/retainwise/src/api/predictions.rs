//! `GET /api/predictions`, `GET /api/predictions/{id}`, `GET /api/predictions/{id}/results`,
//! `POST /api/predictions/{id}/cancel`.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::db::{Cancelled, PredictionRow, PredictionStatus};
use crate::domain::{ObjectKey, PredictionId};
use crate::http::attachment::ascii_filename;
use crate::privacy::mask::MaskQuery;
use crate::time::rfc3339;

/// Largest page of `GET /api/predictions`.
const MAX_PAGE: u32 = 100;

/// Paging of `GET /api/predictions`: `limit` (1–100, default 20) and `offset` (0 to 2^63 − 1,
/// default 0); anything else is answered 400.
#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<u32>,
    offset: Option<u64>,
}

pub async fn list(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = page.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; limit is 1 to {MAX_PAGE}, offset 0 or more",
            e.body_text()
        ))
    })?;
    let limit = page.limit.unwrap_or(20);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range: use 1 to {MAX_PAGE}"
        )));
    }
    let offset = page.offset.unwrap_or(0);
    // SQL OFFSET is a signed 64-bit number on both databases: a larger one wrapped to a
    // negative (SQLite then answered the first page, Postgres an error).
    if i64::try_from(offset).is_err() {
        return Err(ApiError::BadRequest(format!(
            "offset {offset} is out of range: use 0 to {}",
            i64::MAX
        )));
    }
    let (rows, total) = app.db.predictions(&user, limit, offset).await?;
    let (days, _) = crate::retention::of(app.db.pool(), &user, app.config.retention).await?;
    let predictions: Vec<Value> = rows
        .iter()
        .map(|row| prediction_json(row, false, days))
        .collect();
    Ok(Json(json!({
        "success": true,
        "count": predictions.len(),
        "predictions": predictions,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

/// `GET /api/predictions/{id}`: the prediction with its summary, and `erasures`: the sentences
/// of [`crate::erasure::notes`] (empty unless an erasure touched it).
pub async fn show(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&app, &user, &id).await?;
    let (days, _) = crate::retention::of(app.db.pool(), &user, app.config.retention).await?;
    let mut prediction = prediction_json(&row, true, days);
    // Erasures that removed a row from it, or whose customer it holds again.
    prediction["erasures"] = json!(crate::erasure::notes(app.db.pool(), &user, &row.id).await?);
    Ok(Json(json!({ "success": true, "prediction": prediction })))
}

/// `GET /api/predictions/{id}/results?mask=none|partial|full`: the scored CSV, its personal
/// columns masked as asked (viewers: masked only, `full` by default), spreadsheet-safe.
pub async fn results(
    State(app): State<App>,
    crate::http::Caller(caller): crate::http::Caller,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    Path(id): Path<String>,
    query: Result<Query<MaskQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = caller.org.clone();
    let route = "GET /api/predictions/{id}/results";
    let mask = MaskQuery::decide_audited(query, caller.role, app.db.pool(), &actor, route).await?;
    let row = find(&app, &user, &id).await?;
    completed(&row, &id)?;
    let masker =
        crate::privacy::mask::Masker::new(mask, crate::privacy::Salt::of(&app.db, &user).await?);
    let action = crate::audit::Action::DownloadResults;
    crate::audit::prediction_export(app.db.pool(), &actor, action, &id, mask).await?;
    // Result keys are derived from (user, prediction), never read from a column.
    let key = ObjectKey::result(&user, parse_id(&id)?);
    let stream = app.storage.get_stream(&key).await?;
    let body = spreadsheet_safe(masker.stream(stream));
    let stem = row
        .filename
        .trim_end_matches(".csv")
        .trim_end_matches(".CSV");
    let download = format!("{}_predictions.csv", ascii_filename(stem));
    Ok(csv_attachment(&download, body))
}

/// 409 for a prediction that is not COMPLETED, naming its status (a FAILED one with its
/// reason); 410 for one deleted, being deleted, or whose results retention removed, naming
/// the day: the one answer of every route that serves results.
pub(super) fn completed(row: &PredictionRow, id: &str) -> Result<(), ApiError> {
    if let Some(gone) = row.results_gone() {
        return Err(ApiError::Gone(gone));
    }
    let why = match row.status() {
        PredictionStatus::Completed => return Ok(()),
        PredictionStatus::Failed => format!(
            "prediction {id} failed, so it has no results: {}",
            row.error_message.as_deref().unwrap_or("no reason recorded")
        ),
        status => {
            format!("prediction {id} is {status}; results are available once it is COMPLETED")
        }
    };
    Err(ApiError::Conflict(why))
}

/// `body` as a CSV download named `filename` (ASCII, see
/// [`crate::http::attachment::ascii_filename`]).
pub(super) fn csv_attachment(filename: &str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The stored (raw) results as a download: every cell made spreadsheet-safe on the way out
/// ([`retainwise_model::safe_csv::SafeCsvWriter`], OWASP CSV injection), chunk by chunk, so
/// memory stays flat whatever the file's size. Stored results keep the raw values, which the
/// pages and the API show as given.
fn spreadsheet_safe(
    stream: futures::stream::BoxStream<'static, Result<bytes::Bytes, crate::storage::StorageError>>,
) -> Body {
    Body::from_stream(spreadsheet_safe_chunks(stream))
}

/// The chunks of [`spreadsheet_safe`], for a caller that stores them rather than answers them.
pub(super) fn spreadsheet_safe_chunks(
    stream: futures::stream::BoxStream<'static, Result<bytes::Bytes, crate::storage::StorageError>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    use futures::StreamExt;
    use retainwise_model::safe_csv::SafeCsvWriter;
    use std::io::Write;
    let mut escaper = Some(SafeCsvWriter::new(Vec::new()));
    let chunks = stream
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .map(move |item| -> Result<bytes::Bytes, std::io::Error> {
            let Some(w) = escaper.as_mut() else {
                return Ok(bytes::Bytes::new());
            };
            match item {
                Some(Ok(chunk)) => {
                    w.write_all(&chunk)?;
                    Ok(w.take_output()?.into())
                }
                Some(Err(e)) => {
                    escaper = None;
                    Err(std::io::Error::other(e.to_string()))
                }
                None => {
                    let w = escaper.take().expect("checked above");
                    Ok(w.finish()?.into())
                }
            }
        });
    chunks
}

pub(super) fn parse_id(id: &str) -> Result<PredictionId, ApiError> {
    id.parse()
        .map_err(|e: crate::domain::DomainError| ApiError::BadRequest(e.0))
}

/// `GET /api/predictions/{id}/report`: the validation report (mapping, per-column counts,
/// rejected rows) as JSON; for a FAILED job that wrote none (its results outgrew the limit, or
/// it was dead-lettered), a report that says why: `{"prediction_id", "status": "FAILED",
/// "error"}`; 409 while the job has not run yet. When an erasure removed a customer's row from
/// it, or found an erased customer in it again, the report carries `erasures`: the sentences
/// of [`crate::erasure::notes`].
pub async fn report(
    State(app): State<App>,
    crate::http::Caller(caller): crate::http::Caller,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = caller.org.clone();
    let row = find(&app, &user, &id).await?;
    if let Some(gone) = row.results_gone() {
        return Err(ApiError::Gone(gone));
    }
    let action = crate::audit::Action::DownloadReport;
    crate::audit::prediction_read(app.db.pool(), &actor, action, &id).await?;
    let key = ObjectKey::report(&user, parse_id(&id)?);
    let notes = crate::erasure::notes(app.db.pool(), &user, &row.id).await?;
    // A viewer reads customer ids masked (the rejected rows' ids, the repeated ids), as in
    // every export of customer rows.
    let masked = crate::privacy::mask::Mask::for_role(caller.role, None)?;
    if !notes.is_empty() || masked != crate::privacy::mask::Mask::None {
        // Small (its lists are capped): read whole to carry the erasures' notes or to mask.
        if let Ok(bytes) = app.storage.get_bytes(&key).await {
            let mut report: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored report: {e}")))?;
            if !notes.is_empty() {
                report["erasures"] = json!(notes);
            }
            if masked != crate::privacy::mask::Mask::None {
                let salt = crate::privacy::Salt::of(&app.db, &user).await?;
                crate::privacy::mask::Masker::new(masked, salt).mask_json(&mut report);
            }
            return Ok(Json(report).into_response());
        }
    }
    match app.storage.get_stream(&key).await {
        Ok(stream) => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(stream),
        )
            .into_response()),
        Err(crate::storage::StorageError::NotFound(_))
            if row.status() == crate::db::PredictionStatus::Failed =>
        {
            Ok(Json(json!({
                "prediction_id": id,
                "status": "FAILED",
                "error": row.error_message,
            }))
            .into_response())
        }
        Err(crate::storage::StorageError::NotFound(_)) => Err(ApiError::Conflict(format!(
            "prediction {id} is {}; its report is written when it has been read",
            row.status()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/predictions/{id}/cancel`: a QUEUED job never starts; a RUNNING one stops at its
/// next batch and records no result; either answers 200 with the job, now CANCELLED. A job
/// that has finished answers 409 with its `status`; another user's id answers 404 like a
/// missing one.
pub async fn cancel(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let pid = parse_id(&id)?;
    match app.db.cancel_prediction(&user, pid).await? {
        Cancelled::Now => {
            let row = find(&app, &user, &id).await?;
            let (days, _) =
                crate::retention::of(app.db.pool(), &user, app.config.retention).await?;
            Ok(
                Json(json!({ "success": true, "prediction": prediction_json(&row, false, days) }))
                    .into_response(),
            )
        }
        Cancelled::Finished(status) => Ok((
            axum::http::StatusCode::CONFLICT,
            Json(json!({
                "success": false,
                "status": status,
                "detail": format!(
                    "prediction {pid} is already {status}; only a QUEUED or RUNNING job can be cancelled"
                ),
            })),
        )
            .into_response()),
        Cancelled::Missing => Err(ApiError::NotFound(format!("prediction {pid} not found"))),
    }
}

pub(super) async fn find(
    app: &App,
    user: &crate::domain::OrgId,
    id: &str,
) -> Result<PredictionRow, ApiError> {
    let id = parse_id(id)?;
    app.db
        .prediction(user, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("prediction {id} not found")))
}

/// The JSON shape of a prediction. `detail` adds the summary (risk counts, row issues).
/// `retention`: the organisation's, for when its files will be deleted. A deleted prediction
/// keeps its id, file name, counts and times, with `deleted` saying when and by whom.
pub(super) fn prediction_json(
    row: &PredictionRow,
    detail: bool,
    retention: crate::config::Retention,
) -> Value {
    let status = row.status();
    let gone = row.results_gone();
    let readable = status == PredictionStatus::Completed && gone.is_none();
    let mut value = json!({
        "id": row.id,
        "upload_id": row.upload_id,
        "filename": row.filename,
        "status": status,
        "attempt": row.attempt,
        "rows_total": row.rows_total,
        "rows_processed": row.rows_processed,
        "rows_rejected": row.rows_rejected,
        "error_message": row.error_message,
        "model_id": row.model_id,
        "created_at": rfc3339(row.queued_at),
        "started_at": row.started_at.map(rfc3339),
        "completed_at": row.completed_at.map(rfc3339),
        "results_url": readable.then(|| format!("/api/predictions/{}/results", row.id)),
        // The original frontend shows its Download button only when this is true.
        "has_output": readable && row.result_key.is_some(),
        "deleted": deleted_json(row),
        "retention": retention_json(row, retention),
        // A file scored by many workers: its pieces, and how many are scored (`rows_processed`
        // then counts rows across the pieces while it runs).
        "chunks_total": row.chunks_total,
        "chunks_done": row.chunks_done,
    });
    if let Some(gone) = gone {
        value["gone"] = Value::String(gone);
    }
    if detail {
        let summary = row
            .summary
            .as_deref()
            .and_then(|s| serde_json::from_str::<Value>(s).ok());
        value["summary"] = summary.unwrap_or(Value::Null);
    }
    value
}

/// `{"status", "requested_by", "deleted_at", "note"}` once a deletion was asked (status
/// `DELETING` until it finished, then `DELETED`); `null` before.
fn deleted_json(row: &PredictionRow) -> Value {
    row.deletion_id.as_ref().map_or(Value::Null, |id| {
        json!({
            "deletion_id": id,
            "status": if row.deleted_at.is_some() { "DELETED" } else { "DELETING" },
            "deleted_at": row.deleted_at.map(rfc3339),
            "deleted_by": row.deleted_by,
            "note": row.results_gone(),
        })
    })
}

/// What retention did or will do to the prediction's files: for the upload and the results,
/// `deleted_at` and the days that applied, or `deletes_on` (the UTC day) and the days that
/// apply now, and the sentence the pages show.
fn retention_json(row: &PredictionRow, retention: crate::config::Retention) -> Value {
    use crate::retention::{notice, File};
    let finished = row.finished_at().filter(|_| row.deleted_at.is_none());
    let file = |file: File, deleted: Option<i64>, then: Option<i64>, now: u32| {
        let due = finished.map(|f| crate::time::utc_day(f + i64::from(now) * crate::time::DAY_MS));
        json!({
            "deleted_at": deleted.map(rfc3339),
            "deletes_on": if deleted.is_none() { due } else { None },
            "days": then.unwrap_or(i64::from(now)),
            "note": notice(file, finished, deleted, then, now),
        })
    };
    json!({
        "upload": file(File::Upload, row.upload_deleted_at, row.upload_retention_days, retention.upload_days),
        "results": file(File::Results, row.results_deleted_at, row.results_retention_days, retention.result_days),
    })
}
