//! The application's database: uploads, predictions, models and trainings, through sqlx's `Any` driver so
//! one set of queries serves SQLite (the embedded default) and Postgres. Migrations live in
//! `crates/retainwise/migrations` and run at start-up; the queue runs its own beside them.
//!
//! Every query a request causes takes the caller's organisation, an [`OrgId`](crate::domain::OrgId)
//! (the scope; the owner columns hold it), and nothing else decides what a caller sees.
//! Worker updates to a running prediction are fenced by its lease token (the queue receipt), so a
//! worker that lost its lease can never complete or fail a job another worker now holds.

mod admission;
mod column_mapping;
mod compat;
mod direct_uploads;
mod explanation;
mod lifecycle;
mod models;
mod orgs;
mod predictions;
pub mod usage;

pub use admission::{admit, JobKind};
pub use column_mapping::set_column_mapping;
pub use compat::{ImportedPrediction, ImportedUpload, UploadListRow};
pub use direct_uploads::{claim_direct_upload, DirectUploadRow, NewDirectUpload};
pub use explanation::set_explanation;
pub use lifecycle::{Cancelled, Holding, JobRow, JobStatus, UnknownStatus, Value};

pub use models::{insert_training, ModelRow, NewTraining, TrainingRow, EVERYONE};
pub use orgs::{MemberRow, MembershipError, OrgRefusal};
pub use predictions::{insert_queued, NewPrediction, PredictionRow};

/// A prediction's status: the one [`JobStatus`] of every job.
pub type PredictionStatus = JobStatus;
pub use retainwise_queue::Dialect;
use sqlx::AnyPool;

/// The tables of jobs that run through the queue (the lifecycle columns of [`JobRow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTable {
    /// `predictions`.
    Predictions,
    /// `model_trainings`.
    Trainings,
    /// `prediction_chunks`: the pieces of a prediction scored by many workers.
    PredictionChunks,
    /// Another kind's own table, with the lifecycle columns.
    Named(&'static str),
}

impl JobTable {
    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Predictions => "predictions",
            Self::Trainings => "model_trainings",
            Self::PredictionChunks => "prediction_chunks",
            Self::Named(name) => name,
        }
    }

    /// The column live progress is written to, for a table that shows it.
    fn progress_column(self) -> Option<&'static str> {
        match self {
            Self::Predictions | Self::PredictionChunks => Some("rows_processed"),
            _ => None,
        }
    }

    /// Columns a new attempt resets besides the lifecycle ones (`, col = value` pairs).
    fn reset_on_start(self) -> &'static str {
        match self {
            // Progress is live per attempt.
            Self::Predictions | Self::PredictionChunks => ", rows_processed = 0",
            _ => "",
        }
    }
}

/// A handle on the application database; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    /// Bounds the audit log's sign-in failure rows per client address (see [`crate::audit`]).
    sign_in_failures: std::sync::Arc<crate::log_safe::KeyedThrottle>,
}

impl Db {
    /// Connects (creating a SQLite file if needed) and runs the application's migrations.
    ///
    /// Errors: the URL is unsupported, the database is unreachable, or a migration fails.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::open(url, true).await
    }

    /// [`Db::connect`]; with `migrate` false it applies nothing and checks instead that every
    /// migration of this build is applied ([`crate::ops::migrations::check`]).
    pub async fn open(url: &str, migrate: bool) -> anyhow::Result<Self> {
        crate::config::ensure_sqlite_parent(url)?;
        let (pool, dialect) = retainwise_queue::connect(url).await?;
        if migrate {
            crate::ops::migrations::app_migrator().run(&pool).await?;
            crate::audit::guard(&pool, dialect).await?;
        } else {
            crate::ops::migrations::check(&pool).await?;
        }
        let window = std::time::Duration::from_secs(60);
        let sign_in_failures = std::sync::Arc::new(crate::log_safe::KeyedThrottle::new(window));
        Ok(Self {
            pool,
            dialect,
            sign_in_failures,
        })
    }

    /// The pool, for the queue and for transactions that span both.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The throttle of the audit log's sign-in failure rows: one per client address a minute.
    pub fn sign_in_failures(&self) -> &crate::log_safe::KeyedThrottle {
        &self.sign_in_failures
    }

    /// Which SQL dialect the database speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Records a model's card (id → card JSON) so predictions can name the model they used.
    pub async fn upsert_model(&self, id: &str, card_json: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO models (id, card, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET card = excluded.card",
        )
        .bind(id)
        .bind(card_json)
        .bind(crate::time::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Readiness probe: one round trip.
    pub async fn check(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
