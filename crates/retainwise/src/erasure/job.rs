//! The `erase_customer` kind: removes one customer from everything their organisation stored
//! before the request. Every step is idempotent (an object is rewritten only while it still
//! holds the customer, rows are deleted by key), so a retry after a crash anywhere finishes the
//! work and changes nothing twice; the driver retries it like every kind.
//!
//! Per prediction queued before the request: the results (`results/`, the challenger's
//! `shadow/`), the upload, the report and the summary are rewritten without the customer; the
//! spreadsheet-safe copy (`downloads/`, made again on request) and any pieces left by a file
//! scored in pieces are deleted. Per training: its upload is rewritten. Then the customer's
//! history rows, outcomes and the cached comparisons go, and webhook bodies that name them lose
//! those entries. Work still queued or running from before the request is waited for (the job
//! retries on its schedule), so nothing written after it escapes it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::info;

use super::rewrite::{self, IdColumn};
use crate::app::App;
use crate::db::{JobRow, JobTable, Value};
use crate::domain::{ObjectKey, OrgId, PredictionId, UploadId};
use crate::storage::StorageError;
use crate::worker::{Checks, Events, Job, JobContext, JobError, LogId, RetryPolicy};

/// The table of erasures.
const TABLE: JobTable = JobTable::Named("customer_erasures");

/// The delays between attempts while earlier work is still running (and after any transient
/// failure): about a day in all, as long as a large file may wait in a busy queue.
pub const SCHEDULE: &str = "10s,1m,5m,15m,1h,2h,6h,12h";

/// The message of an erasure: which row, and its organisation. Never the customer id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EraseMessage {
    /// The erasure's id (a UUID).
    pub erasure_id: String,
    /// Its organisation.
    pub user_id: String,
}

impl EraseMessage {
    fn owner(&self) -> Option<(String, OrgId)> {
        let id = uuid::Uuid::parse_str(&self.erasure_id).ok()?;
        Some((id.to_string(), self.user_id.parse().ok()?))
    }
}

/// One erasure, validated.
pub struct EraseJob {
    id: String,
    org: OrgId,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Erased {
    /// CSV records removed from stored objects.
    pub rows: u64,
    /// Objects rewritten or deleted.
    pub objects: u64,
}

impl Job for EraseJob {
    const KIND: &'static str = "erase_customer";
    const LOG_ID: LogId = LogId::Job;
    const EVENTS: Events = Events {
        started: "customer_erasure_started",
        failed: "customer_erasure_failed",
        status_updated: None,
    };
    type Payload = EraseMessage;
    type Output = Erased;

    fn retry(_config: &crate::config::Config) -> RetryPolicy {
        RetryPolicy::Schedule(crate::worker::parse_schedule(SCHEDULE).expect("a valid schedule"))
    }

    fn validate(payload: EraseMessage, _checks: &Checks<'_>) -> Result<Self, String> {
        let (id, org) = payload.owner().ok_or_else(|| {
            format!(
                "erasure message names erasure {:?} of organisation {:?}: expected a UUID and a \
                 valid organisation id",
                payload.erasure_id, payload.user_id
            )
        })?;
        Ok(Self { id, org })
    }

    fn record_named(payload: &EraseMessage) -> Option<JobRow> {
        let (id, org) = payload.owner()?;
        Some(JobRow::new(TABLE, id, &org))
    }

    fn record(&self) -> JobRow {
        JobRow::new(TABLE, self.id.clone(), &self.org)
    }

