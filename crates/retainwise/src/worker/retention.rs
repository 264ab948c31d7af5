//! The `retention` kind: one organisation's daily run of retention ([`crate::retention`]), a row
//! of `retention_runs` queued by [`crate::retention::schedule`] from the worker's periodic loop.
//! It removes what is due at the run's `as_of` time and records, with COMPLETED, how many
//! uploads and results it removed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::info;

use super::kind::{Checks, Events, Job, JobContext, LogId};
use super::JobError;
use crate::db::{JobRow, JobTable, Value as Column};
use crate::domain::OrgId;
use crate::retention::{self, SweepError, Swept};

/// The table of runs.
const TABLE: JobTable = JobTable::Named("retention_runs");

/// The message of a run: which row, and its organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionMessage {
    /// The run's id (a UUID).
    pub run_id: String,
    /// The organisation.
    pub user_id: String,
}

impl RetentionMessage {
    fn owner(&self) -> Option<(String, OrgId)> {
        let id: uuid::Uuid = self.run_id.parse().ok()?;
        Some((id.to_string(), self.user_id.parse().ok()?))
    }
}

/// One organisation's retention run, validated.
pub struct RetentionRun {
    id: String,
    org: OrgId,
}

impl From<SweepError> for JobError {
    fn from(e: SweepError) -> Self {
        match e {
            SweepError::Storage(e) => JobError::Storage(e),
            SweepError::Database(e) => JobError::Database(e),
        }
    }
}

impl Job for RetentionRun {
    const KIND: &'static str = "retention";
    const LOG_ID: LogId = LogId::Job;
    const EVENTS: Events = Events {
        started: "retention_started",
        failed: "retention_failed",
        status_updated: None,
    };
    type Payload = RetentionMessage;
    type Output = Swept;

    fn validate(payload: RetentionMessage, _checks: &Checks<'_>) -> Result<Self, String> {
        let (id, org) = payload.owner().ok_or_else(|| {
            format!(
                "retention message names run {:?} of organisation {:?}: expected a UUID and a \
                 valid organisation id",
                payload.run_id, payload.user_id
            )
        })?;
        Ok(Self { id, org })
    }

    fn record_named(payload: &RetentionMessage) -> Option<JobRow> {
        let (id, org) = payload.owner()?;
        Some(JobRow::new(TABLE, id, &org))
    }

    fn record(&self) -> JobRow {
        JobRow::new(TABLE, self.id.clone(), &self.org)
    }

    async fn run(&self, ctx: &JobContext) -> Result<Swept, JobError> {
        let app = &ctx.app;
        let (as_of,): (i64,) =
            sqlx::query_as("SELECT as_of FROM retention_runs WHERE id = $1 AND user_id = $2")
                .bind(&self.id)
                .bind(self.org.as_str())
                .fetch_optional(app.db.pool())
                .await?
                .ok_or(JobError::Stopped)?;
        let (days, _) = retention::of(app.db.pool(), &self.org, app.config.retention).await?;
        Ok(retention::sweep(app, &self.org, as_of, days).await?)
    }

    fn completed_columns(&self, swept: &Swept) -> Vec<(&'static str, Column)> {
        vec![
            ("uploads_removed", Column::Int(swept.uploads as i64)),
            ("results_removed", Column::Int(swept.results as i64)),
        ]
    }

    fn log_completed(&self, swept: &Swept, took: Duration) {
        info!(job_id = %self.id, kind = Self::KIND, org = self.org.as_str(), uploads_removed = swept.uploads, results_removed = swept.results, duration_ms = took.as_millis() as u64, "retention_done");
    }
}
