//! A customer erased earlier, found again in a file uploaded after the erasure: the prediction
//! notes it ("1 customer in this file was erased on … at your request") instead of silently
//! remembering them. Matched by the keyed hash the erasure kept (the id itself is gone); the
//! customer's history starts fresh, as the erased rows no longer exist.

use std::collections::HashMap;
use std::path::Path;

use crate::app::App;
use crate::domain::{OrgId, PredictionId};
use crate::worker::JobError;

/// Notes on `prediction` (of `org`) each erasure asked for before it was queued whose customer
/// is among the scored rows of `results` (the scorer's CSV, `customer_id` first). Nothing for a
/// file without a customer-id column (`has_ids`: its ids are row numbers) or an organisation
/// that never erased anyone. Idempotent: a retry notes nothing twice.
///
/// Errors: the database's; an unreadable results file (transient).
pub async fn note(
    app: &App,
    org: &OrgId,
    prediction: PredictionId,
    results: &Path,
    has_ids: bool,
) -> Result<u64, JobError> {
    if !has_ids {
        return Ok(0);
    }
    let pool = app.db.pool();
    let id = prediction.to_string();
    let erasures: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, customer_hash FROM customer_erasures WHERE user_id = $1 \
         AND status <> 'CANCELLED' \
         AND queued_at < (SELECT queued_at FROM predictions WHERE id = $2 AND user_id = $1)",
    )
    .bind(org.as_str())
    .bind(&id)
    .fetch_all(pool)
    .await?;
    if erasures.is_empty() {
        return Ok(0);
    }
    let by_hash: HashMap<String, String> = erasures.into_iter().map(|(e, h)| (h, e)).collect();
    let salt = crate::privacy::Salt::of(&app.db, org).await?;
    let path = results.to_owned();
    let found = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
        let mut reader = csv::Reader::from_path(&path).map_err(std::io::Error::other)?;
        let mut record = csv::StringRecord::new();
        let mut found = Vec::new();
        while reader
            .read_record(&mut record)
            .map_err(std::io::Error::other)?
        {
            let cell = record.get(0).unwrap_or("");
            if cell.trim().is_empty() {
                continue;
            }
            if let Some(erasure) = by_hash.get(&salt.erasure_hash(cell)) {
                if !found.contains(erasure) {
                    found.push(erasure.clone());
                }
            }
        }
        Ok(found)
    })
    .await
    .map_err(|source| JobError::Task {
        what: "matching the results with earlier erasures",
        source,
    })?
    .map_err(JobError::io("matching the results with earlier erasures"))?;
    for erasure in &found {
        sqlx::query(
            "INSERT INTO prediction_erasures (prediction_id, erasure_id, owner_id, kind, \
             created_at) VALUES ($1, $2, $3, 'returned', $4) \
             ON CONFLICT (prediction_id, erasure_id) DO NOTHING",
        )
        .bind(&id)
        .bind(erasure)
        .bind(org.as_str())
        .bind(crate::time::now_ms())
        .execute(pool)
        .await?;
    }
    Ok(found.len() as u64)
}
