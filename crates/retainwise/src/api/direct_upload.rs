//! Direct upload: files of any size (up to `RETAINWISE_MAX_DIRECT_UPLOAD_BYTES`, 5 GiB by
//! default) sent straight to storage, by parts, resumable, then queued exactly like
//! `POST /api/csv`. One client serves both backends: it PUTs the bytes to the URLs it is given,
//! without credentials (the URLs carry their own signature), and asks which parts are present.
//!
//! | call | answer |
//! |---|---|
//! | `POST /api/uploads` `{"filename", "size", "sha256"?, "reference_date"?, "mapping"?, "explain"?, "priority"?}` | 201: `upload_id`, `method` (`PUT`), `expires_at`, `max_bytes`, `part_size`, and `url` (a file of at most one part) or `parts: [{part_number, size, url}]` |
//! | `GET /api/uploads/{id}` | the same, with `status`, `parts_present`, `parts_missing` and fresh URLs |
//! | `PUT /api/uploads/{id}` and `PUT /api/uploads/{id}/parts/{n}` | local storage only, signed URLs: the bytes of the file or of part `n` (exactly its size) |
//! | `POST /api/uploads/{id}/complete` | 202 like `POST /api/csv`; again: the same prediction |
//!
//! On S3 the URLs are presigned S3 PUTs (one object, or the parts of a multipart upload; the
//! content length is signed, so S3 refuses any other size); on the local folder they point at
//! this API, signed with the download links' secret ([`crate::download_link`]). Completion
//! checks the object (every part present, the declared size, the SHA-256 when one was given:
//! 422 naming expected and actual) and the file's head as `POST /api/csv` does, then queues the
//! prediction in the transaction that marks the upload COMPLETED, so two completions queue one
//! prediction. An upload not completed within [`UPLOAD_LIFETIME`] is swept
//! ([`crate::app::sweep_expired_uploads`]).

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::csv_upload::{self, StoredCsv};
use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::db::{DirectUploadRow, NewDirectUpload};
use crate::domain::{ObjectKey, OrgId, PredictionId, UploadId};
use crate::download_link::DownloadLinks;
use crate::time::{now_ms, rfc3339};

/// How long an upload may take from creation to completion: 24 hours. Its URLs work as long
/// (on S3 no longer than the signing credentials last); then it is swept.
pub const UPLOAD_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Most parts of one upload (S3's limit, AWS S3 user guide "Amazon S3 multipart upload
/// limits"); a larger file gets larger parts.
const MAX_PARTS: u64 = 10_000;

/// The routes of this module.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/uploads", post(create))
        .route("/api/uploads/{id}", get(status).put(put_whole))
        .route("/api/uploads/{id}/parts/{n}", put(put_part))
        .route("/api/uploads/{id}/complete", post(complete))
        .layer(Extension(Arc::new(DownloadLinks::default())))
}

/// The body of `POST /api/uploads`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUpload {
    /// The file's name (only its last path segment is kept).
    #[serde(alias = "file_name")]
    filename: String,
    /// Its size in bytes.
    #[serde(alias = "size_bytes")]
    size: u64,
    /// Its SHA-256, 64 hex digits, checked on completion.
    #[serde(default)]
    sha256: Option<String>,
    /// As `POST /api/csv`'s form field.
    #[serde(default)]
    reference_date: Option<String>,
    /// As `POST /api/csv`'s form field: a JSON object (or its text).
    #[serde(default)]
    mapping: Option<Value>,
    /// `normal` or `high`, as `POST /api/csv?priority=`.
    #[serde(default)]
    priority: Option<String>,
    /// `top`, `none` or `all`, as `POST /api/csv`'s form field.
    #[serde(default)]
    explain: Option<String>,
}

/// Bytes per part and number of parts for a file of `size` bytes.
fn layout(size: u64, part_bytes: u64) -> (u64, u32) {
    const MIB: u64 = 1024 * 1024;
    let part = part_bytes.max(size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB);
    (part, size.div_ceil(part).max(1) as u32)
}

