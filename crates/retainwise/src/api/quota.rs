//! The quota at upload and `GET /api/usage`. An upload under a quota has its data rows counted
//! (the rows the job could score: every record after the header that is not empty) before it
//! is queued, and is refused at once — 429 naming the quota, the usage and the reset date —
//! when they would take the organisation past its quota (`db/usage.rs`); it is never accepted
//! and failed later.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, CurrentUser};
use crate::app::App;
use crate::db::usage::OverQuota;
use crate::domain::{ObjectKey, OrgId};

/// `GET /api/usage`: `{"month", "rows_scored", "rows_reserved", "quota", "quota_source",
/// "resets_on"}` for the caller's organisation (`quota` null: unlimited).
pub async fn usage(
    State(app): State<App>,
    CurrentUser(org): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let usage = app.db.usage(&org, app.config.default_quota_rows).await?;
    let mut body = serde_json::to_value(&usage).map_err(|e| ApiError::Internal(e.into()))?;
    body["success"] = json!(true);
    Ok(Json(body))
}

/// The quota that applies to `org` now, `None` for unlimited.
pub(super) async fn applies(app: &App, org: &OrgId) -> Result<Option<u64>, ApiError> {
    Ok(app.db.quota(org, app.config.default_quota_rows).await?.0)
}

/// The data rows of the stored file at `key`: records after the header with a non-empty field,
/// read with the scorer's own decoding and dialect detection (quoted line breaks are one row).
///
/// Errors: storage; a file the reader cannot get through is counted up to where it stops (the
/// scorer will report it), never refused here.
pub(super) async fn file_rows(app: &App, key: &ObjectKey) -> Result<u64, ApiError> {
    let dir = tempfile::tempdir().map_err(|e| ApiError::Internal(e.into()))?;
    let path = dir.path().join("count.csv");
    app.storage.download_to(key, &path).await?;
    tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        let mut reader = retainwise_model::csv_input::open(file)?.reader;
        let mut record = csv::ByteRecord::new();
        let mut rows = 0u64;
        let mut header = true;
        while let Ok(true) = reader.read(&mut record) {
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            if std::mem::take(&mut header) {
                continue;
            }
            rows += 1;
        }
        drop(dir);
        Ok(rows)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| ApiError::Internal(e.into()))
}

/// The 429 of an upload past the quota, with `Retry-After` at the month's reset.
pub(super) fn refused(over: OverQuota) -> ApiError {
    let wait = (over.resets_at_ms - crate::time::now_ms()).max(1_000);
    ApiError::OverQuota {
        message: over.to_string(),
        retry_after: std::time::Duration::from_millis(u64::try_from(wait).unwrap_or(1_000)),
    }
}
