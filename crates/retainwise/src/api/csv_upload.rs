//! `POST /api/csv`: accept a customer CSV, store it, and queue its prediction.
//!
//! Form fields: `file` (the CSV) and, optionally, before or after the file: `reference_date`
//! (`YYYY-MM-DD`), the date a model's date columns count days back from, instead of the file's
//! own latest date; `mapping`, a JSON object choosing file columns by hand (model input → the
//! header exactly as written, or `null` for "no column: score as missing"), applied before the
//! automatic mapping ([`retainwise_model::ManualMapping`]); `explain`, `top` (default), `none` or
//! `all`: the results' explanation columns ([`retainwise_model::Explain`]).
//!
//! The bytes stream to object storage (never held whole in memory) and are counted on the way, so
//! an oversized upload is stopped at the limit. The upload row, the prediction row and the queue
//! message then commit in one transaction: a job is either fully queued or not at all (the
//! original committed, then published, and lost jobs in between).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use retainwise_queue::Priority;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, CurrentUser, MULTIPART_OVERHEAD};
use crate::app::App;
use crate::db::{self, NewPrediction};
use crate::domain::{ObjectKey, PredictionId, UploadId};
use crate::message::{PredictionJob, PredictionMessage};

/// Query options of an upload.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// `high` puts the job ahead of normal ones.
    #[serde(default)]
    priority: Option<String>,
}

/// Extensions of files that are certainly not CSV text, with what to do instead.
const NOT_CSV: &[(&str, &str)] = &[
    (".xlsx", "an Excel workbook"),
    (".xls", "an Excel workbook"),
    (".ods", "a spreadsheet"),
    (".numbers", "a Numbers spreadsheet"),
    (".pdf", "a PDF"),
    (".zip", "a ZIP archive"),
    (".gz", "a compressed file"),
    (".json", "a JSON file"),
    (".parquet", "a Parquet file"),
];

pub async fn upload(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::BadRequest(format!(
            "send the CSV as multipart/form-data in a field named \"file\" (e.g. curl -F file=@customers.csv): {}",
            e.body_text()
        ))
    })?;
    let result = accept(&app, &user, &actor, query, &headers, &mut multipart).await;
    if let Err(e) = &result {
        crate::audit::refused_upload(app.db.pool(), &actor, e).await;
        if !matches!(e, ApiError::TooLarge(_)) {
            drain(&mut multipart).await;
        }
    }
    result
}

/// Reads what is left of the request body (already bounded by the body limit) so that a client
/// still sending gets the error response instead of a broken pipe.
pub(super) async fn drain(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

async fn accept(
    app: &App,
    user: &crate::domain::OrgId,
    actor: &crate::audit::Actor,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: &HeaderMap,
    multipart: &mut Multipart,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    check_declared_size(app, headers)?;
    super::health::refuse_when_disk_full(app).await?;
    // A cheap early refusal, so that a user at the cap does not send the whole file first; the
    // binding check is the one in `queue_prediction`'s transaction.
    if app.db.active_jobs(user).await? >= u64::from(app.config.max_active_jobs_per_user) {
        return Err(jobs_full());
    }
    let high = high_priority(app, user, query.priority.as_deref())?;

    let mut fields = Vec::new();
    let stored = store_csv(app, user, multipart, &mut fields).await?;
    let prediction_id = PredictionId::new();
    let queued = async {
        let (reference, manual) = {
            fields_after_file(multipart, &mut fields).await?;
            (reference_date(&fields)?, manual_mapping(&fields)?)
        };
        let explain = explain(&fields)?;
        // The model is fixed when the job is queued: activating another one later does not
        // change what a queued prediction is scored with.
        let model_id = app.registry.active_id(&app.db, user).await?;
        check_readable(app, &model_id, &stored, &manual).await?;
        queue_prediction(
            app,
            user,
            prediction_id,
            &stored,
            &model_id,
            high,
            reference.as_deref(),
            &manual,
            explain,
            false,
            actor,
        )
        .await
        .map(|_| ())
    }
    .await;
    let StoredCsv {
        upload_id,
        key,
        filename,
        size,
        ..
    } = stored;
    if let Err(e) = queued {
        // Nothing refers to the object: remove it so storage holds no orphans.
        let _ = app.storage.delete(&key).await;
        return Err(e);
    }
    tracing::info!(prediction_id = %prediction_id, upload_id = %upload_id, size_bytes = size, "prediction_queued");
    Ok(queued_answer(
        prediction_id,
        upload_id,
        &filename,
        size,
        "QUEUED",
    ))
}

/// Whether `priority` (`normal`, `high` or absent) puts the job ahead of normal ones.
///
/// Errors: 403 for `high` from a user the operator did not list, 400 for another value.
pub(super) fn high_priority(
    app: &App,
    user: &crate::domain::OrgId,
    priority: Option<&str>,
) -> Result<bool, ApiError> {
    match priority {
        None => Ok(false),
        Some(p) if p.eq_ignore_ascii_case("normal") => Ok(false),
        Some(p) if p.eq_ignore_ascii_case("high") => {
            // Jumping the queue delays everyone else's jobs: the operator decides who may.
            if !app
                .config
                .high_priority_users
                .iter()
                .any(|u| u == user.as_str())
            {
                return Err(ApiError::Forbidden(format!(
                    "priority=high is reserved for users the operator lists in \
                     RETAINWISE_HIGH_PRIORITY_USERS, and {user} is not one of them; upload \
                     without it to queue normally"
                )));
            }
            Ok(true)
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "priority {other:?} is invalid: use normal or high"
        ))),
    }
}

