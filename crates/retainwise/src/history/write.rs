//! Writing a prediction's customers into the history, from its scored results file.
//!
//! The file is read on a blocking thread, row by row, and handed over in batches of
//! [`BATCH_ROWS`]; each batch is one multi-row `INSERT`, and every [`BATCHES_PER_COMMIT`]
//! batches are one transaction, so memory stays flat whatever the file's size and a long file
//! never holds the database's one writer for long (SQLite has one connection). Every
//! transaction first re-checks that this attempt still holds the prediction (its lease token,
//! `RUNNING`) and stops otherwise, as every worker write is fenced. The first one deletes what
//! an earlier attempt wrote; rows are keyed by (prediction, customer id), so a retry replaces
//! and never adds. The `customer_runs` row is written by the last transaction.

use std::path::Path;

use sqlx::AnyConnection;

use super::drivers::{compact, Driver};
use super::Owner;
use crate::app::App;
use crate::db::Dialect;
use crate::domain::{OrgId, PredictionId};
use crate::worker::JobError;

/// Longest customer id remembered, in bytes. Postgres cannot index a key of more than about
/// 2,700 bytes, and no real id is that long (the scorer accepts fields up to 64 KiB): a row with
/// a longer id is scored as usual but not remembered, and counted (`not_remembered` of the run,
/// shown by the comparisons) rather than failing the job.
pub const MAX_ID_BYTES: usize = 512;

/// Rows per `INSERT` (9 values each: well under SQLite's and Postgres's parameter limits).
const BATCH_ROWS: usize = 500;
/// Batches per transaction: about 5,000 rows, a few milliseconds of the writer at a time.
const BATCHES_PER_COMMIT: usize = 10;

/// One customer read from the results.
struct Row {
    customer_id: String,
    model_id: String,
    ppm: i64,
    level: String,
    drivers: String,
    row: i64,
}

/// Remembers the customers of prediction `prediction` (of `user`) from its scored results at
/// `results` (the scorer's CSV, [`retainwise_model::score::OUTPUT_HEADER`]), scored by
/// `model_id`. `has_ids` is false for a file without a customer-id column: its `customer_id`
/// cells are row numbers, which name no customer across files, so only the run is recorded,
/// with 0 customers and a note saying why. Returns the customers remembered.
///
/// Errors: [`JobError::Stopped`] when the attempt no longer holds the prediction (`lease`);
/// database errors; an unreadable results file (transient: it was written a moment ago).
pub async fn record(
    app: &App,
    user: &OrgId,
    prediction: PredictionId,
    lease: &str,
    results: &Path,
    model_id: &str,
    has_ids: bool,
) -> Result<u64, JobError> {
    let written = write(app, user, prediction, lease, results, model_id, has_ids).await;
    if let Err(JobError::Stopped) = written {
        // Stopped between two batches: a job cancelled meanwhile keeps nothing (a lost lease
        // leaves the rows to the new holder, which replaces them).
        let gone = sqlx::query(
            "DELETE FROM customer_history WHERE prediction_id = $1 AND owner_id = $2 \
             AND EXISTS (SELECT 1 FROM predictions WHERE id = $1 AND status = 'CANCELLED')",
        )
        .bind(prediction.to_string())
        .bind(Owner::of(user).as_str())
        .execute(app.db.pool())
        .await;
        if let Err(e) = gone {
            tracing::warn!(prediction_id = %prediction, error = %crate::error_chain::Chain(&e), "could not remove the customer history of a cancelled prediction");
        }
    }
    written
}

