//! What one prediction's and one organisation's stored data is, and removing it: the object
//! prefixes and the rows. The deletion jobs (`worker/deletion.rs`) run these steps; each is
//! idempotent (a missing object or row is not an error, the tombstone is written once), so an
//! attempt that dies midway is repeated from the start by the next and ends in the same state.
//!
//! Kept on purpose: the audit log (append-only), the deletion's own record (`deletions`: when,
//! by whom, what was removed) and, for a deleted prediction, its row and its upload's row as a
//! tombstone — the id, file name, counts and times, `deleted_at` / `deleted_by` — with every
//! stored document (summary, column choices, error text, keys) cleared.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::AnyConnection;

use crate::app::App;
use crate::domain::{ObjectKey, OrgId, PredictionId};
use crate::storage::StorageError;
use crate::time::now_ms;

/// What a deletion removed: objects, and rows per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Objects deleted from storage.
    pub objects: u64,
    /// Rows deleted, by table (tables with none are left out).
    pub rows: BTreeMap<&'static str, u64>,
}

impl Removed {
    fn add_rows(&mut self, table: &'static str, n: u64) {
        if n > 0 {
            *self.rows.entry(table).or_default() += n;
        }
    }
}

/// Why a step failed; both are transient (the job layer retries the whole deletion).
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
}

/// The object prefixes holding one prediction's files: its upload (and a direct upload's
/// staged parts), then [`result_prefixes`].
pub fn prediction_prefixes(org: &OrgId, prediction: PredictionId, upload: &str) -> Vec<String> {
    let f = org.folder();
    let mut prefixes = vec![
        format!("uploads/{f}/{upload}.csv"),
        format!("incoming/uploads/{f}/{upload}.csv/"),
    ];
    prefixes.extend(result_prefixes(org, prediction));
    prefixes
}

/// The object prefixes holding what scoring made of one prediction: its results (and the
/// customers index a merge stores beside them), spreadsheet-safe download copy, report, pieces
/// and challenger's shadow scores. Deleting the prediction and retention's removal of results
/// both remove exactly these.
pub fn result_prefixes(org: &OrgId, prediction: PredictionId) -> [String; 5] {
    let f = org.folder();
    [
        format!("results/{f}/{prediction}."),
        ObjectKey::download(org, prediction).to_string(),
        ObjectKey::report(org, prediction).to_string(),
        format!("pieces/{f}/{prediction}/"),
        format!("shadow/{f}/{prediction}.csv"),
    ]
}

/// The object prefixes holding every file of an organisation (its models' artifacts besides,
/// which live under `models/` by model id: [`delete_organisation`] removes them by name).
pub fn organisation_prefixes(org: &OrgId) -> Vec<String> {
    let f = org.folder();
    [
        "uploads",
        "incoming/uploads",
        "results",
        "downloads",
        "reports",
        "pieces",
        "shadow",
    ]
    .iter()
    .map(|top| format!("{top}/{f}/"))
    .collect()
}

/// The rows that refer to one prediction, as (table, condition on `$1` the prediction id and
/// `$2` the organisation): everything but the prediction's own row and its upload's.
const PREDICTION_ROWS: &[(&str, &str)] = &[
    ("customer_history", "prediction_id = $1 AND owner_id = $2"),
    ("customer_runs", "prediction_id = $1 AND owner_id = $2"),
    (
        "customer_changes",
        "(prediction_id = $1 OR since_prediction_id = $1) AND owner_id = $2",
    ),
    ("shadow_scores", "prediction_id = $1 AND owner_id = $2"),
    ("prediction_chunks", "prediction_id = $1 AND user_id = $2"),
    ("direct_uploads", "prediction_id = $1 AND user_id = $2"),
    ("webhook_deliveries", "subject_id = $1 AND user_id = $2"),
];

