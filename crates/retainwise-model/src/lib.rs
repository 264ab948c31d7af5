//! Churn model: CSV intake, feature schema and encoding, training, metrics, the model artifact,
//! and the streaming batch scorer. Pure computation over `Read`/`Write`: no async, no network,
//! no database.
//!
//! # Flow
//! ```text
//! training CSV ─▶ train::TrainingTable (sha256) ─▶ schema::infer ─▶ encode ─▶ gbdt (forust-ml)
//!      ─▶ forest::Forest (own format) + card::ModelCard ─▶ artifact::Model ─▶ JSON artifact
//! customer CSV ─▶ csv_input ─▶ column binding ─▶ encode ─▶ Forest::probability ─▶ scored CSV
//! ```
//!
//! # Invariants
//! - Training and scoring read cells through the same rules ([`values`], [`encode`]), so a value
//!   means the same thing in both.
//! - Scoring never uses the trainer's code: trees are copied into [`forest::Forest`], and the
//!   copy predicts the same log-odds as the trainer, bit for bit (tested).
//! - A [`Model`] is always valid: schema, trees and feature count agree, and its id is the hash
//!   of what determines its predictions.
//! - Every data row of a scored file is either written (in input order) or counted as rejected
//!   with the reason; only whole-file problems are errors ([`ScoreError`]).
//! - Scoring memory does not grow with the file; output cells are spreadsheet-safe.
//! - Training is deterministic for a given input and seed.

pub mod artifact;
pub mod card;
pub mod csv_input;
pub mod encode;
pub mod forest;
pub mod gbdt;
pub mod metrics;
pub mod safe_csv;
pub mod schema;
pub mod score;
pub mod train;
pub mod values;

pub use artifact::{Model, ModelError, FORMAT_VERSION};
pub use card::ModelCard;
pub use gbdt::GbdtSettings;
pub use score::{
    score_csv, RiskCounts, RiskThresholds, RowIssue, ScoreError, ScoreOptions, ScoreReport,
};
pub use train::{
    train_csv, CheckedTrainParams, TrainError, TrainParams, TrainReport, TrainingTable,
};