async fn write(
    app: &App,
    user: &OrgId,
    prediction: PredictionId,
    lease: &str,
    results: &Path,
    model_id: &str,
    has_ids: bool,
) -> Result<u64, JobError> {
    let owner = Owner::of(user);
    let id = prediction.to_string();
    let scored_at = crate::time::now_ms();
    let mut tx = app.db.pool().begin().await?;
    fence(&mut tx, &id, user, lease).await?;
    delete_rows(&mut tx, &owner, &id).await?;
    if !has_ids {
        finish(&mut tx, &owner, &id, model_id, 0, scored_at, Some(NO_IDS)).await?;
        tx.commit().await?;
        return Ok(0);
    }
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Vec<Row>>(2);
    let path = results.to_owned();
    let reader = tokio::task::spawn_blocking(move || read_rows(&path, sender));
    let mut total = 0u64;
    let mut in_tx = 0usize;
    while let Some(batch) = batches.recv().await {
        if in_tx == BATCHES_PER_COMMIT {
            tx.commit().await?;
            tx = app.db.pool().begin().await?;
            fence(&mut tx, &id, user, lease).await?;
            in_tx = 0;
        }
        insert(&mut tx, app.db.dialect(), &owner, &id, scored_at, &batch).await?;
        total += batch.len() as u64;
        in_tx += 1;
    }
    let too_long = reader
        .await
        .map_err(|source| JobError::Task {
            what: "reading the results for the customer history",
            source,
        })?
        .map_err(JobError::io("reading the results for the customer history"))?;
    if too_long > 0 {
        tracing::warn!(prediction_id = %id, rows = too_long, max_bytes = MAX_ID_BYTES, "customer_history_ids_too_long");
    }
    // Ids repeated in the file kept their first row: count what the table holds.
    let kept: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM customer_history WHERE prediction_id = $1 AND owner_id = $2",
    )
    .bind(&id)
    .bind(owner.as_str())
    .fetch_one(&mut *tx)
    .await?;
    if kept as u64 != total {
        tracing::info!(prediction_id = %id, rows = total, customers = kept, "customer_history_repeated_ids_kept_first");
    }
    finish(&mut tx, &owner, &id, model_id, kept, scored_at, None).await?;
    sqlx::query(
        "UPDATE customer_runs SET not_remembered = $1 WHERE prediction_id = $2 AND owner_id = $3",
    )
    .bind(i64::try_from(too_long).unwrap_or(i64::MAX))
    .bind(&id)
    .bind(owner.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        prediction_id = %id,
        customers = kept,
        elapsed_ms = u64::try_from(crate::time::now_ms() - scored_at).unwrap_or(0),
        "customer_history_recorded"
    );
    Ok(kept as u64)
}

/// The note of a run whose customers are not remembered.
const NO_IDS: &str = "the file has no customer-id column, so its customers (numbered by row) \
     cannot be followed across files";

/// Removes what a run of `prediction` wrote (a cancelled job keeps nothing).
pub async fn forget(app: &App, user: &OrgId, prediction: PredictionId) -> Result<(), sqlx::Error> {
    let owner = Owner::of(user);
    let mut tx = app.db.pool().begin().await?;
    delete_rows(&mut tx, &owner, &prediction.to_string()).await?;
    tx.commit().await
}

/// Stops unless this attempt still holds the prediction. The update also takes the
/// prediction's row lock on Postgres, so two attempts never write the history at once.
async fn fence(
    conn: &mut AnyConnection,
    id: &str,
    user: &OrgId,
    lease: &str,
) -> Result<(), JobError> {
    let held = sqlx::query(
        "UPDATE predictions SET updated_at = $1 \
         WHERE id = $2 AND user_id = $3 AND lease_token = $4 AND status = 'RUNNING'",
    )
    .bind(crate::time::now_ms())
    .bind(id)
    .bind(user.as_str())
    .bind(lease)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if held == 1 {
        Ok(())
    } else {
        Err(JobError::Stopped)
    }
}