/// Size of part `n` (1-based) of an upload.
fn part_len(row: &DirectUploadRow, n: u32) -> u64 {
    let (size, part) = (row.size_bytes as u64, row.part_size as u64);
    size.saturating_sub(u64::from(n - 1) * part).min(part)
}

/// `POST /api/uploads`: declares an upload and answers where to send its bytes.
async fn create(
    State(app): State<App>,
    Extension(links): Extension<Arc<DownloadLinks>>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
    body: Result<Json<CreateUpload>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(req) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; send JSON like {{\"filename\": \"customers.csv\", \"size\": 123456789, \"sha256\": \"<64 hex digits, optional>\"}}",
            e.body_text()
        ))
    })?;
    super::health::refuse_when_disk_full(&app).await?;
    let filename = csv_upload::sanitize_filename(&req.filename);
    csv_upload::refuse_not_csv_name(&filename)?;
    let limit = app.config.max_direct_upload_bytes;
    if req.size == 0 {
        return Err(ApiError::BadRequest(format!(
            "{filename:?} is empty (size 0); upload a CSV with a header row and customer rows"
        )));
    }
    if req.size > limit {
        return Err(ApiError::TooLarge(format!(
            "{filename:?} is {} bytes, larger than the direct upload limit of {} ({limit} bytes, \
             RETAINWISE_MAX_DIRECT_UPLOAD_BYTES); split it or ask the operator for a higher limit",
            req.size,
            csv_upload::human_bytes(limit)
        )));
    }
    let sha256 = match req.sha256.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(hex.to_ascii_lowercase())
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "sha256 {:?} is not a SHA-256: give 64 hexadecimal digits (e.g. from sha256sum), or leave it out",
                other.chars().take(80).collect::<String>()
            )))
        }
    };
    let mut fields = Vec::new();
    if let Some(date) = &req.reference_date {
        fields.push(("reference_date".to_owned(), date.clone()));
    }
    match &req.mapping {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => fields.push(("mapping".to_owned(), text.clone())),
        Some(other) => fields.push(("mapping".to_owned(), other.to_string())),
    }
    if let Some(explain) = &req.explain {
        fields.push(("explain".to_owned(), explain.clone()));
    }
    let reference = csv_upload::reference_date(&fields)?;
    let manual = csv_upload::manual_mapping(&fields)?;
    let explain = csv_upload::explain(&fields)?;
    let mapping_json = if manual.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&manual).map_err(|e| ApiError::Internal(e.into()))?)
    };
    let high = csv_upload::high_priority(&app, &user, req.priority.as_deref())?;
    // A cheap early refusal, before gigabytes are sent; the binding check is on completion.
    if app.db.active_jobs(&user).await? >= u64::from(app.config.max_active_jobs_per_user) {
        return Err(csv_upload::jobs_full());
    }

    let (part_size, parts) = layout(req.size, app.config.upload_part_bytes);
    let id = UploadId::new();
    let key = ObjectKey::upload(&user, id);
    let multipart_id = if app.storage.is_s3() && parts > 1 {
        Some(app.storage.create_multipart(&key).await?)
    } else {
        None
    };
    let expires_at = now_ms() + UPLOAD_LIFETIME.as_millis() as i64;
    app.db
        .insert_direct_upload(&NewDirectUpload {
            id,
            user: &user,
            filename: &filename,
            size_bytes: req.size,
            sha256: sha256.as_deref(),
            part_size,
            parts,
            multipart_id: multipart_id.as_deref(),
            reference_date: reference.as_deref(),
            column_mapping: mapping_json.as_deref(),
            explanation: explain.as_str(),
            high_priority: high,
            expires_at,
        })
        .await?;
    tracing::info!(upload_id = %id, size_bytes = req.size, parts, "direct_upload_created");
    let row = app
        .db
        .direct_upload(&user, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("direct upload {id} vanished after its insert"))?;
    let answer = describe(&app, &links, &user, &row, &headers, false).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /api/uploads/{id}`: where the upload stands, which parts are present, and fresh URLs
/// for the bytes still to send.
async fn status(
    State(app): State<App>,
    Extension(links): Extension<Arc<DownloadLinks>>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let row = find(&app, &user, &id).await?;
    Ok(Json(
        describe(&app, &links, &user, &row, &headers, true).await?,
    ))
}

async fn find(app: &App, user: &OrgId, id: &str) -> Result<DirectUploadRow, ApiError> {
    let missing = || ApiError::NotFound(format!("no upload {id}"));
    let id: UploadId = id.parse().map_err(|_| missing())?;
    app.db.direct_upload(user, id).await?.ok_or_else(missing)
}

/// The upload as the client reads it. With `look`, the parts present are read from storage.
async fn describe(
    app: &App,
    links: &DownloadLinks,
    user: &OrgId,
    row: &DirectUploadRow,
    headers: &HeaderMap,
    look: bool,
) -> Result<Value, ApiError> {
    let id: UploadId = row
        .id
        .parse()
        .map_err(|e: crate::domain::DomainError| anyhow::anyhow!(e.0))?;
    let key = ObjectKey::upload(user, id);
    let pending = row.status == "PENDING" && row.expires_at >= now_ms();
    let parts = row.parts as u32;
    let present: Vec<u32> = if look && pending {
        present_parts(app, row, &key).await?
    } else {
        Vec::new()
    };
    let mut answer = json!({
        "success": true,
        "upload_id": row.id,
        "status": if row.status == "PENDING" && !pending { "EXPIRED" } else { row.status.as_str() },
        "filename": row.filename,
        "size": row.size_bytes,
        "sha256": row.sha256,
        "method": "PUT",
        "max_bytes": app.config.max_direct_upload_bytes,
        "part_size": row.part_size,
        "parts_total": parts,
        "expires_at": rfc3339(row.expires_at),
        "status_url": format!("/api/uploads/{id}"),
        "complete_url": format!("/api/uploads/{id}/complete"),
    });
    if let Some(p) = &row.prediction_id {
        answer["prediction_id"] = json!(p);
        answer["prediction_url"] = json!(format!("/api/predictions/{p}"));
    }
    if let Some(e) = &row.error_message {
        answer["error"] = json!(e);
    }
    if !pending {
        return Ok(answer);
    }
    if look {
        let missing: Vec<u32> = (1..=parts).filter(|n| !present.contains(n)).collect();
        answer["parts_present"] = json!(present);
        answer["parts_missing"] = json!(missing);
    }
    let remaining = Duration::from_millis((row.expires_at - now_ms()).max(1) as u64);
    let local_query = if app.storage.is_s3() {
        None
    } else {
        let expires = (row.expires_at / 1000) as u64;
        Some(links.upload_query(&app.db, user, id, expires).await?)
    };
    let origin = origin(app, headers)?;
    let url_of = |n: Option<u32>| {
        let app = app.clone();
        let (key, local_query, origin, row) = (
            key.clone(),
            local_query.clone(),
            origin.clone(),
            row.clone(),
        );
        async move {
            let len = n.map_or(row.size_bytes as u64, |n| part_len(&row, n));
            match (&local_query, n) {
                (Some(q), None) => Ok::<_, ApiError>(format!("{origin}/api/uploads/{id}?{q}")),
                (Some(q), Some(n)) => Ok(format!("{origin}/api/uploads/{id}/parts/{n}?{q}")),
                (None, None) => Ok(app
                    .storage
                    .presigned_put(&key, None, len, remaining)
                    .await?),
                (None, Some(n)) => {
                    let upload = row.multipart_id.as_deref().ok_or_else(|| {
                        anyhow::anyhow!("upload {id} in parts on S3 has no multipart id")
                    })?;
                    Ok(app
                        .storage
                        .presigned_put(&key, Some((upload, n)), len, remaining)
                        .await?)
                }
            }
        }
    };
    if parts == 1 {
        answer["url"] = json!(url_of(None).await?);
    } else {
        let mut list = Vec::with_capacity(parts as usize);
        for n in 1..=parts {
            list.push(json!({
                "part_number": n,
                "size": part_len(row, n),
                "url": url_of(Some(n)).await?,
            }));
        }
        answer["parts"] = Value::Array(list);
    }
    Ok(answer)
}

/// Where users reach this API: `RETAINWISE_PUBLIC_URL`, else the request's `Host` (checked
/// against the allowed names before any handler ran).
fn origin(app: &App, headers: &HeaderMap) -> Result<String, ApiError> {
    match &app.config.http.public_origin {
        Some(origin) => Ok(origin.clone()),
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|host| format!("http://{host}"))
            .ok_or_else(|| ApiError::BadRequest("the request has no Host".to_owned())),
    }
}

/// The part numbers storage holds whole (each of its expected size).
async fn present_parts(
    app: &App,
    row: &DirectUploadRow,
    key: &ObjectKey,
) -> Result<Vec<u32>, ApiError> {
    let parts = row.parts as u32;
    if !app.storage.is_s3() {
        let found = app.storage.incoming_parts(key).await?;
        return Ok((1..=parts)
            .filter(|n| found.get(n).is_some_and(|p| p.size == part_len(row, *n)))
            .collect());
    }
    match &row.multipart_id {
        None => Ok(match app.storage.size_of(key).await? {
            Some(size) if size == row.size_bytes as u64 => vec![1],
            _ => Vec::new(),
        }),
        Some(upload) => match app.storage.list_parts(key, upload).await? {
            Some(list) => Ok(list
                .iter()
                .filter(|p| p.number >= 1 && p.number <= parts && p.size == part_len(row, p.number))
                .map(|p| p.number)
                .collect()),
            // Already assembled by a completion.
            None => Ok(match app.storage.size_of(key).await? {
                Some(size) if size == row.size_bytes as u64 => (1..=parts).collect(),
                _ => Vec::new(),
            }),
        },
    }
}

/// The signature of a local upload URL.
#[derive(Debug, Deserialize)]
struct LinkQuery {
    user: String,
    expires: u64,
    signature: String,
}

/// `PUT /api/uploads/{id}`: the whole file of a one-part upload on local storage.
async fn put_whole(
    State(app): State<App>,
    Extension(links): Extension<Arc<DownloadLinks>>,
    Path(id): Path<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    receive(&app, &links, &id, None, query, &headers, body).await
}

/// `PUT /api/uploads/{id}/parts/{n}`: part `n` on local storage.
async fn put_part(
    State(app): State<App>,
    Extension(links): Extension<Arc<DownloadLinks>>,
    Path((id, n)): Path<(String, String)>,
    query: Result<Query<LinkQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let n: u32 =
        n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::NotFound(format!("no part {n:?}: parts are numbered from 1"))
        })?;
    receive(&app, &links, &id, Some(n), query, &headers, body).await
}

/// Checks the link, then streams the body into part `n` (or the whole file) on local storage.
async fn receive(
    app: &App,
    links: &DownloadLinks,
    id: &str,
    n: Option<u32>,
    query: Result<Query<LinkQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Query(link) = query.map_err(|e| {
        ApiError::Forbidden(format!(
            "{}; send the bytes to the URL POST /api/uploads answered (it carries user, expires and signature)",
            e.body_text()
        ))
    })?;
    let upload: UploadId = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no upload {id}")))?;
    let user: OrgId = link
        .user
        .parse()
        .map_err(|e: crate::domain::DomainError| ApiError::Forbidden(e.0))?;
    if let Err(refused) = links
        .check_upload(&app.db, &user, upload, link.expires, &link.signature)
        .await?
    {
        return Err(ApiError::Forbidden(
            refused.to_string().replace("download link", "upload link"),
        ));
    }
    let row = find(app, &user, id).await?;
    if app.storage.is_s3() {
        return Err(ApiError::Conflict(format!(
            "upload {id} goes to S3: send its bytes to the URLs POST /api/uploads answered"
        )));
    }
    refuse_unless_pending(&row)?;
    let parts = row.parts as u32;
    let n = match n {
        None if parts == 1 => 1,
        None => {
            return Err(ApiError::Conflict(format!(
            "upload {id} is in {parts} parts of {} bytes: PUT each to /api/uploads/{id}/parts/N",
            row.part_size
        )))
        }
        Some(n) if n > parts => {
            return Err(ApiError::NotFound(format!(
                "upload {id} has parts 1 to {parts}; there is no part {n}"
            )))
        }
        Some(n) => n,
    };
    let expected = part_len(&row, n);
    let what = if parts == 1 {
        "the file".to_owned()
    } else {
        format!("part {n}")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|d| *d != expected) {
        return Err(ApiError::BadRequest(format!(
            "{what} of upload {id} is {expected} bytes; this request has {declared}"
        )));
    }
    let key = ObjectKey::upload(&user, upload);
    let over = Arc::new(AtomicBool::new(false));
    let mut seen = 0u64;
    let chunks = body.into_data_stream().map({
        let over = over.clone();
        move |chunk| {
            let chunk = chunk.map_err(|e| e.to_string())?;
            seen += chunk.len() as u64;
            if seen > expected {
                over.store(true, Ordering::Relaxed);
                return Err(format!("more than {expected} bytes"));
            }
            Ok(chunk)
        }
    });
    let written = match app
        .storage
        .write_incoming_part(&key, n, expected, chunks)
        .await
    {
        Ok(written) => written,
        Err(_) if over.load(Ordering::Relaxed) => {
            return Err(ApiError::BadRequest(format!(
                "{what} of upload {id} is {expected} bytes; more arrived"
            )))
        }
        Err(crate::storage::StorageError::Source(e)) => {
            return Err(ApiError::BadRequest(format!(
                "{what} broke off before its end ({e}); send it again"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if written != expected {
        return Err(ApiError::BadRequest(format!(
            "{what} of upload {id} is {expected} bytes; {written} arrived; send it again"
        )));
    }
    Ok(Json(json!({
        "success": true,
        "upload_id": id,
        "part_number": n,
        "size": written,
    })))
}

/// 409 for an upload that no longer takes bytes.
fn refuse_unless_pending(row: &DirectUploadRow) -> Result<(), ApiError> {
    let id = &row.id;
    match row.status.as_str() {
        "PENDING" if row.expires_at >= now_ms() => Ok(()),
        "PENDING" | "EXPIRED" => Err(ApiError::Conflict(format!(
            "upload {id} expired at {}; start a new upload",
            rfc3339(row.expires_at)
        ))),
        "COMPLETED" => Err(ApiError::Conflict(format!(
            "upload {id} is already complete (prediction {}); it takes no more bytes",
            row.prediction_id.as_deref().unwrap_or("?")
        ))),
        _ => Err(ApiError::Unprocessable(format!(
            "upload {id} failed: {}; start a new upload",
            row.error_message.as_deref().unwrap_or("no reason recorded")
        ))),
    }
}

/// `POST /api/uploads/{id}/complete`: checks the stored bytes and queues the prediction.
/// The work runs in its own task, so a client that gives up waiting does not cut an assembly
/// short; asking again answers from where it got.
async fn complete(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    crate::http::AuditActor(actor): crate::http::AuditActor,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let row = find(&app, &user, &id).await?;
    if row.status == "COMPLETED" {
        return answer_completed(&app, &user, &row).await;
    }
    refuse_unless_pending(&row)?;
    let result = tokio::spawn({
        let (app, actor) = (app.clone(), actor.clone());
        async move { finish(&app, &user, &actor, row).await }
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("completing the upload: {e}")))?;
    if let Err(e) = &result {
        crate::audit::refused_upload(app.db.pool(), &actor, e).await;
    }
    result
}

/// The 202 of a completed upload: its prediction, with the prediction's status now.
async fn answer_completed(
    app: &App,
    user: &OrgId,
    row: &DirectUploadRow,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let prediction: PredictionId = row
        .prediction_id
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e: crate::domain::DomainError| anyhow::anyhow!(e.0))?;
    let upload: UploadId = row
        .id
        .parse()
        .map_err(|e: crate::domain::DomainError| anyhow::anyhow!(e.0))?;
    let status = match app.db.prediction(user, prediction).await? {
        Some(p) => p.status().to_string(),
        None => "QUEUED".to_owned(),
    };
    Ok(csv_upload::queued_answer(
        prediction,
        upload,
        &row.filename,
        row.size_bytes as u64,
        &status,
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn finish(
    app: &App,
    user: &OrgId,
    actor: &crate::audit::Actor,
    row: DirectUploadRow,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let upload: UploadId = row
        .id
        .parse()
        .map_err(|e: crate::domain::DomainError| anyhow::anyhow!(e.0))?;
    let key = ObjectKey::upload(user, upload);
    let declared = row.size_bytes as u64;
    let parts = row.parts as u32;
    let missing_error = |missing: &[u32]| {
        let list: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
        ApiError::Conflict(format!(
            "upload {upload} is not whole: {} of its {parts} parts missing ({}{}); send them (GET /api/uploads/{upload} lists them), then complete again",
            missing.len(),
            list.join(", "),
            if missing.len() > 20 { ", …" } else { "" }
        ))
    };
    // Assemble (or find) the object; the SHA-256 when the local assembly computed it.
    let (size, digest) = if !app.storage.is_s3() {
        let present = present_parts(app, &row, &key).await?;
        let missing: Vec<u32> = (1..=parts).filter(|n| !present.contains(n)).collect();
        if !missing.is_empty() {
            return Err(missing_error(&missing));
        }
        let (digest, len) = match app.storage.assemble_incoming(&key, parts).await {
            Ok(assembled) => assembled,
            Err(e) => {
                // A completion running at the same time may have queued it and removed the
                // parts under this one: then this one answers the same.
                if let Some(now) = app.db.direct_upload(user, upload).await? {
                    if now.status == "COMPLETED" {
                        return answer_completed(app, user, &now).await;
                    }
                }
                return Err(e.into());
            }
        };
        (len, Some(digest))
    } else {
        match &row.multipart_id {
            None => match app.storage.size_of(&key).await? {
                Some(size) => (size, None),
                None => {
                    return Err(ApiError::Conflict(format!(
                        "nothing has been uploaded for {upload} yet: PUT the file to its URL, then complete again"
                    )))
                }
            },
            Some(multipart) => match app.storage.list_parts(&key, multipart).await? {
                Some(stored) => {
                    let mut etags = Vec::with_capacity(parts as usize);
                    let mut missing = Vec::new();
                    for n in 1..=parts {
                        match stored.iter().find(|p| p.number == n) {
                            Some(p) if p.size == part_len(&row, n) => etags.push(p.etag.clone()),
                            Some(p) => {
                                return Err(ApiError::Unprocessable(format!(
                                    "part {n} of upload {upload} holds {} bytes, expected {}; send it again, then complete again",
                                    p.size,
                                    part_len(&row, n)
                                )))
                            }
                            None => missing.push(n),
                        }
                    }
                    if !missing.is_empty() {
                        return Err(missing_error(&missing));
                    }
                    app.storage
                        .complete_multipart(&key, multipart, etags)
                        .await?;
                    (app.storage.size_of(&key).await?.unwrap_or(0), None)
                }
                // Assembled by an earlier completion that stopped before queueing.
                None => match app.storage.size_of(&key).await? {
                    Some(size) => (size, None),
                    None => {
                        return Err(ApiError::Conflict(format!(
                            "the parts of upload {upload} are gone from storage; start a new upload"
                        )))
                    }
                },
            },
        }
    };
    if size != declared {
        let why = format!(
            "the stored file is {size} bytes, but the upload declared {declared} (expected {declared}, actual {size})"
        );
        return Err(refuse(app, user, upload, &key, why).await);
    }
    if let Some(expected) = &row.sha256 {
        let actual = match digest {
            Some(d) => hex(&d),
            None => hex(&app.storage.sha256_of(&key).await?.0),
        };
        if &actual != expected {
            let why = format!(
                "SHA-256 mismatch: expected {expected}, the stored bytes have {actual}; the file changed or broke in transit"
            );
            return Err(refuse(app, user, upload, &key, why).await);
        }
    }
    let head_len = (crate::registry::HEAD_BYTES as u64).min(size);
    let head = app
        .storage
        .get_ranges(&key, std::slice::from_ref(&(0..head_len)))
        .await?
        .into_iter()
        .next()
        .map(|b| b.to_vec())
        .unwrap_or_default();
    if let Err(e @ ApiError::BadRequest(_)) = csv_upload::sniff(&row.filename, &head) {
        return Err(reject(app, user, upload, &key, e).await);
    }
    let stored = StoredCsv {
        upload_id: upload,
        key: key.clone(),
        filename: row.filename.clone(),
        size,
        head,
    };
    let manual: retainwise_model::ManualMapping = match &row.column_mapping {
        Some(json) => serde_json::from_str(json).map_err(|e| ApiError::Internal(e.into()))?,
        None => retainwise_model::ManualMapping::new(),
    };
    let explanation: retainwise_model::Explain = row
        .explanation
        .parse()
        .map_err(|e| anyhow::anyhow!("direct upload {upload}: stored explanation: {e}"))?;
    let model_id = app.registry.active_id(&app.db, user).await?;
    // Every refusal `POST /api/csv` gives (400 for the file, 422 for a column choice that
    // cannot work on it) fails the upload the same way; anything else is the server's.
    match csv_upload::check_readable(app, &model_id, &stored, &manual).await {
        Ok(()) => {}
        Err(e @ (ApiError::BadRequest(_) | ApiError::Unprocessable(_))) => {
            return Err(reject(app, user, upload, &key, e).await)
        }
        Err(e) => return Err(e),
    }
    let prediction_id = PredictionId::new();
    let queued = csv_upload::queue_prediction(
        app,
        user,
        prediction_id,
        &stored,
        &model_id,
        row.high_priority != 0,
        row.reference_date.as_deref(),
        &manual,
        explanation,
        true,
        actor,
    )
    .await?;
    if let Err(e) = app.storage.remove_incoming(&key).await {
        tracing::warn!(upload_id = %upload, error = %e, "could not remove the parts of a completed upload");
    }
    let row = app
        .db
        .direct_upload(user, upload)
        .await?
        .ok_or_else(|| anyhow::anyhow!("direct upload {upload} vanished"))?;
    if !queued {
        // Another completion queued it first, or it expired meanwhile.
        if row.status == "COMPLETED" {
            return answer_completed(app, user, &row).await;
        }
        refuse_unless_pending(&row)?;
        return Err(ApiError::Conflict(format!(
            "upload {upload} could not be completed now; try again"
        )));
    }
    tracing::info!(prediction_id = %prediction_id, upload_id = %upload, size_bytes = size, "prediction_queued");
    Ok(csv_upload::queued_answer(
        prediction_id,
        upload,
        &row.filename,
        size,
        "QUEUED",
    ))
}

/// Marks the upload FAILED with `why` (its bytes are wrong), removes them, and answers 422.
async fn refuse(
    app: &App,
    user: &OrgId,
    upload: UploadId,
    key: &ObjectKey,
    why: String,
) -> ApiError {
    let why = format!("{why}; start a new upload");
    discard(app, user, upload, key, &why).await;
    ApiError::Unprocessable(why)
}

/// [`refuse`] for a file `POST /api/csv` would refuse: the upload FAILED with `error`'s text,
/// and `error` answered as that endpoint answers it.
async fn reject(
    app: &App,
    user: &OrgId,
    upload: UploadId,
    key: &ObjectKey,
    error: ApiError,
) -> ApiError {
    discard(app, user, upload, key, &error.to_string()).await;
    error
}

async fn discard(app: &App, user: &OrgId, upload: UploadId, key: &ObjectKey, why: &str) {
    if let Err(e) = app.db.fail_direct_upload(user, upload, why).await {
        tracing::warn!(upload_id = %upload, error = %e, "could not record a refused upload");
    }
    let _ = app.storage.delete(key).await;
    let _ = app.storage.remove_incoming(key).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_past_ten_thousand() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(layout(1, 16 * MIB), (16 * MIB, 1));
        assert_eq!(layout(16 * MIB, 16 * MIB), (16 * MIB, 1));
        assert_eq!(layout(16 * MIB + 1, 16 * MIB), (16 * MIB, 2));
        let (part, n) = layout(500 * 1024 * MIB, 16 * MIB);
        assert!(u64::from(n) <= MAX_PARTS && part >= 16 * MIB && part % MIB == 0);
        assert!(part * u64::from(n) >= 500 * 1024 * MIB);
    }
}
