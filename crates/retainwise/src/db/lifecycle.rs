//! The one set of lifecycle statements for every table of jobs (predictions, trainings, and any
//! later kind whose table has the same lifecycle columns: `id`, `user_id`, `status`, `attempt`,
//! `lease_token`, `started_at`, `completed_at`, `updated_at`, `error_message`,
//! `dead_lettered_at`).
//!
//! The status moves only along
//!
//! ```text
//! QUEUED ──start──▶ RUNNING ──complete──▶ COMPLETED
//!    │                │ │ └───fail──────▶ FAILED
//!    │                │ └─requeue─▶ QUEUED (a retry)
//!    └──cancel──▶ CANCELLED ◀──cancel──┘
//! QUEUED | RUNNING ──dead_lettered──▶ FAILED with dead_lettered_at (a redrive starts it again)
//! ```
//!
//! and only through [`JobRow`]. Every worker write is fenced by the lease token (the queue
//! receipt) and by `status = 'RUNNING'`, so a worker that lost its lease, or whose job was
//! cancelled, changes nothing.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::any::AnyTypeInfo;
use sqlx::{Any, AnyConnection, Executor};

use super::JobTable;
use crate::domain::{OrgId, PredictionId, TrainingId};
use crate::time::now_ms;

/// Where a job is in its life; stored as its upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    /// Waiting in the queue.
    Queued,
    /// A worker holds it.
    Running,
    /// Done; its results are recorded.
    Completed,
    /// Gave up; `error_message` says why.
    Failed,
    /// Its owner cancelled it; nothing was recorded and it will not run.
    Cancelled,
}

impl JobStatus {
    /// The stored text, e.g. `QUEUED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// `COMPLETED`, `FAILED` or `CANCELLED`: the job will not run again (unless a dead-lettered
    /// failure is redriven).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status text that is none of the five: the row was written by something that does not
/// follow the life cycle, and reading it as any status would be a guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status {0:?}: expected QUEUED, RUNNING, COMPLETED, FAILED or CANCELLED")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "QUEUED" => Self::Queued,
            "RUNNING" => Self::Running,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            other => return Err(UnknownStatus(other.to_owned())),
        })
    }
}

impl sqlx::Type<Any> for JobStatus {
    fn type_info() -> AnyTypeInfo {
        <String as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as sqlx::Type<Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Any> for JobStatus {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<'r, Any>>::decode(value)?;
        Ok(text.parse()?)
    }
}

/// Where a running attempt stands, as its heartbeat reads it from the job's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// RUNNING under this attempt's lease.
    Held,
    /// The owner cancelled it: stop, record nothing, delete the message.
    Cancelled,
    /// Another attempt took it over, or it finished meanwhile: stop, leave the message alone.
    Lost,
}

/// What [`JobRow::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// `QUEUED|RUNNING → CANCELLED`.
    Now,
    /// It had finished already, with this status: nothing changed.
    Finished(JobStatus),
    /// No such job for this user (also another user's).
    Missing,
}

/// One job's row: its table, id and owner. Every statement of the life cycle is a method.
#[derive(Debug, Clone)]
pub struct JobRow {
    table: JobTable,
    id: String,
    user: OrgId,
}

impl JobRow {
    /// A prediction's row.
    pub fn prediction(id: PredictionId, user: &OrgId) -> Self {
        Self::new(JobTable::Predictions, id.to_string(), user)
    }

    /// A training's row.
    pub fn training(id: TrainingId, user: &OrgId) -> Self {
        Self::new(JobTable::Trainings, id.to_string(), user)
    }

    /// A row of `table`, which must have the lifecycle columns listed in the module's doc.
    pub fn new(table: JobTable, id: String, user: &OrgId) -> Self {
        Self {
            table,
            id,
            user: user.clone(),
        }
    }

    /// The job's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its owner.
    pub fn user(&self) -> &OrgId {
        &self.user
    }