/// The 202 answer of a queued prediction, the same for `POST /api/csv` and a completed direct
/// upload.
pub(super) fn queued_answer(
    prediction_id: PredictionId,
    upload_id: UploadId,
    filename: &str,
    size: u64,
    status: &str,
) -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "message": "file uploaded; the prediction is queued",
            "prediction_id": prediction_id.to_string(),
            "upload_id": upload_id.to_string(),
            "prediction_status": status,
            "filename": filename,
            "size_bytes": size,
            "file_size": size,
            "status_url": format!("/api/predictions/{prediction_id}"),
            "results_url": format!("/api/predictions/{prediction_id}/results"),
        })),
    )
}

/// An upload stored in object storage, not yet referred to by any row.
pub(crate) struct StoredCsv {
    /// Its id.
    pub upload_id: UploadId,
    /// Where it is: `uploads/{user}/{upload_id}.csv`.
    pub key: ObjectKey,
    /// The client's file name, sanitised.
    pub filename: String,
    /// Bytes stored.
    pub size: u64,
    /// The first [`HEAD_BYTES`](crate::registry::HEAD_BYTES) of them (all of a smaller file).
    pub head: Vec<u8>,
}

/// Text fields kept from before the file field, at most.
const MAX_TEXT_FIELDS: usize = 16;
/// Longest text field kept, in bytes.
const MAX_TEXT_FIELD: usize = 1024;
/// Longest `mapping` field kept, in bytes: a choice per input of a wide model (at most
/// `InputLimits::max_columns` headers of up to a few dozen bytes each).
const MAX_MAPPING_FIELD: usize = 64 * 1024;

/// The longest text accepted for form field `name`, and what the limit is for, in words.
fn field_limit(name: &str) -> (usize, &'static str) {
    if name == "mapping" {
        (MAX_MAPPING_FIELD, "a column mapping")
    } else {
        (MAX_TEXT_FIELD, "a setting")
    }
}

/// Reads text form field `field`, named `name`, chunk by chunk and never past its limit
/// ([`MAX_MAPPING_FIELD`] for `mapping`, [`MAX_TEXT_FIELD`] for any other): the one reader of
/// the small fields that come with a file, so no field is read whole before it is measured.
///
/// Errors: 400 naming the field and its limit when it is longer, or when it is not UTF-8 text
/// or the form breaks off.
pub(super) async fn read_text_field(
    field: &mut axum::extract::multipart::Field<'_>,
    name: &str,
) -> Result<String, ApiError> {
    let (limit, what) = field_limit(name);
    let shown: String = name.chars().take(40).collect();
    if let Some(e) = misnamed_file(field) {
        return Err(e);
    }
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| {
        ApiError::BadRequest(format!(
            "reading the form field {shown:?}: {}",
            e.body_text()
        ))
    })? {
        if text.len() + chunk.len() > limit {
            return Err(ApiError::BadRequest(format!(
                "form field {shown:?} is longer than {limit} bytes, the limit for {what}; send short settings"
            )));
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text)
        .map_err(|_| ApiError::BadRequest(format!("form field {shown:?} is not UTF-8 text")))
}

