//! `retainwise import-original`: copies the original service's uploads and finished
//! predictions, and their objects, from its Postgres database and bucket into retainwise's
//! tables and keys.
//!
//! The original's tables (its Alembic migrations): `users (id, clerk_id, …)`, `uploads (id
//! integer, filename, s3_object_key, file_size, user_id → users.id, created_at, …)`,
//! `predictions (id uuid, upload_id → uploads.id, user_id → users.id, status predictionstatus,
//! s3_output_key, rows_processed, error_message, created_at, updated_at, sqs_message_id, …)`.
//!
//! Mapping: the user is the Clerk id (`users.clerk_id`), which is what the original frontend's
//! tokens carry as `sub`; an upload's integer id becomes a UUID derived from it (so a rerun finds
//! it); a prediction keeps its UUID. The upload's bytes go to `uploads/{user}/{upload}.csv`, a
//! completed prediction's results (the original's CSV, as it is) to `results/{user}/{id}.csv`.
//! QUEUED and RUNNING predictions are left out and listed: nothing would run them here, and a
//! rerun once they finish imports them. Idempotent: a recorded id is skipped before its object
//! is read, an object already at its key is not written again, and every insert is
//! `ON CONFLICT DO NOTHING`. The original database is only read, in one read-only transaction.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::config::StorageLocation;
use crate::db::{Db, ImportedPrediction, ImportedUpload, PredictionStatus};
use crate::domain::{ObjectKey, OrgId, PredictionId, UploadId};
use crate::storage::{Storage, StorageError};
use crate::web::index::{CustomerIndex, Filter, IndexError};

/// The model id recorded for imported predictions (the original's model is not a retainwise
/// artifact).
pub const ORIGINAL_MODEL: &str = "churn-saas-original";

/// What an import did. Every row or object not copied is listed with the reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Users of the original with at least one upload.
    pub users: u64,
    /// Uploads recorded by this run.
    pub uploads_imported: u64,
    /// Uploads already recorded (an earlier run).
    pub uploads_already: u64,
    /// Predictions recorded by this run.
    pub predictions_imported: u64,
    /// Predictions already recorded (an earlier run).
    pub predictions_already: u64,
    /// Objects written to retainwise's storage by this run, and their bytes.
    pub objects_copied: u64,
    /// Bytes of those objects.
    pub bytes_copied: u64,
    /// QUEUED or RUNNING predictions left out (`id (status)`).
    pub predictions_unfinished: Vec<String>,
    /// Objects that could not be copied (`what: key: why`); their rows are still recorded.
    pub objects_missing: Vec<String>,
    /// Rows not recorded at all (`what: why`).
    pub rows_refused: Vec<String>,
    /// Completed predictions whose results were copied but cannot be read as scored rows
    /// (`id: why`): they download, but the dashboard and customers views cannot show them.
    pub results_not_browsable: Vec<String>,
}

impl ImportReport {
    /// True when everything in the original was copied.
    pub fn is_complete(&self) -> bool {
        self.predictions_unfinished.is_empty()
            && self.objects_missing.is_empty()
            && self.rows_refused.is_empty()
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "users:       {}", self.users)?;
        writeln!(
            f,
            "uploads:     {} imported, {} already imported",
            self.uploads_imported, self.uploads_already
        )?;
        writeln!(
            f,
            "predictions: {} imported, {} already imported, {} not finished (left out)",
            self.predictions_imported,
            self.predictions_already,
            self.predictions_unfinished.len()
        )?;
        writeln!(
            f,
            "objects:     {} copied ({} bytes), {} missing",
            self.objects_copied,
            self.bytes_copied,
            self.objects_missing.len()
        )?;
        for p in &self.predictions_unfinished {
            writeln!(
                f,
                "not finished: prediction {p}; run the import again once it has finished"
            )?;
        }
        for o in &self.objects_missing {
            writeln!(f, "missing object: {o}")?;
        }
        for r in &self.rows_refused {
            writeln!(f, "refused: {r}")?;
        }
        for r in &self.results_not_browsable {
            writeln!(
                f,
                "not browsable: results of prediction {r} (they download; the dashboard cannot show them)"
            )?;
        }
        Ok(())
    }
}