    /// Records which queue message carries the job (in the transaction that sends it).
    pub async fn set_message_id<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        message_id: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&format!(
            "UPDATE {} SET queue_message_id = $1 WHERE id = $2 AND user_id = $3",
            self.table.name()
        ))
        .bind(message_id)
        .bind(&self.id)
        .bind(self.user.as_str())
        .execute(db)
        .await?;
        Ok(())
    }

    /// Takes the job for the worker holding `lease`: `QUEUED|RUNNING → RUNNING`, attempt + 1. A
    /// RUNNING row is taken over because the queue re-delivers a message only after its previous
    /// lease expired; a dead-lettered FAILED job is taken too, because its message comes back
    /// only when someone redrives it. Returns the new attempt number, or `None` when the job is
    /// finished, cancelled or absent.
    pub async fn start<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        lease: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        let now = now_ms();
        let row: Option<(i64,)> = sqlx::query_as(&format!(
            "UPDATE {} SET status = 'RUNNING', attempt = attempt + 1, lease_token = $1, \
             started_at = $2, updated_at = $2, error_message = NULL, dead_lettered_at = NULL{} \
             WHERE id = $3 AND user_id = $4 AND (status IN ('QUEUED', 'RUNNING') \
             OR (status = 'FAILED' AND dead_lettered_at IS NOT NULL)) RETURNING attempt",
            self.table.name(),
            self.table.reset_on_start()
        ))
        .bind(lease)
        .bind(now)
        .bind(&self.id)
        .bind(self.user.as_str())
        .fetch_optional(db)
        .await?;
        Ok(row.map(|(attempt,)| attempt))
    }

    /// Live progress (rows so far), for a table that shows it; fenced by `lease`. False when
    /// the attempt no longer holds the job, or the table has no progress column.
    pub async fn progress<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        lease: &str,
        rows: u64,
    ) -> Result<bool, sqlx::Error> {
        let Some(column) = self.table.progress_column() else {
            return Ok(false);
        };
        let done = sqlx::query(&format!(
            "UPDATE {} SET {column} = $1, updated_at = $2 \
             WHERE id = $3 AND lease_token = $4 AND status = 'RUNNING'",
            self.table.name()
        ))
        .bind(rows as i64)
        .bind(now_ms())
        .bind(&self.id)
        .bind(lease)
        .execute(db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The heartbeat's look at the row: publishes `progress` (rows so far) when it is `Some`
    /// and says whether `lease` still holds the job.
    pub async fn beat(
        &self,
        conn: &mut AnyConnection,
        lease: &str,
        progress: Option<u64>,
    ) -> Result<Holding, sqlx::Error> {
        if let Some(rows) = progress {
            if self.progress(&mut *conn, lease, rows).await? {
                return Ok(Holding::Held);
            }
        }
        self.holding(conn, lease).await
    }

    /// The job's status, or `None` when there is no such job for this user.
    pub async fn status<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
    ) -> Result<Option<JobStatus>, sqlx::Error> {
        let row: Option<(JobStatus,)> = sqlx::query_as(&format!(
            "SELECT status FROM {} WHERE id = $1 AND user_id = $2",
            self.table.name()
        ))
        .bind(&self.id)
        .bind(self.user.as_str())
        .fetch_optional(db)
        .await?;
        Ok(row.map(|(status,)| status))
    }

    /// Whether the attempt holding `lease` still holds the job (see [`Holding`]).
    pub async fn holding<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        lease: &str,
    ) -> Result<Holding, sqlx::Error> {
        let row: Option<(JobStatus, Option<String>)> = sqlx::query_as(&format!(
            "SELECT status, lease_token FROM {} WHERE id = $1 AND user_id = $2",
            self.table.name()
        ))
        .bind(&self.id)
        .bind(self.user.as_str())
        .fetch_optional(db)
        .await?;
        Ok(match row {
            Some((JobStatus::Running, Some(token))) if token == lease => Holding::Held,
            Some((JobStatus::Cancelled, _)) => Holding::Cancelled,
            _ => Holding::Lost,
        })
    }

    /// `RUNNING → COMPLETED`, setting `columns` (kind-specific results) too. Fenced by `lease`:
    /// false (and nothing changed) when another attempt holds the job or it was cancelled.
    pub async fn complete<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        lease: &str,
        columns: &[(&str, Value)],
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let mut sets = String::new();
        for (i, (column, _)) in columns.iter().enumerate() {
            sets.push_str(&format!(", {column} = ${}", i + 4));
        }
        let sql = format!(
            "UPDATE {} SET status = 'COMPLETED', completed_at = $1, updated_at = $1, \
             error_message = NULL, lease_token = NULL{sets} \
             WHERE id = $2 AND lease_token = $3 AND status = 'RUNNING'",
            self.table.name()
        );
        let mut query = sqlx::query(&sql).bind(now).bind(&self.id).bind(lease);
        for (_, value) in columns {
            query = match value {
                Value::Int(v) => query.bind(*v),
                Value::Text(v) => query.bind(v.clone()),
                Value::Null => query.bind(None::<String>),
            };
        }
        Ok(query.execute(db).await?.rows_affected() == 1)
    }

    /// `RUNNING → FAILED` with a message a person can act on, and the kind's own `columns`
    /// (counts a failure still knows). Fenced by `lease`.
    pub async fn fail<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        lease: &str,
        message: &str,
        columns: &[(&str, Value)],
    ) -> Result<bool, sqlx::Error> {
        let mut sets = String::new();
        for (i, (column, _)) in columns.iter().enumerate() {
            sets.push_str(&format!(", {column} = ${}", i + 5));
        }
        let sql = format!(
            "UPDATE {} SET status = 'FAILED', completed_at = $1, updated_at = $1, \
             error_message = $2, lease_token = NULL{sets} \
             WHERE id = $3 AND lease_token = $4 AND status = 'RUNNING'",
            self.table.name()
        );
        let mut query = sqlx::query(&sql)
            .bind(now_ms())
            .bind(message)
            .bind(&self.id)
            .bind(lease);
        for (_, value) in columns {
            query = match value {
                Value::Int(v) => query.bind(*v),
                Value::Text(v) => query.bind(v.clone()),
                Value::Null => query.bind(None::<String>),
            };
        }
        Ok(query.execute(db).await?.rows_affected() == 1)
    }

    /// `RUNNING → QUEUED` after a transient error (stored as `retrying after: {shown}`); the
    /// message will be delivered again. Fenced by `lease`.
    pub async fn requeue<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        lease: &str,
        shown: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(&format!(
            "UPDATE {} SET status = 'QUEUED', updated_at = $1, error_message = $2, \
             lease_token = NULL WHERE id = $3 AND lease_token = $4 AND status = 'RUNNING'",
            self.table.name()
        ))
        .bind(now_ms())
        .bind(format!("retrying after: {shown}"))
        .bind(&self.id)
        .bind(lease)
        .execute(db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `QUEUED|RUNNING → FAILED` with `dead_lettered_at` set, for a job whose message was
    /// dead-lettered at `dead_at_ms`, whoever last held it; the owner reads
    /// `dead-lettered: {shown}`. A finished job, or one touched after the message died (it was
    /// redriven and started again), is left alone. True when the row changed.
    pub async fn dead_lettered<'c, E: Executor<'c, Database = Any>>(
        &self,
        db: E,
        shown: &str,
        dead_at_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(&format!(
            "UPDATE {} SET status = 'FAILED', completed_at = $1, updated_at = $1, \
             dead_lettered_at = $1, error_message = $2, lease_token = NULL \
             WHERE id = $3 AND user_id = $4 AND status IN ('QUEUED', 'RUNNING') \
             AND updated_at <= $5",
            self.table.name()
        ))
        .bind(now)
        .bind(format!("dead-lettered: {shown}"))
        .bind(&self.id)
        .bind(self.user.as_str())
        .bind(dead_at_ms)
        .execute(db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `QUEUED|RUNNING → CANCELLED`, asked by the owner. A queued job is then never started
    /// (its message is deleted when a worker receives it); a running attempt learns it at its
    /// next heartbeat, stops at its next batch and records nothing. `completed_at` stays
    /// empty (nothing completed); `updated_at` says when it was cancelled.
    pub async fn cancel(&self, conn: &mut AnyConnection) -> Result<Cancelled, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(&format!(
            "UPDATE {} SET status = 'CANCELLED', updated_at = $1, \
             lease_token = NULL WHERE id = $2 AND user_id = $3 AND status IN ('QUEUED', 'RUNNING')",
            self.table.name()
        ))
        .bind(now)
        .bind(&self.id)
        .bind(self.user.as_str())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            if self.table == JobTable::Predictions {
                // A prediction scored in pieces: every piece stops at its next heartbeat.
                self.stop_pieces(&mut *conn, JobStatus::Cancelled, None)
                    .await?;
            }
            return Ok(Cancelled::Now);
        }
        Ok(match self.status(&mut *conn).await? {
            Some(status) => Cancelled::Finished(status),
            None => Cancelled::Missing,
        })
    }
}