/// The refusal of a file part under another name than `file` (`-F upload=@x.csv`): a misnamed
/// file, not a setting to read or skip. `None` for a part that is not a file.
pub(super) fn misnamed_file(field: &axum::extract::multipart::Field<'_>) -> Option<ApiError> {
    let file_name: String = field.file_name()?.chars().take(80).collect();
    let name: String = field.name().unwrap_or_default().chars().take(40).collect();
    Some(ApiError::BadRequest(format!(
        "the form sends the file {file_name:?} in a field named {name:?}; send the CSV in a \
         field named \"file\" (curl: -F file=@customers.csv)"
    )))
}

/// The refusal of a second `file` part in one form: which of two files was meant cannot be
/// guessed, so neither is taken.
pub(super) fn second_file() -> ApiError {
    ApiError::BadRequest(
        "the form has a second \"file\" part; send one file per request".to_owned(),
    )
}

/// Streams the multipart field `file` to storage under the upload limit, refusing files that
/// are plainly not CSV. Small text fields that come before `file` are appended to `fields`.
/// The caller owns the stored object: it must refer to it in a committed row or delete it.
///
/// Errors: 400 for a missing, empty or non-CSV file or a broken form; 413 above the limit.
pub(super) async fn store_csv(
    app: &App,
    user: &crate::domain::OrgId,
    multipart: &mut Multipart,
    fields: &mut Vec<(String, String)>,
) -> Result<StoredCsv, ApiError> {
    let limit = app.config.max_upload_bytes;
    let too_large = || too_large(limit);
    let mut field = loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => break field,
            Ok(Some(mut field)) => {
                // A small text field before the file (e.g. a training's label): keep it.
                let name = field.name().unwrap_or_default().to_owned();
                let text = read_text_field(&mut field, &name).await?;
                if fields.len() >= MAX_TEXT_FIELDS {
                    return Err(ApiError::BadRequest(format!(
                        "more than {MAX_TEXT_FIELDS} form fields before the file; send only the settings and the file"
                    )));
                }
                fields.push((name, text));
                continue;
            }
            Ok(None) => {
                return Err(ApiError::BadRequest(
                    "no file: send the CSV as multipart/form-data in a field named \"file\""
                        .to_owned(),
                ))
            }
            Err(e) => return Err(multipart_error(e, &too_large)),
        }
    };
    let filename = field
        .file_name()
        .map(sanitize_filename)
        .unwrap_or_else(|| "upload.csv".to_owned());
    refuse_not_csv_name(&filename)?;
    let first = loop {
        match field.chunk().await {
            Ok(Some(chunk)) if chunk.is_empty() => continue,
            Ok(Some(chunk)) => break chunk,
            Ok(None) => {
                return Err(ApiError::BadRequest(format!(
                    "{filename:?} is empty; upload a CSV with a header row and customer rows"
                )))
            }
            Err(e) => return Err(multipart_error(e, &too_large)),
        }
    };
    sniff(&filename, &first)?;

    let upload_id = UploadId::new();
    let key = ObjectKey::upload(user, upload_id);
    let counted = Arc::new(AtomicU64::new(0));
    let over = Arc::new(AtomicBool::new(false));
    let head = Arc::new(std::sync::Mutex::new(Vec::new()));
    let chunks = futures::stream::iter([Ok(first)]).chain(field).map({
        let (counted, over, head) = (counted.clone(), over.clone(), head.clone());
        move |chunk: Result<Bytes, axum::extract::multipart::MultipartError>| {
            let chunk = chunk.map_err(|e| e.body_text())?;
            {
                let mut head = head.lock().expect("head lock");
                let room = crate::registry::HEAD_BYTES
                    .saturating_sub(head.len())
                    .min(chunk.len());
                head.extend_from_slice(&chunk[..room]);
            }
            if counted.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64 > limit
            {
                over.store(true, Ordering::Relaxed);
                return Err("upload limit exceeded".to_owned());
            }
            Ok(chunk)
        }
    });
    let size = match app.storage.put_stream(&key, chunks).await {
        Ok(size) => size,
        Err(_) if over.load(Ordering::Relaxed) => return Err(too_large()),
        Err(crate::storage::StorageError::Source(e)) => {
            return Err(ApiError::BadRequest(format!(
                "the upload broke off before the end: {e}"
            )))
        }
        Err(e) => return Err(e.into()),
    };

    let head = std::mem::take(&mut *head.lock().expect("head lock"));
    Ok(StoredCsv {
        upload_id,
        key,
        filename,
        size,
        head,
    })
}

