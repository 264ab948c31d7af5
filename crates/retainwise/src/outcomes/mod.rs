//! The loop's measuring half: outcomes (who really churned, and when) recorded per owner,
//! matched to the customers of earlier predictions to measure each prediction's and each
//! model's live accuracy ([`performance`]), and joined with the scored features to train a
//! candidate model on what happened ([`retrain`]).
//!
//! Every query here is scoped by [`owner`], the key predictions are scoped by: one place to
//! change when records belong to an organisation instead of a user.
//!
//! Superseding: one outcome is stored per owner and customer. An outcome replaces the stored
//! one when its date is the same or later (on the same date, the one recorded last wins: a
//! correction); an older outcome arriving later is kept out and counted, never silently.

pub mod challenger;
pub mod cli;
pub mod performance;
pub mod retrain;

use std::collections::HashMap;

use chrono::NaiveDate;
use retainwise_model::outcomes::Outcome;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::db::Db;
use crate::domain::OrgId;
use crate::time::now_ms;

/// The key outcomes are stored under for `user`: the same key their predictions are scoped by.
pub fn owner(user: &OrgId) -> &str {
    user.as_str()
}

/// What recording a batch of outcomes did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Customers with no outcome before.
    pub new: u64,
    /// Customers whose stored outcome was replaced (this one's date is the same or later).
    pub superseded: u64,
    /// Outcomes not stored because the customer's stored one is dated later.
    pub older_than_stored: u64,
}

/// One stored outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredOutcome {
    /// The customer id as recorded.
    pub customer_id: String,
    /// True: churned on `date`; false: still a customer on `date`.
    pub churned: bool,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
    /// Where it came from: the file's name, or `json`.
    pub source: String,
}

type Row = (String, i64, String, i64, String);

fn stored((customer_id, churned, date, recorded_at, source): Row) -> StoredOutcome {
    StoredOutcome {
        customer_id,
        churned: churned != 0,
        date,
        recorded_at: crate::time::rfc3339(recorded_at),
        source,
    }
}

/// Records `outcomes` for `user` in one transaction (see the module doc for superseding).
///
/// Errors: the database's.
pub async fn record(
    db: &Db,
    user: &OrgId,
    outcomes: &[Outcome],
    source: &str,
) -> Result<Recorded, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let mut done = Recorded::default();
    let now = now_ms();
    for o in outcomes {
        let date = retainwise_model::dates::iso(o.date);
        match stored_date(&mut tx, user, &o.customer_id).await? {
            Some(d) if d > date => {
                done.older_than_stored += 1;
                continue;
            }
            Some(_) => done.superseded += 1,
            None => done.new += 1,
        }
        sqlx::query(
            "INSERT INTO outcomes (owner_id, customer_id, churned, outcome_date, recorded_at, source) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (owner_id, customer_id) DO UPDATE SET churned = excluded.churned, \
             outcome_date = excluded.outcome_date, recorded_at = excluded.recorded_at, source = excluded.source",
        )
        .bind(owner(user))
        .bind(&o.customer_id)
        .bind(i64::from(o.churned))
        .bind(&date)
        .bind(now)
        .bind(source)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

async fn stored_date(
    conn: &mut AnyConnection,
    user: &OrgId,
    customer: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT outcome_date FROM outcomes WHERE owner_id = $1 AND customer_id = $2",
    )
    .bind(owner(user))
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(d,)| d))
}

/// A page of `user`'s outcomes, latest date first, and how many they have.
///
/// Errors: the database's.
pub async fn list(
    db: &Db,
    user: &OrgId,
    limit: u32,
    offset: u64,
) -> Result<(Vec<StoredOutcome>, u64), sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT customer_id, churned, outcome_date, recorded_at, source FROM outcomes \
         WHERE owner_id = $1 ORDER BY outcome_date DESC, customer_id LIMIT $2 OFFSET $3",
    )
    .bind(owner(user))
    .bind(i64::from(limit))
    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outcomes WHERE owner_id = $1")
        .bind(owner(user))
        .fetch_one(db.pool())
        .await?;
    Ok((rows.into_iter().map(stored).collect(), total as u64))
}

/// Deletes `user`'s outcome of `customer`; false when there was none.
///
/// Errors: the database's.
pub async fn delete(db: &Db, user: &OrgId, customer: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM outcomes WHERE owner_id = $1 AND customer_id = $2")
        .bind(owner(user))
        .bind(customer)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Every outcome of `user`: customer id → (churned, date). Read whole for matching (an
/// outcome is about 50 bytes: a million customers are about 50 MB).
///
/// Errors: the database's; a stored date that does not read (never written so) is an error.
pub async fn all(db: &Db, user: &OrgId) -> anyhow::Result<HashMap<String, (bool, NaiveDate)>> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT customer_id, churned, outcome_date FROM outcomes WHERE owner_id = $1",
    )
    .bind(owner(user))
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|(id, churned, date)| {
            let d = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                .map_err(|e| anyhow::anyhow!("stored outcome date {date:?} of {id}: {e}"))?;
            Ok((id, (churned != 0, d)))
        })
        .collect()
}