/// Removes prediction `prediction` of `org` (its upload `upload`): every object under
/// [`prediction_prefixes`], every row of `PREDICTION_ROWS`, and the row's stored documents;
/// the row becomes a tombstone (`deleted_at` now unless already set, `deleted_by` = `by`).
/// Objects first, then the rows in one transaction: a crash leaves the rows (and the next
/// attempt finds and removes any object left).
///
/// Errors: storage or database (transient: run it again).
pub async fn delete_prediction(
    app: &App,
    org: &OrgId,
    prediction: PredictionId,
    upload: &str,
    by: &str,
) -> Result<Removed, DeletionError> {
    let mut removed = Removed::default();
    for prefix in prediction_prefixes(org, prediction, upload) {
        removed.objects += app.storage.delete_prefix(&prefix).await?;
    }
    let mut tx = app.db.pool().begin().await?;
    remove_prediction_rows(&mut tx, org, prediction, &mut removed).await?;
    sqlx::query(
        "UPDATE predictions SET summary = NULL, column_mapping = NULL, chunk_plan = NULL, \
         error_message = NULL, result_key = NULL, report_key = NULL, \
         deleted_at = COALESCE(deleted_at, $1), deleted_by = $2 WHERE id = $3 AND user_id = $4",
    )
    .bind(now_ms())
    .bind(by)
    .bind(prediction.to_string())
    .bind(org.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(removed)
}

async fn remove_prediction_rows(
    conn: &mut AnyConnection,
    org: &OrgId,
    prediction: PredictionId,
    removed: &mut Removed,
) -> Result<(), sqlx::Error> {
    for (table, condition) in PREDICTION_ROWS {
        let done = sqlx::query(&format!("DELETE FROM {table} WHERE {condition}"))
            .bind(prediction.to_string())
            .bind(org.as_str())
            .execute(&mut *conn)
            .await?;
        removed.add_rows(table, done.rows_affected());
    }
    Ok(())
}

/// Every table holding an organisation's rows and the column naming it, in an order that
/// deletes a row before the rows it refers to (deliveries before endpoints, predictions and
/// trainings before uploads, models after what names them, the organisation last). The
/// `deletions` rows are the organisation's earlier deletions of predictions; its own deletion's
/// row is kept (see the module's doc). The audit log is not here: it is append-only.
pub const ORGANISATION_ROWS: &[(&str, &str)] = &[
    ("customer_history", "owner_id"),
    ("customer_changes", "owner_id"),
    ("customer_runs", "owner_id"),
    ("shadow_scores", "owner_id"),
    ("challengers", "owner_id"),
    ("outcomes", "owner_id"),
    ("prediction_chunks", "user_id"),
    ("webhook_deliveries", "user_id"),
    ("webhook_endpoints", "user_id"),
    ("direct_uploads", "user_id"),
    ("predictions", "user_id"),
    ("model_trainings", "user_id"),
    ("uploads", "user_id"),
    ("active_models", "scope"),
    ("models", "owner_id"),
    ("usage_months", "org_id"),
    ("org_quotas", "org_id"),
    ("org_retention", "org_id"),
    ("retention_runs", "user_id"),
    ("api_keys", "org_id"),
    ("web_sessions", "org_id"),
    ("user_admission", "user_id"),
    ("memberships", "org_id"),
    ("deletions", "user_id"),
    ("organisations", "id"),
];

/// Takes every member's access to `org` away (memberships, API keys, web sessions), on `conn`:
/// the transaction that queues the organisation's deletion, so nothing new is queued in it
/// once the deletion is.
pub async fn revoke_access(conn: &mut AnyConnection, org: &OrgId) -> Result<(), sqlx::Error> {
    for table in ["memberships", "api_keys", "web_sessions"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1"))
            .bind(org.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Removes organisation `org`: its models' artifacts, every object under
/// [`organisation_prefixes`], then every row of [`ORGANISATION_ROWS`] in one transaction, but
/// for the row of `keep` (the deletion job's own record).
///
/// Errors: storage or database (transient: run it again).
pub async fn delete_organisation(
    app: &App,
    org: &OrgId,
    keep: &str,
) -> Result<Removed, DeletionError> {
    let mut removed = Removed::default();
    let artifacts: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT artifact_key FROM models WHERE owner_id = $1")
            .bind(org.as_str())
            .fetch_all(app.db.pool())
            .await?;
    for key in artifacts.into_iter().filter_map(|(k,)| k) {
        removed.objects += app.storage.delete_prefix(&key).await?;
    }
    for prefix in organisation_prefixes(org) {
        removed.objects += app.storage.delete_prefix(&prefix).await?;
    }
    let mut tx = app.db.pool().begin().await?;
    for (table, column) in ORGANISATION_ROWS {
        let mut sql = format!("DELETE FROM {table} WHERE {column} = $1");
        if *table == "deletions" {
            sql.push_str(" AND id <> $2");
        }
        let mut query = sqlx::query(&sql).bind(org.as_str());
        if *table == "deletions" {
            query = query.bind(keep);
        }
        let done = query.execute(&mut *tx).await?;
        removed.add_rows(table, done.rows_affected());
    }
    tx.commit().await?;
    Ok(removed)
}