/// Refuses a file name whose extension says it is certainly not CSV text (a workbook, a PDF,
/// an archive), naming what to do instead.
pub(super) fn refuse_not_csv_name(filename: &str) -> Result<(), ApiError> {
    match NOT_CSV
        .iter()
        .find(|(ext, _)| filename.to_ascii_lowercase().ends_with(ext))
    {
        Some((_, what)) => Err(ApiError::BadRequest(format!(
            "{filename:?} looks like {what}, not a CSV file; export it as CSV (comma-separated values) and upload that"
        ))),
        None => Ok(()),
    }
}

/// What the worker would find at once about a stored upload, answered now (400) instead of
/// after a 202: bytes that are not CSV text, no header, columns the model cannot map (too many
/// absent, or ambiguous), hand-chosen columns that do not exist, a header and no customer
/// rows, or — for a file no larger than its head — no row the scorer would score. `model_id` is the model the job would be queued with; the SaaS baseline takes over a
/// subscription file, as in the worker: both go through [`Registry::inspect`](crate::registry::Registry::inspect)'s
/// parts on the same [`HEAD_BYTES`](crate::registry::HEAD_BYTES).
///
/// Errors: 400 with the scorer's own sentence.
pub(super) async fn check_readable(
    app: &App,
    model_id: &str,
    stored: &StoredCsv,
    manual: &retainwise_model::ManualMapping,
) -> Result<(), ApiError> {
    // A model that does not load fails the job with its own reason; nothing to check here.
    let Ok(model) = app.registry.load(&app.db, &app.storage, model_id).await else {
        return Ok(());
    };
    let head = stored.head.clone();
    let whole = stored.size <= head.len() as u64;
    let (registry, manual) = (app.registry.clone(), manual.clone());
    let (preview, unscorable) = tokio::task::spawn_blocking(move || {
        let (model, preview) =
            registry.inspect(model, &head, &manual, super::csv_tools::PREVIEW_ROWS);
        // A file that fits in its head is scored here in full (a few milliseconds): a file
        // whose every row the worker would reject is refused now, not failed after a 202.
        let unscorable = (whole && preview.as_ref().is_ok_and(|p| p.refusal(true).is_none()))
            .then(|| {
                let opts = retainwise_model::ScoreOptions {
                    mapping: manual,
                    ..Default::default()
                };
                retainwise_model::score_seekable(
                    &model,
                    std::io::Cursor::new(&head),
                    std::io::sink(),
                    &opts,
                    &mut |_| {},
                )
                .err()
                .filter(|e| matches!(e, retainwise_model::ScoreError::NoUsableRows { .. }))
                .map(|e| e.to_string())
            })
            .flatten();
        (preview, unscorable)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let name = &stored.filename;
    match preview {
        Ok(preview) => match (
            &preview.mapping_problem,
            preview.refusal(whole).or(unscorable),
        ) {
            (Some(why), _) => Err(ApiError::Unprocessable(format!("{name:?}: {why}"))),
            (None, Some(why)) => Err(ApiError::BadRequest(format!("{name:?}: {why}"))),
            (None, None) => Ok(()),
        },
        Err(e) => match refused_preview(e) {
            Some(ApiError::Unprocessable(why)) => {
                Err(ApiError::Unprocessable(format!("{name:?}: {why}")))
            }
            Some(other) => Err(ApiError::BadRequest(format!("{name:?}: {other}"))),
            None => Ok(()),
        },
    }
}

/// How a whole-file error met while looking at a file before scoring is answered: 422 for a
/// column mapping chosen by hand that cannot be applied (the text names the input and the
/// column), 400 for the file's own problems; `None` for a transient one (reading failed), which
/// scoring meets and reports itself.
pub(super) fn refused_preview(e: retainwise_model::ScoreError) -> Option<ApiError> {
    match e {
        retainwise_model::ScoreError::BadMapping { message } => {
            Some(ApiError::Unprocessable(message))
        }
        e if e.is_permanent() => Some(ApiError::BadRequest(e.to_string())),
        _ => None,
    }
}

/// The optional `mapping` form field (before or after the file; at most once): a JSON object of
/// model input → header as written (or `null`), see [`retainwise_model::ManualMapping`].
/// Whether its names exist is checked against the file with the other checks at upload.
///
/// Errors: 400 for a field given twice or text that is not JSON; 422 naming the key for an
/// input given twice in the object (JSON leaves duplicate names to the reader, RFC 8259 §4;
/// serde's last-one-wins would drop a choice in silence) or a value that is not a header or
/// `null`.
pub(super) fn manual_mapping(
    fields: &[(String, String)],
) -> Result<retainwise_model::ManualMapping, ApiError> {
    let Some(text) = single_field(fields, "mapping")? else {
        return Ok(retainwise_model::ManualMapping::new());
    };
    if text.trim().is_empty() {
        return Ok(retainwise_model::ManualMapping::new());
    }
    let example = "send a JSON object of model input to the file's header as written, e.g. {\"tenure\": \"Months active\", \"TotalCharges\": null}";
    serde_json::from_str::<UniqueKeys>(text)
        .map(|m| m.0)
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                ApiError::Unprocessable(format!("form field mapping: {e}; {example}"))
            }
            _ => ApiError::BadRequest(format!("form field mapping: {e}; {example}")),
        })
}

