//! Erasure of one end customer at the organisation's request (GDPR art. 17): the request
//! ([`request`], queued with its audit entry in one transaction), the `erase_customer` job kind
//! that removes the customer from everything the organisation stored before the request
//! (`job.rs`), the rewriting of one object (`rewrite.rs`), and the notes a prediction carries
//! afterwards ([`notes`]): "1 customer erased on …" on a prediction a row was removed from,
//! "1 customer in this file was erased on … at your request" on a file uploaded later that holds
//! the customer again (`returning.rs`, matched by the salted hash; such a file's history starts
//! fresh, as the erased history is gone).
//!
//! The erasure is recorded without the id in clear: `customer_erasures.customer_hash` is the
//! organisation's keyed hash ([`crate::privacy::Salt::erasure_hash`]); the id itself stays on
//! the row only until the job records COMPLETED, in the same statement.

mod job;
pub mod returning;
pub mod rewrite;

pub use job::{EraseJob, EraseMessage};

use serde::Serialize;

use crate::app::App;
use crate::audit::{self, Actor};
use crate::domain::OrgId;
use crate::time::now_ms;

/// Longest customer id an erasure takes, in bytes (the history's own limit: a longer id was
/// never remembered, and no id the scorer writes is near it).
pub const MAX_ID_BYTES: usize = 2048;

/// A queued erasure, as `POST /api/customers/{customer_id}/erase` answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    /// The erasure's id (its job's record).
    pub erasure_id: String,
    /// The customer's keyed hash, the only form in which the erasure names them.
    pub customer_hash: String,
    /// `QUEUED`.
    pub status: &'static str,
}

/// Queues the erasure of `customer_id` in `org`, asked by `actor`: the `customer_erasures` row,
/// its `erase_customer` message and the `customer.erase` audit entry (naming the hash, not the
/// id) in one transaction.
///
/// Errors: [`crate::http::ApiError::BadRequest`] for an empty or over-long id; the database's
/// and the queue's.
pub async fn request(
    app: &App,
    org: &OrgId,
    actor: &Actor,
    customer_id: &str,
) -> Result<Queued, crate::http::ApiError> {
    let id = customer_id.trim();
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(crate::http::ApiError::BadRequest(format!(
            "a customer id to erase is 1 to {MAX_ID_BYTES} bytes long (surrounding spaces are \
             not part of it); this one is {} bytes",
            id.len()
        )));
    }
    let salt = crate::privacy::Salt::of(&app.db, org).await?;
    let hash = salt.erasure_hash(id);
    let erasure_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let mut tx = app.db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO customer_erasures (id, user_id, customer_hash, customer_id, requested_by, \
         status, queued_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'QUEUED', $6, $6)",
    )
    .bind(&erasure_id)
    .bind(org.as_str())
    .bind(&hash)
    .bind(id)
    .bind(actor.user.clone().unwrap_or_default())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let message = EraseMessage {
        erasure_id: erasure_id.clone(),
        user_id: org.as_str().to_owned(),
    };
    crate::worker::enqueue::<EraseJob>(app, &mut tx, &message, retainwise_queue::Priority::Normal)
        .await?;
    audit::record(
        &mut *tx,
        actor,
        audit::Action::CustomerErase,
        Some(("customer", &hash)),
        &audit::Outcome::Ok,
    )
    .await?;
    tx.commit().await?;
    Ok(Queued {
        erasure_id,
        customer_hash: hash,
        status: "QUEUED",
    })
}

/// An erasure as `GET /api/erasures/{id}` shows it (never the id in clear).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Erasure {
    /// Its id.
    pub id: String,
    /// The customer's keyed hash.
    pub customer_hash: String,
    /// Who asked.
    pub requested_by: String,
    /// Its job's status.
    pub status: String,
    /// When it was asked for (RFC 3339).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub queued_at: i64,
    /// When it finished, epoch milliseconds.
    pub completed_at: Option<i64>,
    /// Records removed from stored objects (results, uploads, pieces, shadow scores).
    pub rows_removed: Option<i64>,
    /// Objects rewritten or deleted.
    pub objects_rewritten: Option<i64>,
    /// Why it has not finished yet, or failed.
    pub error_message: Option<String>,
}

/// `org`'s erasure `id`, if it has one.
///
/// Errors: the database's.
pub async fn find(app: &App, org: &OrgId, id: &str) -> Result<Option<Erasure>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, customer_hash, requested_by, status, queued_at, completed_at, rows_removed, \
         objects_rewritten, error_message FROM customer_erasures WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(org.as_str())
    .fetch_optional(app.db.pool())
    .await
}

/// The sentences a prediction carries about erasures: one per kind, counting customers, with
/// the dates (UTC), e.g. `1 customer erased on 2026-12-07 at the organisation's request (its
/// row was removed; the counts and summary are as computed before)`.
///
/// Errors: the database's.
pub async fn notes(
    pool: &sqlx::AnyPool,
    org: &OrgId,
    prediction: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT n.kind, COALESCE(e.completed_at, n.created_at) FROM prediction_erasures n \
         JOIN customer_erasures e ON e.id = n.erasure_id \
         WHERE n.prediction_id = $1 AND n.owner_id = $2 ORDER BY 2",
    )
    .bind(prediction)
    .bind(org.as_str())
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for kind in ["erased", "returned"] {
        let dates: Vec<String> = rows
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, at)| crate::time::rfc3339(*at)[..10].to_owned())
            .collect();
        if dates.is_empty() {
            continue;
        }
        let n = dates.len();
        let who = if n == 1 {
            "1 customer".to_owned()
        } else {
            format!("{n} customers")
        };
        let mut on = dates.clone();
        on.dedup();
        let on = on.join(", ");
        out.push(match kind {
            "erased" => format!(
                "{who} erased on {on} at the organisation's request: {} removed from the \
                 stored files; the counts and summary are as computed before",
                if n == 1 {
                    "its row was"
                } else {
                    "their rows were"
                }
            ),
            _ => format!(
                "{who} in this file {} erased on {on} at your request; {} no link to the \
                 erased history",
                if n == 1 { "was" } else { "were" },
                if n == 1 {
                    "the customer is scored afresh, with"
                } else {
                    "they are scored afresh, with"
                }
            ),
        });
    }
    Ok(out)
}
