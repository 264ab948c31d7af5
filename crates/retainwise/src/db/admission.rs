//! Per-user caps that hold under concurrency: how many jobs a user may have QUEUED or RUNNING,
//! and one training at a time.
//!
//! A count taken before the insert is a race (fifty parallel uploads all read "0 active" and all
//! insert). So the count and the insert share one transaction that first writes the user's row
//! in `user_admission`: on Postgres the upsert takes that row's lock until commit (a second
//! request of the same user waits for it, then — Read Committed — counts with the first one's
//! job included); on SQLite the write takes the database's write lock, which serialises the
//! same way, across processes too. Other users are not held up on Postgres; on SQLite writes
//! are serialised anyway.

use sqlx::AnyConnection;

use super::JobTable;
use crate::domain::OrgId;
use crate::time::now_ms;

/// What a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Predictions QUEUED or RUNNING.
    Prediction,
    /// Trainings QUEUED or RUNNING.
    Training,
}

/// Takes `user`'s admission lock for the rest of `conn`'s transaction and counts their active
/// jobs of `kind`; returns `Err(active)` when `active >= cap`, so the caller refuses and rolls
/// back, else `Ok(())` and the caller inserts its job in the same transaction.
///
/// `conn` must be inside a transaction (the lock is released at its end). Errors: the database.
pub async fn admit(
    conn: &mut AnyConnection,
    user: &OrgId,
    kind: JobKind,
    cap: u64,
) -> Result<Result<(), u64>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_admission (user_id, updated_at) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(user.as_str())
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    let table = match kind {
        JobKind::Prediction => JobTable::Predictions,
        JobKind::Training => JobTable::Trainings,
    };
    let (active,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM {} WHERE user_id = $1 AND status IN ('QUEUED', 'RUNNING')",
        table.name()
    ))
    .bind(user.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let active = active.max(0) as u64;
    Ok(if active >= cap { Err(active) } else { Ok(()) })
}