    async fn run(&self, ctx: &JobContext) -> Result<Erased, JobError> {
        erase(ctx, &self.id, &self.org).await?;
        // Counted over every attempt's work (each object noted once).
        let (rows, objects): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT), COUNT(*) FROM erasure_objects \
             WHERE erasure_id = $1",
        )
        .bind(&self.id)
        .fetch_one(ctx.app.db.pool())
        .await?;
        Ok(Erased {
            rows: rows.max(0) as u64,
            objects: objects.max(0) as u64,
        })
    }

    fn completed_columns(&self, erased: &Erased) -> Vec<(&'static str, Value)> {
        vec![
            // The id in clear leaves the database with COMPLETED.
            ("customer_id", Value::Null),
            ("rows_removed", Value::Int(erased.rows as i64)),
            ("objects_rewritten", Value::Int(erased.objects as i64)),
        ]
    }

    fn log_completed(&self, erased: &Erased, took: Duration) {
        info!(job_id = %self.id, kind = Self::KIND, rows_removed = erased.rows, objects = erased.objects, duration_ms = took.as_millis() as u64, "customer_erased");
    }
}

async fn erase(ctx: &JobContext, id: &str, org: &OrgId) -> Result<(), JobError> {
    let app = &ctx.app;
    let pool = app.db.pool();
    let row: Option<(Option<String>, i64)> = sqlx::query_as(
        "SELECT customer_id, queued_at FROM customer_erasures WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(org.as_str())
    .fetch_optional(pool)
    .await?;
    let (customer, asked_at) = row.ok_or(JobError::Stopped)?;
    let customer = customer.ok_or_else(|| {
        JobError::Rejected("this erasure has no customer id left to erase".to_owned())
    })?;
    let busy: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM predictions WHERE user_id = $1 AND queued_at <= $2 \
         AND status IN ('QUEUED', 'RUNNING')) + (SELECT COUNT(*) FROM model_trainings \
         WHERE user_id = $1 AND queued_at <= $2 AND status IN ('QUEUED', 'RUNNING'))",
    )
    .bind(org.as_str())
    .bind(asked_at)
    .fetch_one(pool)
    .await?;
    if busy > 0 {
        return Err(JobError::Waiting(format!(
            "{busy} prediction(s) or training(s) queued before this erasure are still running; \
             the erasure starts once they have finished"
        )));
    }
    let scratch = tempfile::tempdir().map_err(JobError::io("creating a scratch folder"))?;
    let mut w = Work {
        app,
        erasure: id,
        customer: &customer,
        dir: scratch.path(),
    };

    let predictions: Vec<(String, String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT id, upload_id, chunks_total, summary FROM predictions \
         WHERE user_id = $1 AND queued_at <= $2 ORDER BY queued_at",
    )
    .bind(org.as_str())
    .bind(asked_at)
    .fetch_all(pool)
    .await?;
    for (pid, upload, chunks, summary) in predictions {
        if ctx.should_stop() {
            return Err(JobError::Stopped);
        }
        let (Ok(p), Ok(upload)) = (pid.parse::<PredictionId>(), upload.parse::<UploadId>()) else {
            continue;
        };
        // The note first (idempotent), then the object: a crash between the two leaves the
        // row for the retry to find, never a removed row without its note.
        let results = ObjectKey::result(org, p);
        // The index a merge stored beside the results holds the id and the rows' byte offsets:
        // removed before the results change (the customers page then indexes the new results).
        if let Some(index) = ObjectKey::stored_index_of(&results) {
            w.delete(&index).await?;
        }
        if let Some(ready) = w.prepare_csv(&results, IdColumn::At(0)).await? {
            note_erased(pool, org, &pid, id).await?;
            w.put(&results, ready).await?;
        }
        // The customers index is cached by this count: recounted after the object changed.
        sqlx::query(
            "UPDATE predictions SET erased_customers = (SELECT COUNT(*) FROM prediction_erasures \
             WHERE prediction_id = $1 AND kind = 'erased') WHERE id = $1 AND user_id = $2",
        )
        .bind(&pid)
        .bind(org.as_str())
        .execute(pool)
        .await?;
        let shadow = ObjectKey::parse_foreign(&format!("shadow/{}/{p}.csv", org.folder()))
            .map_err(|e| JobError::Rejected(e.0))?;
        if let Some(ready) = w.prepare_csv(&shadow, IdColumn::At(0)).await? {
            w.put(&shadow, ready).await?;
        }
        w.delete(&ObjectKey::download(org, p)).await?;
        // Pieces are removed after their merge; what a crash left behind, or a failed file's,
        // is of no more use and holds rows.
        if chunks.is_some() {
            let folder = format!("pieces/{}/{p}/", org.folder());
            for name in w.app.storage.list_prefix(&folder).await? {
                let key = ObjectKey::parse_foreign(&name).map_err(|e| JobError::Rejected(e.0))?;
                w.delete(&key).await?;
            }
        }
        let report = w.scrub_json_object(&ObjectKey::report(org, p)).await?;
        if let Some(text) = summary {
            if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) {
                if rewrite::scrub_json(&mut value, &customer) {
                    sqlx::query(
                        "UPDATE predictions SET summary = $1 WHERE id = $2 AND user_id = $3",
                    )
                    .bind(value.to_string())
                    .bind(&pid)
                    .bind(org.as_str())
                    .execute(pool)
                    .await?;
                }
            }
        }
        // The upload holds the customer's row as sent: its id column is the one the scorer
        // mapped (none: row numbers, nothing to remove), else found by its name.
        let mapped = report.as_ref().map(|r| &r["validation"]["mapping"]["id"]);
        let column = match mapped {
            Some(id) if id.is_object() => id["column_index"]
                .as_u64()
                .map(|i| IdColumn::At(i as usize)),
            _ => Some(named(None)),
        };
        if let Some(column) = column {
            let key = ObjectKey::upload(org, upload);
            if let Some(ready) = w.prepare_csv(&key, column).await? {
                w.put(&key, ready).await?;
            }
        }
    }

    let trainings: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT upload_id, id_column FROM model_trainings WHERE user_id = $1 AND queued_at <= $2",
    )
    .bind(org.as_str())
    .bind(asked_at)
    .fetch_all(pool)
    .await?;
    for (upload, id_column) in trainings {
        let Ok(upload) = upload.parse::<UploadId>() else {
            continue;
        };
        let key = ObjectKey::upload(org, upload);
        if let Some(ready) = w.prepare_csv(&key, named(id_column.as_deref())).await? {
            w.put(&key, ready).await?;
        }
    }

    let owner = crate::history::Owner::of(org);
    let mut tx = pool.begin().await?;
    sqlx::query(
        "DELETE FROM customer_history WHERE owner_id = $1 AND TRIM(customer_id) = $2 \
         AND prediction_id IN (SELECT id FROM predictions WHERE user_id = $3 AND queued_at <= $4)",
    )
    .bind(owner.as_str())
    .bind(customer.trim())
    .bind(org.as_str())
    .bind(asked_at)
    .execute(&mut *tx)
    .await?;
    // Comparisons are a cache made from the history: made again without the customer.
    sqlx::query("DELETE FROM customer_changes WHERE owner_id = $1")
        .bind(owner.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM outcomes WHERE owner_id = $1 AND TRIM(customer_id) = $2 AND recorded_at <= $3",
    )
    .bind(crate::outcomes::owner(org))
    .bind(customer.trim())
    .bind(asked_at)
    .execute(&mut *tx)
    .await?;
    let bodies: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, body FROM webhook_deliveries WHERE user_id = $1 AND queued_at <= $2",
    )
    .bind(org.as_str())
    .bind(asked_at)
    .fetch_all(&mut *tx)
    .await?;
    for (delivery, body) in bodies {
        let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&body) else {
            continue;
        };
        if rewrite::scrub_json(&mut value, &customer) {
            sqlx::query("UPDATE webhook_deliveries SET body = $1 WHERE id = $2 AND user_id = $3")
                .bind(value.to_string())
                .bind(&delivery)
                .bind(org.as_str())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The id column of a file whose mapping is not known: `column` (a training's id column) or
/// the usual names.
fn named(column: Option<&str>) -> IdColumn {
    let names = match column {
        Some(c) => vec![c
            .trim()
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()],
        None => rewrite::ID_NAMES.iter().map(|s| (*s).to_owned()).collect(),
    };
    IdColumn::Named(names)
}

/// Notes on `prediction` that erasure `erasure` removed a row from it (once: keyed by both).
async fn note_erased(
    pool: &sqlx::AnyPool,
    org: &OrgId,
    prediction: &str,
    erasure: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO prediction_erasures (prediction_id, erasure_id, owner_id, kind, created_at) \
         VALUES ($1, $2, $3, 'erased', $4) ON CONFLICT (prediction_id, erasure_id) DO NOTHING",
    )
    .bind(prediction)
    .bind(erasure)
    .bind(org.as_str())
    .bind(crate::time::now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// The state of one run.
struct Work<'a> {
    app: &'a App,
    erasure: &'a str,
    customer: &'a str,
    dir: &'a Path,
}

/// A rewritten object waiting to replace the stored one.
struct Ready {
    path: PathBuf,
    rows: u64,
}

impl Work<'_> {
    /// The object at `key` rewritten without the customer into a scratch file, when it holds
    /// them; `None` when it does not (or does not exist).
    async fn prepare_csv(
        &mut self,
        key: &ObjectKey,
        column: IdColumn,
    ) -> Result<Option<Ready>, JobError> {
        let input = self.dir.join("input");
        let output = self.dir.join("output");
        match self.app.storage.download_to(key, &input).await {
            Ok(_) => {}
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let customer = self.customer.to_owned();
        let out = output.clone();
        let removed = tokio::task::spawn_blocking(move || {
            rewrite::without_customer(&input, &out, &column, &customer)
        })
        .await
        .map_err(|source| JobError::Task {
            what: "rewriting a file without the customer",
            source,
        })?
        .map_err(JobError::io("rewriting a file without the customer"))?;
        Ok((removed.records > 0).then_some(Ready {
            path: output,
            rows: removed.records,
        }))
    }

    /// Replaces the object at `key` with `ready` (one PUT: the old object or the new one,
    /// never a part).
    async fn put(&mut self, key: &ObjectKey, ready: Ready) -> Result<(), JobError> {
        self.noted(key, ready.rows).await?;
        self.app.storage.put_file(key, &ready.path).await?;
        Ok(())
    }

    /// Notes that this erasure replaces or deletes `key`, removing `records` (once: a retry
    /// that finds the object still to do notes nothing again).
    async fn noted(&self, key: &ObjectKey, records: u64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO erasure_objects (erasure_id, object_key, records) VALUES ($1, $2, $3) \
             ON CONFLICT (erasure_id, object_key) DO NOTHING",
        )
        .bind(self.erasure)
        .bind(key.as_str())
        .bind(records as i64)
        .execute(self.app.db.pool())
        .await?;
        Ok(())
    }

    /// Deletes the object at `key` if it exists.
    async fn delete(&mut self, key: &ObjectKey) -> Result<(), JobError> {
        if self.app.storage.exists(key).await? {
            self.noted(key, 0).await?;
            self.app.storage.delete(key).await?;
        }
        Ok(())
    }

    /// The JSON object at `key` without the customer ([`rewrite::scrub_json`]), stored again
    /// when that changed it; returns the document (`None` when there is none).
    async fn scrub_json_object(
        &mut self,
        key: &ObjectKey,
    ) -> Result<Option<serde_json::Value>, JobError> {
        let bytes = match self.app.storage.get_bytes(key).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            let id = self.customer.trim().as_bytes();
            if bytes.windows(id.len()).any(|w| w == id) {
                // Never left behind in silence: the operator must look at this object.
                return Err(JobError::Rejected(format!(
                    "the stored document {key} is not JSON and names the customer, so it \
                     cannot be rewritten; ask the operator to repair it, then ask again"
                )));
            }
            return Ok(None);
        };
        if rewrite::scrub_json(&mut value, self.customer) {
            let text = serde_json::to_vec_pretty(&value)
                .map_err(|e| JobError::io("serialising a report")(e.into()))?;
            self.noted(key, 0).await?;
            self.app.storage.put_bytes(key, text).await?;
        }
        Ok(Some(value))
    }
}