/// The retainwise id of the original's upload `id`: a UUID (version 8, RFC 9562) from the
/// SHA-256 of a fixed label and the id, so every run derives the same one.
pub fn upload_id(original: i64) -> UploadId {
    let digest = Sha256::digest(format!("churn-saas upload {original}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
        .parse()
        .expect("a UUID is an upload id")
}

/// Copies the original's data (database `original`, objects in `source`) into `db` and
/// `storage`.
///
/// Errors: either database or store failing (other than a missing object, which is
/// reported); a rerun continues where this one stopped.
pub async fn run(
    original: &AnyPool,
    source: &Storage,
    db: &Db,
    storage: &Storage,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut tx = original.begin().await.context("reading the original")?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .context("opening a read-only transaction on the original")?;
    let users: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT id::text, clerk_id::text FROM users")
            .fetch_all(&mut *tx)
            .await
            .context("reading the original's users")?
            .into_iter()
            .collect();
    let uploads: Vec<(i64, String, String, Option<i64>, String, i64)> = sqlx::query_as(
        "SELECT id::bigint, filename::text, s3_object_key, file_size::bigint, user_id::text, \
         (EXTRACT(EPOCH FROM created_at) * 1000)::bigint FROM uploads ORDER BY id",
    )
    .fetch_all(&mut *tx)
    .await
    .context("reading the original's uploads")?;
    let predictions: Vec<OriginalPrediction> = sqlx::query_as(
        "SELECT id::text AS id, upload_id::bigint AS upload_id, user_id, status::text AS status, \
         s3_output_key::text AS s3_output_key, rows_processed::bigint AS rows_processed, \
         error_message, (EXTRACT(EPOCH FROM created_at) * 1000)::bigint AS created_at, \
         (EXTRACT(EPOCH FROM updated_at) * 1000)::bigint AS updated_at \
         FROM predictions ORDER BY 8, 1",
    )
    .fetch_all(&mut *tx)
    .await
    .context("reading the original's predictions")?;
    // Nothing was written: ending the read-only transaction cannot lose anything.
    tx.commit().await.ok();

    let user_of = |db_user: &str| -> Result<OrgId, String> {
        let clerk = users
            .get(db_user)
            .ok_or_else(|| format!("user {db_user:?} is not in the original's users table"))?;
        clerk
            .parse::<OrgId>()
            .map_err(|e| format!("user {db_user:?}: {}", e.0))
    };
    let mut owners: HashMap<i64, OrgId> = HashMap::new();
    let mut seen_users = std::collections::HashSet::new();
    for (id, filename, source_key, file_size, db_user, created_at) in uploads {
        let user = match user_of(&db_user) {
            Ok(u) => u,
            Err(why) => {
                report.rows_refused.push(format!("upload {id}: {why}"));
                continue;
            }
        };
        seen_users.insert(user.as_str().to_owned());
        owners.insert(id, user.clone());
        let new_id = upload_id(id);
        if db.upload_recorded(new_id).await? {
            report.uploads_already += 1;
            continue;
        }
        let key = ObjectKey::upload(&user, new_id);
        let copied = copy(source, &source_key, storage, &key, &mut report)
            .await
            .with_context(|| format!("copying upload {id} ({source_key})"))?;
        if copied.is_none() {
            report
                .objects_missing
                .push(format!("upload {id}: {source_key}"));
        }
        let size = file_size.or(copied.map(|n| n as i64)).unwrap_or(0);
        if db
            .insert_imported_upload(&ImportedUpload {
                id: new_id,
                user: &user,
                filename: &filename,
                object_key: &key,
                size_bytes: size,
                created_at,
            })
            .await?
        {
            report.uploads_imported += 1;
        } else {
            report.uploads_already += 1;
        }
    }
    report.users = seen_users.len() as u64;

    for p in predictions {
        let status = match p.status.as_str() {
            "COMPLETED" => PredictionStatus::Completed,
            "FAILED" => PredictionStatus::Failed,
            other => {
                report
                    .predictions_unfinished
                    .push(format!("{} ({other})", p.id));
                continue;
            }
        };
        let id: PredictionId = match p.id.parse() {
            Ok(id) => id,
            Err(e) => {
                report
                    .rows_refused
                    .push(format!("prediction {}: {}", p.id, e.0));
                continue;
            }
        };
        let Some(user) = owners.get(&p.upload_id) else {
            report.rows_refused.push(format!(
                "prediction {id}: its upload {} was not imported",
                p.upload_id
            ));
            continue;
        };
        if user_of(&p.user_id).ok().as_ref() != Some(user) {
            report.rows_refused.push(format!(
                "prediction {id}: its user {:?} is not its upload's",
                p.user_id
            ));
            continue;
        }
        if db.prediction_recorded(id).await? {
            report.predictions_already += 1;
            continue;
        }
        let result_key = ObjectKey::result(user, id);
        let mut status = status;
        let mut error = p.error_message.clone();
        let mut stored = None;
        let mut summary = None;
        if status == PredictionStatus::Completed {
            let copied = match &p.s3_output_key {
                Some(source_key) => copy(source, source_key, storage, &result_key, &mut report)
                    .await
                    .with_context(|| format!("copying the results of prediction {id}"))?,
                None => None,
            };
            if copied.is_some() {
                stored = Some(&result_key);
                match CustomerIndex::build(storage, &result_key).await {
                    Ok(index) => summary = Some(summary_of(&index)),
                    Err(IndexError::Format(why)) => {
                        report.results_not_browsable.push(format!("{id}: {why}"))
                    }
                    Err(IndexError::Storage(e)) => {
                        return Err(anyhow::Error::new(e)
                            .context(format!("reading the results of prediction {id}")))
                    }
                }
            } else {
                let where_ = p.s3_output_key.as_deref().unwrap_or("(no s3_output_key)");
                report
                    .objects_missing
                    .push(format!("results of prediction {id}: {where_}"));
                // Recorded as failed with the reason: a COMPLETED row without results would
                // offer a download that cannot work.
                status = PredictionStatus::Failed;
                error = Some(format!(
                    "imported from the original service, where it completed, but its results \
                     ({where_}) were not found; upload the file again"
                ));
            }
        }
        let recorded = db
            .insert_imported_prediction(&ImportedPrediction {
                id,
                user,
                upload: upload_id(p.upload_id),
                status,
                rows_processed: p.rows_processed,
                result_key: stored,
                error_message: error.as_deref(),
                summary: summary.as_deref(),
                model_id: ORIGINAL_MODEL,
                created_at: p.created_at,
                updated_at: p.updated_at,
            })
            .await?;
        if recorded {
            report.predictions_imported += 1;
        } else {
            report.predictions_already += 1;
        }
    }
    Ok(report)
}

/// `retainwise import-original --database-url URL [--bucket B]`: the original's Postgres at
/// `original_url`, its objects in `bucket` (a bucket name, `s3://bucket[/prefix]` or
/// `file:///folder`; default: the bucket of retainwise's S3 storage, without its prefix), into
/// the retainwise database and storage configured by the environment (`RETAINWISE_DATABASE_URL`,
/// `RETAINWISE_STORAGE_URL`, `RETAINWISE_DATA_DIR`). Prints the report; exit code 0 when
/// everything was copied, 2 when something was left out (listed).
///
/// Errors: a setting missing or contradictory (retainwise's database is the original's), either
/// side unreachable.
pub async fn command(original_url: &str, bucket: Option<&str>) -> anyhow::Result<ExitCode> {
    #[derive(clap::Parser)]
    struct Target {
        #[command(flatten)]
        settings: crate::config::Settings,
    }
    let target = <Target as clap::Parser>::try_parse_from(["retainwise"])
        .context("reading retainwise's settings from the environment")?;
    let config = target.settings.resolve()?;
    if !original_url.starts_with("postgres://") && !original_url.starts_with("postgresql://") {
        anyhow::bail!("--database-url must be the original's Postgres URL (postgres://…)");
    }
    if config.database_url == original_url {
        anyhow::bail!(
            "retainwise's database is the original's ({}): set RETAINWISE_DATABASE_URL to \
             retainwise's own database (DATABASE_URL is the original's name for it)",
            crate::app::redact(original_url)
        );
    }
    let source_location = match bucket {
        Some(b) if b.contains("://") => crate::config::parse_storage_url(b)?,
        Some(b) => crate::config::parse_storage_url(&format!("s3://{b}"))?,
        None => match &config.storage {
            StorageLocation::S3 { bucket, .. } => StorageLocation::S3 {
                bucket: bucket.clone(),
                prefix: None,
            },
            StorageLocation::Local(_) => anyhow::bail!(
                "give --bucket (the original's S3 bucket, or file:///folder holding a copy): \
                 retainwise's own storage is a local folder"
            ),
        },
    };
    let source = Storage::open(&source_location).context("opening the original's objects")?;
    let (original, _) = retainwise_queue::connect(original_url)
        .await
        .with_context(|| format!("connecting to {}", crate::app::redact(original_url)))?;
    let db = Db::connect(&config.database_url)
        .await
        .context("opening retainwise's database")?;
    let storage = Storage::open(&config.storage).context("opening retainwise's storage")?;
    let report = run(&original, &source, &db, &storage).await?;
    print!("{report}");
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The summary the pages read (`rows_scored`, `risk_counts`, `mean_churn_probability`), from
/// the imported results themselves: the original's `metrics_json` has another shape.
fn summary_of(index: &CustomerIndex) -> String {
    let (_, entries) = index.page(&Filter::default(), 0, index.len());
    let total: u64 = entries.iter().map(|e| u64::from(e.millionths)).sum();
    let mean = if entries.is_empty() {
        0.0
    } else {
        total as f64 / 1e6 / entries.len() as f64
    };
    let [high, medium, low] = index.counts;
    serde_json::json!({
        "rows_scored": index.len(),
        "rows_rejected": 0,
        "risk_counts": { "high": high, "medium": medium, "low": low },
        "mean_churn_probability": mean,
        "imported_from": "churn-saas",
    })
    .to_string()
}

/// One row of the original's `predictions`.
#[derive(sqlx::FromRow)]
struct OriginalPrediction {
    id: String,
    upload_id: i64,
    user_id: String,
    status: String,
    s3_output_key: Option<String>,
    rows_processed: i64,
    error_message: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// Copies `source_key` of `source` to `key` of `storage` unless `key` already holds an object;
/// returns the bytes now at `key` (`Some(0)` when it was already there), or `None` when the
/// source object is missing or its key is not a safe relative key (recorded in `report`).
async fn copy(
    source: &Storage,
    source_key: &str,
    storage: &Storage,
    key: &ObjectKey,
    report: &mut ImportReport,
) -> Result<Option<u64>, StorageError> {
    let Ok(from) = ObjectKey::parse_foreign(source_key) else {
        return Ok(None);
    };
    if storage.exists(key).await? {
        return Ok(Some(0));
    }
    let stream = match source.get_stream(&from).await {
        Ok(stream) => stream,
        Err(StorageError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let bytes = storage.put_stream(key, stream).await?;
    report.objects_copied += 1;
    report.bytes_copied += bytes;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_stable_and_distinct() {
        assert_eq!(upload_id(15), upload_id(15));
        assert_ne!(upload_id(15), upload_id(16));
        let text = upload_id(15).to_string();
        assert_eq!(&text[14..15], "8", "version 8: {text}");
    }
}