/// Deletes prediction `id`'s rows, and the comparisons made with it on either side.
async fn delete_rows(conn: &mut AnyConnection, owner: &Owner, id: &str) -> Result<(), sqlx::Error> {
    for (table, column) in [
        ("customer_history", "prediction_id"),
        ("customer_runs", "prediction_id"),
        ("customer_changes", "prediction_id"),
        ("customer_changes", "since_prediction_id"),
    ] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {column} = $1 AND owner_id = $2"
        ))
        .bind(id)
        .bind(owner.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn finish(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    model_id: &str,
    customers: i64,
    scored_at: i64,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customer_runs (prediction_id, owner_id, model_id, customers, scored_at, note) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(owner.as_str())
    .bind(model_id)
    .bind(customers)
    .bind(scored_at)
    .bind(note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One multi-row insert; a customer id already in this prediction keeps its first row.
async fn insert(
    conn: &mut AnyConnection,
    dialect: Dialect,
    owner: &Owner,
    id: &str,
    scored_at: i64,
    rows: &[Row],
) -> Result<(), sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO customer_history (prediction_id, customer_id, owner_id, model_id, \
         probability_ppm, risk_level, drivers, scored_at, row_number) VALUES ",
    );
    for i in 0..rows.len() {
        if i > 0 {
            sql.push(',');
        }
        match dialect {
            // Anonymous `?`s bind by position. SQLite looks a `$N` up by its name, one scan of
            // the statement's parameters per bind: a 4,500-parameter insert took about 120 ms
            // so, against a few with `?`.
            Dialect::Sqlite => sql.push_str("(?,?,?,?,?,?,?,?,?)"),
            Dialect::Postgres => {
                let b = i * 9;
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9
                ));
            }
        }
    }
    sql.push_str(" ON CONFLICT (prediction_id, customer_id) DO NOTHING");
    let mut query = sqlx::query(&sql);
    for r in rows {
        query = query
            .bind(id)
            .bind(r.customer_id.as_str())
            .bind(owner.as_str())
            .bind(r.model_id.as_str())
            .bind(r.ppm)
            .bind(r.level.as_str())
            .bind(r.drivers.as_str())
            .bind(scored_at)
            .bind(r.row);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Reads the results at `path` and sends them in batches (blocking); returns how many rows
/// were left out for an id over [`MAX_ID_BYTES`]. Ends early, without an error, when the
/// receiver is gone (the writer stopped: its error is the one reported).
fn read_rows(
    path: &Path,
    sender: tokio::sync::mpsc::Sender<Vec<Row>>,
) -> Result<u64, std::io::Error> {
    let bad = |what: String| std::io::Error::other(format!("the scored results: {what}"));
    let file = std::fs::File::open(path)?;
    let mut reader =
        csv::ReaderBuilder::new().from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let find = |name: &str| header.iter().position(|h| h == name);
    let need = |name: &str| find(name).ok_or_else(|| bad(format!("no {name} column")));
    let (id_at, p_at, level_at) = (
        need("customer_id")?,
        need("churn_probability")?,
        need("risk_level")?,
    );
    let (model_at, risk_at, protective_at) = (
        find("model_version"),
        find("risk_factors"),
        find("protective_factors"),
    );
    let mut record = csv::StringRecord::new();
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut row = 0i64;
    let mut too_long = 0u64;
    while reader
        .read_record(&mut record)
        .map_err(|e| bad(e.to_string()))?
    {
        row += 1;
        let cell = |i: usize| record.get(i).unwrap_or("");
        if cell(id_at).len() > MAX_ID_BYTES {
            too_long += 1;
            continue;
        }
        let p: f64 = cell(p_at)
            .parse()
            .ok()
            .filter(|p: &f64| (0.0..=1.0).contains(p))
            .ok_or_else(|| bad(format!("row {row}: churn_probability is not 0–1")))?;
        let level = cell(level_at);
        level
            .parse::<retainwise_model::RiskLevel>()
            .map_err(|_| bad(format!("row {row}: unknown risk_level {level:?}")))?;
        let factors = |at: Option<usize>| -> Vec<Driver> {
            at.map(cell)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default()
        };
        let mut drivers = factors(risk_at);
        drivers.extend(factors(protective_at));
        batch.push(Row {
            customer_id: cell(id_at).to_owned(),
            model_id: model_at.map(cell).unwrap_or("").to_owned(),
            ppm: (p * 1e6).round() as i64,
            level: level.to_owned(),
            drivers: compact(&drivers),
            row,
        });
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if sender.blocking_send(full).is_err() {
                return Ok(too_long);
            }
        }
    }
    if !batch.is_empty() {
        let _ = sender.blocking_send(batch);
    }
    Ok(too_long)
}