impl JobRow {
    /// A piece of a prediction scored by many workers (`prediction_chunks`).
    pub fn prediction_chunk(id: String, user: &OrgId) -> Self {
        Self::new(JobTable::PredictionChunks, id, user)
    }

    /// `RUNNING → FAILED` for a prediction whose pieces are scored by other jobs and one of
    /// them failed for good: no attempt holds the prediction's lease then, so this is fenced by
    /// `status = 'RUNNING'` alone (a cancelled or finished prediction is left alone). The
    /// other pieces are cancelled with it. True when the row changed.
    pub async fn fail_from_piece(
        &self,
        conn: &mut AnyConnection,
        message: &str,
    ) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let done = sqlx::query(&format!(
            "UPDATE {} SET status = 'FAILED', completed_at = $1, updated_at = $1, \
             error_message = $2, lease_token = NULL \
             WHERE id = $3 AND user_id = $4 AND status = 'RUNNING'",
            self.table.name()
        ))
        .bind(now)
        .bind(message)
        .bind(&self.id)
        .bind(self.user.as_str())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        self.stop_pieces(&mut *conn, JobStatus::Cancelled, Some(message))
            .await?;
        Ok(true)
    }

    /// `QUEUED|RUNNING → CANCELLED` for every piece of this prediction still to finish (a
    /// running one learns it at its next heartbeat and stores nothing), with `why` as their
    /// error text when given.
    async fn stop_pieces(
        &self,
        conn: &mut AnyConnection,
        status: JobStatus,
        why: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE prediction_chunks SET status = $1, updated_at = $2, lease_token = NULL, \
             error_message = COALESCE($3, error_message) \
             WHERE prediction_id = $4 AND user_id = $5 AND status IN ('QUEUED', 'RUNNING')",
        )
        .bind(status.as_str())
        .bind(now_ms())
        .bind(why.map(|w| format!("stopped: another piece of the file failed: {w}")))
        .bind(&self.id)
        .bind(self.user.as_str())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// A value for a kind-specific column set by [`JobRow::complete`].
#[derive(Debug, Clone)]
pub enum Value {
    /// An integer column.
    Int(i64),
    /// A text column (JSON documents are stored as text).
    Text(String),
    /// NULL (a column emptied on completion, such as an erasure's customer id).
    Null,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_and_unknown_text_is_an_error() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<JobStatus>(), Ok(s));
        }
        let err = "PAUSED".parse::<JobStatus>().unwrap_err();
        assert!(err.to_string().contains("\"PAUSED\""), "{err}");
        assert!("queued".parse::<JobStatus>().is_err());
    }
}