/// A [`retainwise_model::ManualMapping`] read from a JSON object that names each input once.
struct UniqueKeys(retainwise_model::ManualMapping);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of model input to header (or null)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut out = retainwise_model::ManualMapping::new();
                while let Some((input, column)) = map.next_entry::<String, Option<String>>()? {
                    if out.contains_key(&input) {
                        return Err(serde::de::Error::custom(format!(
                            "the input {input:?} is given twice in the object; give each input once"
                        )));
                    }
                    out.insert(input, column);
                }
                Ok(UniqueKeys(out))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// The one value of form field `name` (before or after the file), `None` when absent: given
/// twice with the same value it is that value; with different values it is refused, as which
/// was meant cannot be guessed.
///
/// Errors: 400 naming the field and both values.
pub(super) fn single_field<'f>(
    fields: &'f [(String, String)],
    name: &str,
) -> Result<Option<&'f str>, ApiError> {
    let mut given = fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str());
    let first = given.next();
    if let Some(other) = given.find(|v| v.trim() != first.unwrap_or_default().trim()) {
        let clip = |v: &str| v.chars().take(80).collect::<String>();
        return Err(ApiError::BadRequest(format!(
            "form field {name} is given twice with different values ({:?} and {:?}); give it once",
            clip(first.unwrap_or_default()),
            clip(other)
        )));
    }
    Ok(first)
}

/// 413 at once when the request's declared length is above the upload limit.
pub(super) fn check_declared_size(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let limit = app.config.max_upload_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + MULTIPART_OVERHEAD) {
        return Err(too_large(limit));
    }
    Ok(())
}

/// The 413 for a file above `limit` bytes.
fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "the file is larger than the upload limit of {} ({limit} bytes); split it or ask for a higher limit",
        human_bytes(limit)
    ))
}

