//! Churn model: CSV intake, feature schema and encoding, training, metrics, the model artifact,
//! and the streaming batch scorer. Pure computation over `Read`/`Write`: no async, no network,
//! no database.
//!
//! # Flow
//! ```text
//! training CSV ─▶ train::TrainingTable (sha256) ─▶ schema::infer ─▶ encode ─▶ search (nested
//!      CV: gbdt via forust-ml with early stopping, linear logistic regression, blend,
//!      calibration) ─▶ blend::Predictor (own forest format + linear + blend + calibration)
//!      + card::ModelCard ─▶ artifact::Model ─▶ JSON artifact
//! customer CSV ─▶ decode (BOM, UTF-16, windows-1252) ─▶ dialect (, ; tab |, decimal comma)
//!      ─▶ csv_input ─▶ mapping (exact, normalised, aliases, fuzzy) ─▶ intake (limits, row
//!      shape, values) ─▶ encode ─▶ batch (4096 rows, every core: shap::TreeExplainer gives
//!      the trees' log-odds + exact TreeSHAP, explain:: adds the linear terms, blends,
//!      calibrates, picks drivers, summary, recommendation) ─▶ scored CSV
//!      + report::ValidationReport
//! ```
//! [`preview()`] runs the same intake on the first rows without scoring, for a mapping preview.
//!
//! # Invariants
//! - Training and scoring read cells through the same rules ([`values`], [`encode`]), so a value
//!   means the same thing in both.
//! - Scoring never uses the trainer's code: trees are copied into [`forest::Forest`], and the
//!   copy predicts the same log-odds as the trainer, bit for bit (tested).
//! - Explanations are exact: base value + per-column SHAP values (TreeSHAP of the trees, the
//!   linear terms, blended) = the model's log-odds (tested on every Telco row; TreeSHAP also
//!   against forust-ml's own Shapley values).
//! - Cross-validated figures are of the whole training procedure, search included (nested).
//! - A [`Model`] is always valid: schema, trees and feature count agree, and its id is the hash
//!   of what determines its predictions.
//! - Every data row of a scored file is either written (in input order) or counted as rejected
//!   with the reason; only whole-file problems are errors ([`ScoreError`]).
//! - Scoring memory does not grow with the file; results are written raw, and made
//!   spreadsheet-safe ([`safe_csv`]) where a file is written for a person to open.
//! - Training is deterministic for a given input and seed.

pub mod aliases;
pub mod artifact;
pub mod baseline;
pub mod batch;
pub mod blend;
pub mod calibration;
pub mod card;
pub mod chunks;
pub mod csv_input;
pub mod dates;
pub mod decode;
pub mod dialect;
pub mod drift;
pub mod encode;
pub mod explain;
pub mod fixed_sum;
pub mod forest;
pub mod gbdt;
pub mod histories;
pub mod intake;
pub mod linear;
pub mod mapping;
pub mod measured;
pub mod metrics;
pub mod outcomes;
pub mod plan;
pub mod portfolio;
pub mod preview;
pub mod progress;
pub mod quality;
pub mod report;
pub mod row_text;
pub mod safe_csv;
pub mod schema;
pub mod score;
pub mod search;
pub mod shap;
pub mod train;
pub mod values;

pub use artifact::{Model, ModelError, FORMAT_VERSION};
pub use card::ModelCard;
pub use gbdt::GbdtSettings;
pub use intake::InputLimits;
pub use mapping::{map_columns, supported_columns, ColumnMapping, ManualMapping};
pub use preview::{preview, preview_mapped, preview_with, Preview};
pub use progress::TrainStage;
pub use report::ValidationReport;
pub use score::{
    find_reference_date, output_header, score_csv, score_seekable, Explain, FailureReport,
    RiskCounts, RiskLevel, RiskThresholds, RowIssue, ScoreError, ScoreOptions, ScoreReport,
};
pub use train::{
    train_csv, train_csv_with_progress, CheckedTrainParams, TrainError, TrainParams, TrainReport,
    TrainingTable,
};
