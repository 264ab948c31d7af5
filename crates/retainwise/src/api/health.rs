//! Liveness and readiness.
//!
//! Every dependency check is bounded by [`CHECK_TIMEOUT`] and the checks run side by side, so
//! `/ready` and `/metrics` answer within about two seconds when Postgres, S3 or SQS hangs
//!. Public answers name the part that failed and how (timed out, failed,
//! disk full) but never an internal URL, bucket or path (item 11): those go to the log.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;
use crate::config::StorageLocation;
use crate::error_chain::Chain;
use crate::http::ApiError;
use crate::log_safe::client_warnings;

/// Longest wait for one dependency check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Free space below which a data folder counts as full: a scored result or an upload could
/// not be written (100 MiB, or twice the upload limit when that is more).
fn min_free_bytes(app: &App) -> u64 {
    (100 * 1024 * 1024).max(app.config.max_upload_bytes.saturating_mul(2))
}

/// `GET /health`: the process answers. Always 200.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /metrics`: Prometheus text format (see [`crate::telemetry`] for the names). Queue
/// gauges are read from the queue at each scrape (at most [`CHECK_TIMEOUT`]), so every API
/// process reports the same queue; `retainwise_queue_stats_up` is 0 when that read failed.
pub async fn metrics(State(app): State<App>) -> impl axum::response::IntoResponse {
    match checked("queue", app.queue.stats()).await {
        Ok(stats) => {
            metrics::gauge!("retainwise_queue_stats_up").set(1.0);
            metrics::gauge!("retainwise_queue_depth").set(stats.depth as f64);
            metrics::gauge!("retainwise_queue_in_flight").set(stats.in_flight as f64);
            metrics::gauge!("retainwise_queue_dead").set(stats.dead as f64);
            metrics::gauge!("retainwise_queue_oldest_message_age_seconds")
                .set(stats.oldest_age.map_or(0.0, |a| a.as_secs_f64()));
        }
        Err(_) => metrics::gauge!("retainwise_queue_stats_up").set(0.0),
    }
    if let Ok(Ok(usage)) = tokio::time::timeout(CHECK_TIMEOUT, app.db.usage_this_month()).await {
        for (org, rows) in usage {
            metrics::gauge!("retainwise_usage_rows_scored", "org" => org).set(rows as f64);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::handle().render(),
    )
}

/// `GET /ready`: 200 when the database, storage and queue answer within [`CHECK_TIMEOUT`] and
/// the local data folders have room and can be written; else 503, naming each failing part
/// (`"timed out after 2 s"`, `"failed (see the server log)"`, `"full: … MiB free"`).
pub async fn ready(State(app): State<App>) -> (StatusCode, Json<Value>) {
    let (database, storage, queue, disk) = tokio::join!(
        checked("database", app.db.check()),
        checked("storage", app.storage.check()),
        checked("queue", async { app.queue.stats().await.map(|_| ()) }),
        disk_check(&app),
    );
    let ok = database.is_ok() && storage.is_ok() && queue.is_ok() && disk.is_ok();
    let part = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "database": part(&database),
        "storage": part(&storage),
        "queue": part(&queue),
        "disk": part(&disk),
    });
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}

/// `check` within [`CHECK_TIMEOUT`]; the error is logged whole (at most once a minute per
/// part) and answered as a short public sentence.
async fn checked<T, E>(part: &str, check: impl Future<Output = Result<T, E>>) -> Result<T, String>
where
    E: std::error::Error + 'static,
{
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            if let Some(suppressed) = client_warnings().allow(&format!("check_failed {part}")) {
                tracing::warn!(part, error = %Chain(&e), suppressed, "dependency_check_failed");
            }
            Err("failed (see the server log)".to_owned())
        }
        Err(_) => {
            if let Some(suppressed) = client_warnings().allow(&format!("check_timeout {part}")) {
                tracing::warn!(
                    part,
                    timeout_secs = CHECK_TIMEOUT.as_secs(),
                    suppressed,
                    "dependency_check_timed_out"
                );
            }
            Err(format!("timed out after {} s", CHECK_TIMEOUT.as_secs()))
        }
    }
}

/// Refuses new work while a local folder the service writes is full or not writable (what
/// `/ready` reports as `disk`): accepting an upload a worker then cannot store would end in a
/// dead-lettered job. A check that fails for another reason (a timeout) does not refuse.
pub(crate) async fn refuse_when_disk_full(app: &App) -> Result<(), ApiError> {
    match disk_check(app).await {
        Err(why) if why.starts_with("full") || why.starts_with("not writable") => {
            let (state, detail) = why.split_once(": ").unwrap_or((why.as_str(), ""));
            Err(ApiError::StorageFull(format!(
                "the server's storage is {state} ({detail}), so no upload is accepted until the \
                 operator frees space; try again later or contact the operator"
            )))
        }
        _ => Ok(()),
    }
}

/// The local folders the service writes (objects, the SQLite database, temporary files) have
/// [`min_free_bytes`] free and accept a new file.
async fn disk_check(app: &App) -> Result<(), String> {
    let mut folders: Vec<PathBuf> = vec![std::env::temp_dir()];
    if let StorageLocation::Local(dir) = &app.config.storage {
        folders.push(dir.clone());
    }
    if let Some(db) = crate::config::sqlite_path(&app.config.database_url) {
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            folders.push(parent.to_path_buf());
        }
    }
    let min_free = min_free_bytes(app);
    let check = tokio::task::spawn_blocking(move || {
        for folder in &folders {
            folder_has_room(folder, min_free)?;
        }
        Ok::<(), String>(())
    });
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("failed (see the server log)".to_owned()),
        Err(_) => Err(format!("timed out after {} s", CHECK_TIMEOUT.as_secs())),
    }
}

/// Free space (statvfs, for unprivileged users) and a probe file in `folder`. The path goes to
/// the log only.
fn folder_has_room(folder: &std::path::Path, min_free: u64) -> Result<(), String> {
    const MIB: u64 = 1024 * 1024;
    let stat = rustix::fs::statvfs(folder).map_err(|e| {
        tracing::warn!(folder = %folder.display(), error = %e, "disk_check_failed");
        "failed (see the server log)".to_owned()
    })?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if free < min_free {
        tracing::warn!(folder = %folder.display(), free, min_free, "disk_full");
        return Err(format!(
            "full: {} MiB free in a data folder, {} MiB needed",
            free / MIB,
            min_free.div_ceil(MIB)
        ));
    }
    let probe = tempfile::Builder::new()
        .prefix(".ready-probe")
        .tempfile_in(folder)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"ok").map(|()| f));
    match probe {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(folder = %folder.display(), error = %e, "disk_not_writable");
            Err(format!("not writable: {} (see the server log)", e.kind()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_folder_is_reported_without_its_path() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(folder_has_room(dir.path(), 1), Ok(()));
        // No disk has this much room: the answer says full, with figures and no path.
        let full = folder_has_room(dir.path(), u64::MAX).unwrap_err();
        assert!(full.starts_with("full: "), "{full}");
        assert!(!full.contains(&*dir.path().to_string_lossy()), "{full}");
        let missing = folder_has_room(&dir.path().join("gone"), 1).unwrap_err();
        assert!(!missing.contains("gone"), "{missing}");
    }
}