/// Reads the form fields after the file (text settings only, bounded like those before it)
/// and appends them to `fields`. A second `file` part is refused rather than ignored: which of
/// two files was meant cannot be guessed.
///
/// Errors: 400 for a second file, too many or too long fields, or a broken form.
pub(super) async fn fields_after_file(
    multipart: &mut Multipart,
    fields: &mut Vec<(String, String)>,
) -> Result<(), ApiError> {
    let mut after = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(|e| {
        ApiError::BadRequest(format!("the upload is not a valid multipart form: {e}"))
    })? {
        after += 1;
        if after > MAX_TEXT_FIELDS {
            return Err(ApiError::BadRequest(format!(
                "more than {MAX_TEXT_FIELDS} form fields after the file; send only the settings and the file"
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            return Err(second_file());
        }
        let text = read_text_field(&mut field, &name).await?;
        fields.push((name, text));
    }
    Ok(())
}

/// The optional `reference_date` form field (before or after the file; given twice with
/// different values it is refused), checked and spelled `YYYY-MM-DD`.
pub(super) fn reference_date(fields: &[(String, String)]) -> Result<Option<String>, ApiError> {
    match single_field(fields, "reference_date")?.map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => retainwise_model::dates::parse_reference(raw)
            .map(|d| Some(retainwise_model::dates::iso(d)))
            .map_err(|e| ApiError::BadRequest(format!("form field reference_date: {e}"))),
    }
}

/// The optional `explain` form field: `top` (also when absent), `none` or `all` (given twice
/// with different values it is refused).
pub(super) fn explain(fields: &[(String, String)]) -> Result<retainwise_model::Explain, ApiError> {
    match single_field(fields, "explain")?.map(str::trim) {
        None | Some("") => Ok(retainwise_model::Explain::Top),
        Some(raw) => raw
            .parse()
            .map_err(|e| ApiError::BadRequest(format!("form field explain: {e}"))),
    }
}

/// The upload row, the prediction row (with its reference date and manual mapping, if any) and
/// the queue message, in one transaction. With `direct`, the direct upload of the same id moves
/// from PENDING to COMPLETED in it too; `Ok(false)` then says another completion got there
/// first and nothing was written.
#[allow(clippy::too_many_arguments)] // each is one setting of the upload, named at the call
pub(super) async fn queue_prediction(
    app: &App,
    user: &crate::domain::OrgId,
    prediction_id: PredictionId,
    stored: &StoredCsv,
    model_id: &str,
    high: bool,
    reference_date: Option<&str>,
    manual: &retainwise_model::ManualMapping,
    explain: retainwise_model::Explain,
    direct: bool,
    actor: &crate::audit::Actor,
) -> Result<bool, ApiError> {
    let quota = quota_hold(app, user, &stored.key).await?;
    let mut tx = app.db.pool().begin().await?;
    let settings = QueueSettings {
        model_id,
        high,
        reference_date,
        manual,
        explain,
        direct,
    };
    if !queue_prediction_in(
        &mut tx,
        app,
        user,
        prediction_id,
        stored,
        &settings,
        actor,
        quota,
    )
    .await?
    {
        return Ok(false);
    }
    tx.commit().await?;
    app.queue.wake();
    Ok(true)
}

/// How a queued prediction is scored: the settings [`queue_prediction_in`] writes with it.
pub(crate) struct QueueSettings<'a> {
    /// The model, fixed when the job is queued.
    pub model_id: &'a str,
    /// Ahead of normal jobs.
    pub high: bool,
    /// The date a model's date columns count back from (`YYYY-MM-DD`), else the file's own.
    pub reference_date: Option<&'a str>,
    /// Columns chosen by hand.
    pub manual: &'a retainwise_model::ManualMapping,
    /// The results' explanation columns.
    pub explain: retainwise_model::Explain,
    /// Completes the direct upload of the same id in the same transaction.
    pub direct: bool,
}

/// The quota that applies to `user` and the rows of the stored file at `key` held against it,
/// counted before the transaction that queues the file (a pass over it); `None` without a quota.
///
/// Errors: the database's and storage's.
pub(crate) async fn quota_hold(
    app: &App,
    user: &crate::domain::OrgId,
    key: &ObjectKey,
) -> Result<Option<(u64, u64)>, ApiError> {
    Ok(match super::quota::applies(app, user).await? {
        Some(quota) => Some((quota, super::quota::file_rows(app, key).await?)),
        None => None,
    })
}

/// [`queue_prediction`]'s writes on `tx`, the caller's transaction (a schedule's run writes its
/// slot's row in the same one): the job cap and the quota (`quota`: from [`quota_hold`])
/// checked under the organisation's admission lock, then the upload row, the prediction row,
/// its audit entry and settings, and the queue message. The caller commits, then wakes the
/// queue. `Ok(false)`: a direct upload another completion got first; nothing written.
///
/// Errors: 429 at the job cap or past the quota (nothing written then, the transaction still
/// usable); the database's.
#[allow(clippy::too_many_arguments)] // each is one part of the job, named at the call
pub(crate) async fn queue_prediction_in(
    tx: &mut sqlx::AnyConnection,
    app: &App,
    user: &crate::domain::OrgId,
    prediction_id: PredictionId,
    stored: &StoredCsv,
    settings: &QueueSettings<'_>,
    actor: &crate::audit::Actor,
    quota: Option<(u64, u64)>,
) -> Result<bool, ApiError> {
    let (upload_id, key) = (stored.upload_id, &stored.key);
    let cap = u64::from(app.config.max_active_jobs_per_user);
    if db::admit(&mut *tx, user, db::JobKind::Prediction, cap)
        .await?
        .is_err()
    {
        return Err(jobs_full());
    }
    if let Some((quota, rows)) = quota {
        if let Err(over) = db::usage::check_quota(&mut *tx, user, quota, rows).await? {
            return Err(super::quota::refused(over));
        }
    }
    // After the admission row (the one lock order of every job's transaction).
    if settings.direct && !db::claim_direct_upload(&mut *tx, user, upload_id, prediction_id).await?
    {
        return Ok(false);
    }
    let new = NewPrediction {
        prediction_id,
        upload_id,
        user_id: user,
        filename: &stored.filename,
        object_key: key,
        size_bytes: stored.size,
        model_id: settings.model_id,
        reference_date: settings.reference_date,
    };
    db::insert_queued(&mut *tx, &new).await?;
    let (upload, ok) = (crate::audit::Action::Upload, crate::audit::Outcome::Ok);
    let record = Some(("prediction", prediction_id.to_string()));
    let record = record.as_ref().map(|(k, id)| (*k, id.as_str()));
    crate::audit::record(&mut *tx, actor, upload, record, &ok).await?;
    if !settings.manual.is_empty() {
        let json =
            serde_json::to_string(settings.manual).map_err(|e| ApiError::Internal(e.into()))?;
        db::set_column_mapping(&mut *tx, prediction_id, &json).await?;
    }
    db::set_explanation(&mut *tx, prediction_id, settings.explain).await?;
    if let Some((_, rows)) = quota {
        db::usage::set_quota_rows(&mut *tx, prediction_id, rows).await?;
    }
    let priority = if settings.high {
        Priority::High
    } else {
        Priority::Normal
    };
    crate::worker::enqueue::<PredictionJob>(
        app,
        &mut *tx,
        &PredictionMessage::new(prediction_id, user, upload_id, key, settings.high),
        priority,
    )
    .await?;
    Ok(true)
}

/// The 429 for a user who already has `RETAINWISE_MAX_ACTIVE_JOBS_PER_USER` jobs QUEUED or
/// RUNNING.
pub(super) fn jobs_full() -> ApiError {
    ApiError::TooManyRequests {
        retry_after: std::time::Duration::from_secs(30),
        what:
            "jobs queued or running: you are at your limit (RETAINWISE_MAX_ACTIVE_JOBS_PER_USER); \
               wait for a prediction to finish, then upload again",
    }
}

/// Refuses bytes that are plainly not CSV text (a workbook, a PDF, binary data), with the same
/// rules the scorer's decoder uses, so a file refused here would have failed there too and a
/// file accepted here (UTF-16 with or without a byte-order mark included) can be decoded.
pub(super) fn sniff(filename: &str, head: &[u8]) -> Result<(), ApiError> {
    match retainwise_model::decode::not_text(head) {
        Some(what) => Err(ApiError::BadRequest(format!(
            "{filename:?} is {what}, not a CSV file; export it as CSV (comma-separated values) and upload that"
        ))),
        None => Ok(()),
    }
}

fn multipart_error(
    e: axum::extract::multipart::MultipartError,
    too_large: &dyn Fn() -> ApiError,
) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::BadRequest(format!(
            "the upload is not a valid multipart form: {}",
            e.body_text()
        ))
    }
}

/// Keeps the last path segment and printable characters only, at most 200 of them.
pub(super) fn sanitize_filename(raw: &str) -> String {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "upload.csv".to_owned()
    } else {
        clean
    }
}

pub(super) fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    if n >= GIB && n.is_multiple_of(GIB) {
        format!("{} GB", n / GIB)
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MB", n / MIB)
    } else if n >= 1024 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_binary() {
        assert!(sniff("a.csv", b"PK\x03\x04rest").is_err());
        assert!(sniff("a.csv", b"%PDF-1.7").is_err());
        assert!(sniff("a.csv", b"a,b\x00,c").is_err());
        assert!(sniff("a.csv", &[0xFF, 0xFE, b'a', 0]).is_ok());
        assert!(sniff("a.csv", b"customerID,tenure\n1,2\n").is_ok());
    }

    #[test]
    fn filenames() {
        assert_eq!(sanitize_filename("C:\\Users\\me\\data.csv"), "data.csv");
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("a\u{0}b.csv"), "ab.csv");
        assert_eq!(human_bytes(10 * 1024 * 1024), "10 MB");
    }
}
