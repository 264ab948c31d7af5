//! Training: a labelled CSV in, a validated [`Model`] and a [`TrainReport`] out.
//!
//! Shape (as in linfa): [`TrainParams`] (unchecked) → [`TrainParams::check`] →
//! [`CheckedTrainParams::fit`] on a [`TrainingTable`] → a separate fitted [`Model`].
//!
//! Flow: read the whole table (training files are history, not streams) while hashing its
//! bytes → find and parse the label → infer the schema ([`crate::schema::infer`]) → encode →
//! stratified k-fold folds → the built-in search ([`crate::search`]): tree settings and rounds,
//! the logistic regression's penalty, the blend and the calibration chosen on inner folds, the
//! whole procedure scored on each outer fold (nested cross-validation) with the project's own
//! inference, then run on all rows for the final model → model card. Every fit is
//! single-threaded and seeded, and fits run in parallel in a fixed order, so the result is
//! identical for a given seed and input.

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::artifact::{hex, Model, ModelError};
use crate::blend::Predictor;
use crate::card::{
    CardFeature, CvMetrics, FoldCount, FoldGrouping, MetricSummary, ModelCard, SearchRecord,
    Software, TrainSettings, TrainingData,
};
use crate::csv_input::{self, ReadError};
use crate::dates;
use crate::encode::Encoder;
use crate::gbdt::GbdtSettings;
use crate::metrics;
use crate::progress::{ProgressFn, TrainStage};
use crate::schema::{self, DroppedColumn, FeatureSchema};
use crate::search::{self, SearchSpace, Selection};
use crate::values;

/// Fewest data rows [`CheckedTrainParams::fit`] accepts.
pub const MIN_ROWS: usize = 50;
/// Fewest rows of each class [`CheckedTrainParams::fit`] accepts.
pub const MIN_PER_CLASS: usize = 10;

/// The fewest cross-validation folds: the validation is nested (each inner model is fitted on
/// all folds but two), so two folds would leave an inner model nothing to learn from.
pub const MIN_FOLDS: usize = 3;

/// Training parameters as given (unchecked). Build with [`TrainParams::new`] and adjust fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainParams {
    /// Label column (churned = Yes/1/true/churned, else No/0/false/active).
    pub label: String,
    /// Customer id column, left out of the features and copied to scored output. When `None`,
    /// the first text column with nearly all values distinct is taken for it.
    pub id_column: Option<String>,
    /// Model name, the first part of the model id (default `"churn"`).
    pub name: String,
    /// Seed for fold assignment and row/feature sampling (default 42).
    pub seed: u64,
    /// Cross-validation folds, [`MIN_FOLDS`]..=10 (default 5).
    pub folds: usize,
    /// The boosting settings the search does not vary (minimum leaf hessian, L2, subsampling,
    /// bins); its rounds, learning rate and depth are replaced by each candidate's.
    pub gbdt: GbdtSettings,
    /// What the built-in search tries ([`SearchSpace::default`] unless changed).
    pub search: SearchSpace,
    /// Date written on the model card (default: today, UTC, `YYYY-MM-DD`).
    pub trained_at: String,
    /// The date that date columns count days back from. Default (`None`): the training file's
    /// reference date, the latest date in any of its date columns. Recorded on the card.
    #[serde(serialize_with = "serialize_date")]
    pub reference_date: Option<NaiveDate>,
    /// Column whose equal values are one group (a customer of a history file: one row per
    /// customer per observation date): every fold of the cross-validation — outer, inner, the
    /// search, the blend and the calibration choice — keeps a group's rows together
    /// ([`stratified_group_folds`]), so no customer is both learnt from and validated on.
    /// Left out of the features. Default `None`: each row is its own group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_column: Option<String>,
    /// Column holding each row's own reference date (a history's observation date): every
    /// other date column becomes whole days before *that row's* date, not the file's latest
    /// date. The column itself is never a feature (its day count before itself is always 0,
    /// and as a date it would only tell the trees the time order). A blank or unreadable cell
    /// is [`TrainError::BadObservationDate`]. Recorded on the card, so that scoring reads the
    /// same column when the scored file has it. Not together with
    /// [`TrainParams::reference_date`]. Default `None`: one reference date for the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation_date: Option<String>,
    /// An opaque tag of whom the model is trained for, recorded on the card (default `None`,
    /// recorded as absent). It is part of the content the model id hashes, so the same file
    /// trained for two owners gives two ids: neither sees the other's model as its own.
    pub namespace: Option<String>,
}

fn serialize_date<S: serde::Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&dates::iso(*d)),
        None => s.serialize_none(),
    }
}

impl TrainParams {
    /// Default parameters for label column `label`.
    pub fn new(label: impl Into<String>) -> Self {
        TrainParams {
            label: label.into(),
            id_column: None,
            name: "churn".into(),
            seed: 42,
            folds: 5,
            gbdt: GbdtSettings::default(),
            search: SearchSpace::default(),
            trained_at: utc_date(SystemTime::now()),
            reference_date: None,
            group_column: None,
            observation_date: None,
            namespace: None,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`TrainError::InvalidParams`] naming the bad setting.
    pub fn check(&self) -> Result<CheckedTrainParams, TrainError> {
        if self.label.trim().is_empty() {
            return Err(TrainError::InvalidParams(
                "the label column name is empty".into(),
            ));
        }
        // Nested: each outer fold's settings are chosen on the other folds' inner folds, fitted
        // on all folds but two, so two folds would leave nothing to fit.
        if !(MIN_FOLDS..=10).contains(&self.folds) {
            return Err(TrainError::InvalidParams(format!(
                "folds must be {MIN_FOLDS} to 10, got {} (the cross-validation is nested: each \
                 inner model is fitted on all folds but two)",
                self.folds
            )));
        }
        if self.observation_date.is_some() && self.reference_date.is_some() {
            return Err(TrainError::InvalidParams(
                "give either a reference date (one for the whole file) or an observation date column (one per row), not both".into(),
            ));
        }
        self.gbdt.validate().map_err(TrainError::InvalidParams)?;
        self.search
            .validate(&self.gbdt)
            .map_err(TrainError::InvalidParams)?;
        Ok(CheckedTrainParams(self.clone()))
    }
}

/// Parameters that passed [`TrainParams::check`].
#[derive(Clone, Debug)]
pub struct CheckedTrainParams(TrainParams);

/// Why training failed. Every variant but [`TrainError::Io`] and [`TrainError::Learner`] is
/// about the file or the parameters, and says what to change.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The caller's progress callback asked to stop (a time budget, a lost lease).
    #[error("the training was stopped before it finished")]
    Stopped,
    /// A parameter is out of range.
    #[error("invalid training parameters: {0}")]
    InvalidParams(String),
    /// The input has no rows at all.
    #[error("the training file is empty")]
    Empty,
    /// The label column is not in the header.
    #[error("the label column {label:?} is not in the file; the file has: {}", .found.join(", "))]
    LabelMissing {
        /// The label asked for.
        label: String,
        /// The header.
        found: Vec<String>,
    },
    /// The group column asked for is not in the header.
    #[error("the group column {group:?} is not in the file; the file has: {}", .found.join(", "))]
    GroupColumnMissing {
        /// The group column asked for.
        group: String,
        /// The header.
        found: Vec<String>,
    },
    /// The observation date column asked for is not in the header.
    #[error("the observation date column {column:?} is not in the file; the file has: {}", .found.join(", "))]
    ObservationDateMissing {
        /// The column asked for.
        column: String,
        /// The header.
        found: Vec<String>,
    },
    /// A row's observation date is blank or not a date: its date columns cannot be counted
    /// from it, and no other date would be that row's.
    #[error("row {row}{}: the observation date column {column:?} holds {value:?}: {}; every row needs its own observation date (fix or remove the row)", .customer_id.as_ref().map(|c| format!(" (customer {c})")).unwrap_or_default(), dates::EXPECTED)]
    BadObservationDate {
        /// Data record number (1 = first after the header).
        row: u64,
        /// The row's customer id (the id or group column), when there is one.
        customer_id: Option<String>,
        /// The observation date column.
        column: String,
        /// The cell as written.
        value: String,
    },
    /// Fewer groups than folds, or too few groups of one class to put one in every fold.
    #[error("{message}")]
    TooFewGroups {
        /// What is short and what to do.
        message: String,
    },
    /// The id column asked for is not in the header.
    #[error("the id column {id:?} is not in the file; the file has: {}", .found.join(", "))]
    IdColumnMissing {
        /// The id column asked for.
        id: String,
        /// The header.
        found: Vec<String>,
    },
    /// A label cell is not a recognised class.
    #[error(
        "row {row}: label value {value:?} is not one of {}",
        values::LABEL_SPELLINGS
    )]
    BadLabel {
        /// Data record number (1 = first after the header).
        row: u64,
        /// The cell text.
        value: String,
    },
    /// Every row has the same label.
    #[error("every one of the {rows} rows has the label {class:?}: a model needs both churned and active customers")]
    SingleClass {
        /// Rows read.
        rows: u64,
        /// `"churned"` or `"active"`.
        class: &'static str,
    },
    /// Too few rows overall or of one class.
    #[error("too few rows to train: {rows} rows ({positives} churned, {negatives} active); at least {MIN_ROWS} rows and {MIN_PER_CLASS} of each class are needed")]
    TooFewRows {
        /// Rows read.
        rows: u64,
        /// Churned rows.
        positives: u64,
        /// Active rows.
        negatives: u64,
    },
    /// A row's field count differs from the header's.
    #[error("row {row} has {fields} fields but the header has {expected}")]
    RaggedRow {
        /// Data record number.
        row: u64,
        /// Fields in the row.
        fields: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// No column could be used as a feature.
    #[error("no column can be used as a feature: {}", .dropped.iter().map(|d| format!("{} ({})", d.name, d.reason)).collect::<Vec<_>>().join("; "))]
    NoFeatures {
        /// Every column left out, with its reason.
        dropped: Vec<DroppedColumn>,
    },
    /// CSV syntax the reader cannot recover from.
    #[error("the CSV file cannot be read {}: {message}", crate::csv_input::RowPlace(*row))]
    Malformed {
        /// Data record number (0 = the header, named as such).
        row: u64,
        /// The reader's explanation.
        message: String,
    },
    /// The tree learner failed.
    #[error("training failed: {0}")]
    Learner(String),
    /// The fitted model did not validate (a bug, reported rather than hidden).
    #[error("the trained model is inconsistent: {0}")]
    Model(#[from] ModelError),
    /// Reading the input failed.
    #[error("reading the training file failed: {0}")]
    Io(#[from] io::Error),
}

/// A training file in memory: header, cells by column, and the SHA-256 of its bytes.
#[derive(Clone, Debug)]
pub struct TrainingTable {
    header: Vec<String>,
    columns: Vec<Vec<String>>,
    rows: usize,
    sha256: String,
    blank_rows: u64,
}

/// Hashes what passes through it.
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl TrainingTable {
    /// Reads a CSV (header row, then data rows) into memory, hashing its bytes. Rows whose
    /// cells are all blank are skipped.
    ///
    /// # Errors
    /// [`TrainError::Empty`], [`TrainError::RaggedRow`], [`TrainError::Malformed`],
    /// [`TrainError::Io`].
    pub fn read_csv<R: Read>(input: R) -> Result<TrainingTable, TrainError> {
        let mut hasher = Sha256::new();
        let (header, columns, rows, blank_rows) = {
            let mut reader = csv_input::reader(Hashing {
                inner: input,
                hasher: &mut hasher,
            })?;
            let mut record = csv::ByteRecord::new();
            let mut row = 0u64;
            let next = |reader: &mut csv_input::Records<_>, record: &mut csv::ByteRecord, row| {
                let more = csv_input::next_record(reader, record).map_err(|e| match e {
                    ReadError::Io(io) => TrainError::Io(io),
                    ReadError::Malformed(message) => TrainError::Malformed { row, message },
                })?;
                // Training on a file whose quote swallowed or cut rows would learn from rows
                // that are not what the file means: the file must be fixed first.
                if let Some(q) = &reader.last().unclosed_quote {
                    return Err(TrainError::Malformed {
                        row,
                        message: q.describe(),
                    });
                }
                Ok(more)
            };
            if !next(&mut reader, &mut record, 0)? {
                return Err(TrainError::Empty);
            }
            let header = csv_input::header_names(&record);
            reader.set_width(header.len());
            let mut columns: Vec<Vec<String>> = vec![Vec::new(); header.len()];
            let mut blank_rows = 0;
            while next(&mut reader, &mut record, row + 1)? {
                row += 1;
                if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    blank_rows += 1;
                    continue;
                }
                if record.len() != header.len() {
                    return Err(TrainError::RaggedRow {
                        row,
                        fields: record.len(),
                        expected: header.len(),
                    });
                }
                for (col, field) in columns.iter_mut().zip(record.iter()) {
                    col.push(csv_input::decode_field(field).into_owned());
                }
            }
            let rows = columns.first().map_or(0, Vec::len);
            (header, columns, rows, blank_rows)
        };
        Ok(TrainingTable {
            header,
            columns,
            rows,
            sha256: hex(&hasher.finalize()),
            blank_rows,
        })
    }

    /// The header names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Data rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// SHA-256 of the file's bytes, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// What training did and how well the model cross-validated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    /// The new model's id.
    pub model_id: String,
    /// Label column.
    pub label: String,
    /// Customer id column, if any.
    pub id_column: Option<String>,
    /// Data rows used.
    pub rows: u64,
    /// Churned rows.
    pub positives: u64,
    /// Feature columns and their types.
    pub features: Vec<CardFeature>,
    /// Columns not used, with reasons.
    pub dropped_columns: Vec<DroppedColumn>,
    /// Cross-validated metrics (mean, std, per fold).
    pub cross_validation: CvMetrics,
    /// Settings used.
    pub settings: TrainSettings,
    /// Remarks (values read as missing, blank rows skipped).
    pub notes: Vec<String>,
    /// The training file's reference date (`YYYY-MM-DD`) when the model has date columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_date: Option<String>,
    /// Where `reference_date` came from, in words (data row and column, dates passed over);
    /// `None` for a given one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_date_source: Option<String>,
    /// The column whose date is each row's reference date, when trained with one
    /// ([`TrainParams::observation_date`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation_date: Option<String>,
}

impl fmt::Display for TrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = 100.0 * self.positives as f64 / self.rows.max(1) as f64;
        writeln!(f, "model      {}", self.model_id)?;
        writeln!(
            f,
            "data       {} rows, {} churned ({rate:.1}%), label {}{}",
            self.rows,
            self.positives,
            self.label,
            self.id_column
                .as_ref()
                .map(|i| format!(", id {i}"))
                .unwrap_or_default()
        )?;
        let feats: Vec<String> = self
            .features
            .iter()
            .map(|c| format!("{} ({})", c.name, c.describe()))
            .collect();
        writeln!(f, "features   {}: {}", feats.len(), feats.join(", "))?;
        if let Some(d) = &self.reference_date {
            writeln!(f, "reference  {d} (date columns are days before it)")?;
            if let Some(source) = &self.reference_date_source {
                writeln!(f, "           taken from {source}")?;
            }
        }
        if let Some(c) = &self.observation_date {
            writeln!(
                f,
                "reference  each row's {c} (date columns are days before that row's date)"
            )?;
        }
        for d in &self.dropped_columns {
            writeln!(f, "dropped    {}: {}", d.name, d.reason)?;
        }
        let cv = &self.cross_validation;
        writeln!(f, "{}-fold CV   mean     std", cv.folds)?;
        for (name, m) in [
            ("ROC AUC ", &cv.roc_auc),
            ("PR AUC  ", &cv.pr_auc),
            ("log loss", &cv.log_loss),
            ("Brier   ", &cv.brier),
        ] {
            writeln!(f, "  {name}  {:.4}   {:.4}", m.mean, m.std)?;
        }
        if let Some(m) = &cv.top_decile_lift {
            writeln!(f, "  lift@10%  {:.4}   {:.4}", m.mean, m.std)?;
        }
        if let Some(g) = &cv.grouping {
            let folds: Vec<String> = g
                .folds
                .iter()
                .map(|c| {
                    format!(
                        "{} groups/{} rows/{} churned",
                        c.groups, c.rows, c.positives
                    )
                })
                .collect();
            writeln!(
                f,
                "  grouped by {} ({} groups): {}",
                g.column,
                g.groups,
                folds.join("; ")
            )?;
        }
        writeln!(
            f,
            "  calibration error (ECE, 10 bins) {:.4}",
            cv.calibration_error
        )?;
        if !cv.reliability.is_empty() {
            writeln!(f, "reliability  bin          rows  predicted  observed")?;
            for b in cv.reliability.iter().filter(|b| b.rows > 0) {
                writeln!(
                    f,
                    "             {:.1}–{:.1}  {:>6}     {:.3}     {:.3}",
                    b.lower, b.upper, b.rows, b.mean_predicted, b.observed_rate
                )?;
            }
        }
        let g = &self.settings.gbdt;
        writeln!(
            f,
            "trees      {} rounds, learning rate {}, depth {}, min leaf hessian {}, l2 {}, subsample {}, colsample {}, seed {}",
            g.rounds, g.learning_rate, g.max_depth, g.min_leaf_weight, g.l2, g.subsample,
            g.colsample_bytree, self.settings.seed
        )?;
        if let Some(s) = &self.settings.search {
            let cands: Vec<String> = s
                .candidates
                .iter()
                .map(|c| {
                    format!(
                        "depth {} lr {} → {} rounds, {:.4}",
                        c.max_depth, c.learning_rate, c.best_rounds, c.log_loss
                    )
                })
                .collect();
            writeln!(f, "search     trees (inner log loss): {}", cands.join("; "))?;
            if let Some(l2) = s.linear_l2 {
                writeln!(
                    f,
                    "linear     logistic regression, L2 {l2} (tried {})",
                    s.penalties
                        .iter()
                        .map(|p| format!("{} → {:.4}", p.l2, p.log_loss))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
            }
            writeln!(
                f,
                "blend      log-odds = {:.4} + {:.4} × trees + {:.4} × linear",
                s.blend.intercept, s.blend.tree_weight, s.blend.linear_weight
            )?;
            writeln!(
                f,
                "calibrated {} (CV log loss: Platt {:.4}, isotonic {:.4}, difference s.e. {:.4})",
                s.calibration.chosen,
                s.calibration.platt_log_loss,
                s.calibration.isotonic_log_loss,
                s.calibration.difference_se
            )?;
            for (k, o) in s.outer_folds.iter().enumerate() {
                writeln!(f, "fold {}     chose {o}", k + 1)?;
            }
        }
        for n in &self.notes {
            writeln!(f, "note       {n}")?;
        }
        Ok(())
    }
}

/// Trains a churn model on a labelled CSV: `params.check()`, [`TrainingTable::read_csv`], then
/// [`CheckedTrainParams::fit`].
///
/// # Errors
/// [`TrainError`] naming what to fix.
pub fn train_csv<R: Read>(
    input: R,
    params: &TrainParams,
) -> Result<(Model, TrainReport), TrainError> {
    train_csv_with_progress(input, params, &|_| true)
}

/// [`train_csv`], reporting how far it has got to `progress` ([`TrainStage::Reading`], then
/// [`TrainStage::Fitting`] after every fit of the search); `progress` answering `false` stops it.
///
/// # Errors
/// [`TrainError`] naming what to fix; [`TrainError::Stopped`] when `progress` asked to stop.
pub fn train_csv_with_progress<R: Read>(
    input: R,
    params: &TrainParams,
    progress: ProgressFn<'_>,
) -> Result<(Model, TrainReport), TrainError> {
    let checked = params.check()?;
    if !progress(TrainStage::Reading) {
        return Err(TrainError::Stopped);
    }
    let table = TrainingTable::read_csv(input)?;
    checked.fit_with_progress(&table, progress)
}

/// A table ready for the learner.
pub(crate) struct Prepared {
    pub schema: FeatureSchema,
    pub dropped: Vec<DroppedColumn>,
    pub notes: Vec<String>,
    /// Column-major encoded features (`data[j * rows + i]`), NaN = missing.
    pub data: Vec<f64>,
    pub labels: Vec<bool>,
    /// The date the date columns were counted from (`None`: the model has none).
    pub reference_date: Option<NaiveDate>,
    /// Where a found `reference_date` came from, in words (`None` for a given one).
    pub reference_source: Option<String>,
    /// The group column's name and each row's group (`0..groups`), when grouping.
    pub groups: Option<(String, Vec<usize>)>,
    /// The observation date column's name, when each row counts its dates from its own.
    pub observation_date: Option<String>,
}

impl CheckedTrainParams {
    /// The checked parameters.
    pub fn params(&self) -> &TrainParams {
        &self.0
    }

    /// Finds the label, checks the classes, infers the schema and encodes the table.
    pub(crate) fn prepare(&self, table: &TrainingTable) -> Result<Prepared, TrainError> {
        let p = &self.0;
        let header = &table.header;
        let find = |name: &str| {
            header.iter().position(|h| h == name).or_else(|| {
                let key = values::column_key(name);
                header.iter().position(|h| values::column_key(h) == key)
            })
        };
        let label_at = find(&p.label).ok_or_else(|| TrainError::LabelMissing {
            label: p.label.clone(),
            found: header.clone(),
        })?;
        let id_at = match &p.id_column {
            Some(id) => Some(find(id).ok_or_else(|| TrainError::IdColumnMissing {
                id: id.clone(),
                found: header.clone(),
            })?),
            None => None,
        };
        let group_at = match &p.group_column {
            Some(g) => Some(find(g).ok_or_else(|| TrainError::GroupColumnMissing {
                group: g.clone(),
                found: header.clone(),
            })?),
            None => None,
        };
        let observed_at = match &p.observation_date {
            Some(c) => Some(find(c).ok_or_else(|| TrainError::ObservationDateMissing {
                column: c.clone(),
                found: header.clone(),
            })?),
            None => None,
        };
        let rows = table.rows;
        let labels: Vec<bool> = table.columns[label_at]
            .iter()
            .enumerate()
            .map(|(i, v)| {
                values::parse_label(v).ok_or_else(|| TrainError::BadLabel {
                    row: i as u64 + 1,
                    value: v.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        let positives = labels.iter().filter(|l| **l).count();
        let negatives = rows - positives;
        if rows > 0 && (positives == 0 || negatives == 0) {
            return Err(TrainError::SingleClass {
                rows: rows as u64,
                class: if positives == 0 { "active" } else { "churned" },
            });
        }
        if rows < MIN_ROWS || positives < MIN_PER_CLASS || negatives < MIN_PER_CLASS {
            return Err(TrainError::TooFewRows {
                rows: rows as u64,
                positives: positives as u64,
                negatives: negatives as u64,
            });
        }

        let mut inferred = schema::infer(header, &table.columns, label_at, id_at);
        if let Some(g) = group_at.filter(|g| Some(*g) != id_at) {
            let name = &header[g];
            inferred.schema.columns.retain(|c| c.name != *name);
            inferred.dropped.retain(|d| d.name != *name);
            inferred.dropped.push(DroppedColumn {
                name: name.clone(),
                reason: "the group column (keeps each group's rows in one fold)".into(),
            });
        }
        if let Some(o) = observed_at {
            let name = &header[o];
            inferred.schema.columns.retain(|c| c.name != *name);
            inferred.dropped.retain(|d| d.name != *name);
            inferred.dropped.push(DroppedColumn {
                name: name.clone(),
                reason: "the observation date (each row's other dates are counted back from it)"
                    .into(),
            });
        }
        if inferred.schema.columns.is_empty() {
            return Err(TrainError::NoFeatures {
                dropped: inferred.dropped,
            });
        }
        let mut notes = inferred.notes;
        if table.blank_rows > 0 {
            notes.push(format!("{} blank row(s) skipped", table.blank_rows));
        }
        let groups = match group_at {
            Some(g) => Some((
                header[g].clone(),
                group_index(&header[g], &table.columns[g])?,
            )),
            None => None,
        };
        if groups.is_none() {
            // The id given, else the one detected (nearly all distinct), else a column named
            // like a customer id whose many values repeat: a history's id is far from
            // distinct, so inference takes it for a text column of too many categories (or,
            // numeric, for a feature) and would otherwise say nothing.
            let id_at = id_at
                .or_else(|| {
                    let id = inferred.schema.id_column.as_ref()?;
                    header.iter().position(|h| h == id)
                })
                .or_else(|| {
                    (0..header.len()).find(|&at| {
                        at != label_at
                            && Some(at) != observed_at
                            && looks_like_repeated_id(&header[at], &table.columns[at])
                    })
                });
            if let Some(note) = id_at.and_then(|at| repeated_ids(&header[at], &table.columns[at])) {
                notes.push(note);
            }
        }
        let schema = inferred.schema;
        let source_at: Vec<usize> = schema
            .columns
            .iter()
            .map(|c| {
                header
                    .iter()
                    .position(|h| *h == c.name)
                    .expect("schema names come from the header")
            })
            .collect();
        // Each row's own reference date, when the file has one per row.
        let observed: Option<Vec<NaiveDate>> = match observed_at {
            Some(o) => {
                let who = id_at.or(group_at).or_else(|| {
                    let id = schema.id_column.as_ref()?;
                    header.iter().position(|h| h == id)
                });
                Some(observation_dates(
                    &header[o],
                    &table.columns[o],
                    who.map(|w| table.columns[w].as_slice()),
                )?)
            }
            None => None,
        };
        // The file's reference date: given, else by scoring's rule
        // (`dates::reference_with_source`: the latest date not after today that does not
        // stand apart from the rest, so one mistyped date does not shift every row), with
        // where it came from. None with per-row dates.
        let mut reference_source = None;
        let reference_date = if schema.has_dates() && observed.is_none() {
            p.reference_date.or_else(|| {
                let today = dates::today();
                let mut seen = std::collections::BTreeMap::new();
                let mut first = std::collections::BTreeMap::new();
                for (_, &at) in schema
                    .columns
                    .iter()
                    .zip(&source_at)
                    .filter(|(c, _)| c.kind == schema::ColumnKind::Date)
                {
                    for (i, v) in table.columns[at].iter().enumerate() {
                        if let Ok(Some(d)) = dates::parse_date(v) {
                            if d <= today {
                                *seen.entry(d).or_insert(0u64) += 1;
                                first.entry(d).or_insert((i as u64 + 1, header[at].clone()));
                            }
                        }
                    }
                }
                let (date, source) = dates::reference_with_source(&seen, &first, today);
                reference_source = Some(source);
                Some(date)
            })
        } else {
            None
        };

        // Column-major encoded matrix, NaN = missing (the layout the learner wants).
        let mut encoder = Encoder::new(&schema).with_reference_date(reference_date);
        let n_features = encoder.n_features();
        let mut data = vec![0.0; n_features * rows];
        let mut row_buf = vec![0.0; n_features];
        for i in 0..rows {
            if let Some(observed) = &observed {
                encoder.set_reference_date(Some(observed[i]));
            }
            for (c, &at) in source_at.iter().enumerate() {
                // Cells the schema tolerates but cannot read (a stray typo in a numeric column)
                // stay missing, as reported in the notes.
                let _ = encoder.encode_cell(c, &table.columns[at][i], &mut row_buf);
            }
            for (j, v) in row_buf.iter().enumerate() {
                data[j * rows + i] = *v;
            }
        }
        Ok(Prepared {
            schema,
            dropped: inferred.dropped,
            notes,
            data,
            labels,
            reference_date,
            reference_source,
            groups,
            observation_date: observed_at.map(|o| header[o].clone()),
        })
    }

    /// Fits a model on `table`: cross-validates, then fits on all rows.
    ///
    /// # Errors
    /// [`TrainError`] naming what to fix in the table (label, classes, row counts, features).
    pub fn fit(&self, table: &TrainingTable) -> Result<(Model, TrainReport), TrainError> {
        self.fit_with_progress(table, &|_| true)
    }

    /// [`Self::fit`], reporting [`TrainStage::Fitting`] to `progress` after every fit; the
    /// training stops at the next fit when `progress` answers `false`.
    ///
    /// # Errors
    /// As [`Self::fit`]; [`TrainError::Stopped`] when `progress` asked to stop.
    pub fn fit_with_progress(
        &self,
        table: &TrainingTable,
        progress: ProgressFn<'_>,
    ) -> Result<(Model, TrainReport), TrainError> {
        let p = &self.0;
        let Prepared {
            schema,
            dropped,
            notes,
            data,
            labels,
            reference_date,
            reference_source,
            groups,
            observation_date,
        } = self.prepare(table)?;
        let rows = labels.len();
        let positives = labels.iter().filter(|l| **l).count();

        let (fold_of, grouping) = match &groups {
            None => (stratified_folds(&labels, p.folds, p.seed), None),
            Some((column, group_of)) => {
                let fold_of = stratified_group_folds(&labels, group_of, p.folds, p.seed)?;
                let record = fold_grouping(column, &labels, group_of, &fold_of, p.folds);
                (fold_of, Some(record))
            }
        };
        let encoded = search::Data {
            data: &data,
            rows,
            labels: &labels,
            fold_of: &fold_of,
            folds: p.folds,
        };
        let outcome =
            search::run(&encoded, &p.gbdt, &p.search, p.seed, progress).map_err(|e| match e {
                crate::progress::SearchError::Stopped => TrainError::Stopped,
                crate::progress::SearchError::Learner(message) => TrainError::Learner(message),
            })?;

        let mut per_fold: [Vec<f64>; 5] = Default::default();
        let mut oof = vec![0.0; rows];
        for (_, held, probs) in &outcome.outer {
            let fy: Vec<bool> = held.iter().map(|&i| labels[i]).collect();
            per_fold[0].push(metrics::roc_auc(&fy, probs).unwrap_or(f64::NAN));
            per_fold[1].push(metrics::average_precision(&fy, probs).unwrap_or(f64::NAN));
            per_fold[2].push(metrics::log_loss(&fy, probs));
            per_fold[3].push(metrics::brier(&fy, probs));
            per_fold[4].push(metrics::top_decile_lift(&fy, probs).unwrap_or(f64::NAN));
            for (&i, &q) in held.iter().zip(probs) {
                oof[i] = q;
            }
        }
        let cv = CvMetrics {
            folds: p.folds,
            roc_auc: MetricSummary::from_folds(&per_fold[0]),
            pr_auc: MetricSummary::from_folds(&per_fold[1]),
            log_loss: MetricSummary::from_folds(&per_fold[2]),
            brier: MetricSummary::from_folds(&per_fold[3]),
            calibration_error: crate::card::round6(metrics::expected_calibration_error(
                &labels, &oof, 10,
            )),
            reliability: metrics::reliability_table(&labels, &oof, 10),
            top_decile_lift: Some(MetricSummary::from_folds(&per_fold[4])),
            grouping,
        };
        let final_parts = outcome.final_parts;
        let chosen = &final_parts.selection;
        let settings = TrainSettings {
            gbdt: chosen.gbdt.clone(),
            search: Some(SearchRecord {
                space: p.search.clone(),
                candidates: chosen.candidates.clone(),
                penalties: chosen.penalties.clone(),
                linear_l2: chosen.linear_l2,
                blend: chosen.blend.clone(),
                calibration: chosen.calibration.clone(),
                outer_folds: outcome.outer_selections.iter().map(describe).collect(),
            }),
            folds: p.folds,
            seed: p.seed,
        };
        let card = ModelCard {
            name: p.name.clone(),
            label: schema.label.clone(),
            id_column: schema.id_column.clone(),
            features: {
                let mut features = CardFeature::with_ranges(&schema, &data, rows);
                // With per-row dates, a date feature counts from each row's own date, and the
                // card says so rather than naming one reference date.
                if let Some(column) = &observation_date {
                    for f in features.iter_mut().filter(|f| f.meaning.is_some()) {
                        f.meaning = Some(format!(
                            "days before the row's own observation date ({column})"
                        ));
                    }
                }
                features
            },
            dropped_columns: dropped.clone(),
            training_data: TrainingData {
                sha256: table.sha256.clone(),
                rows: rows as u64,
                positives: positives as u64,
            },
            cross_validation: cv.clone(),
            settings: settings.clone(),
            trained_at: p.trained_at.clone(),
            software: Software {
                retainwise_model: env!("CARGO_PKG_VERSION").to_string(),
                trainer: "forust-ml 0.8 (trees), own logistic regression (Newton/IRLS)".to_string(),
            },
            notes: notes.clone(),
            reference_date: reference_date.map(dates::iso),
            reference_date_source: reference_source.clone(),
            observation_date: observation_date.clone(),
            namespace: p.namespace.clone(),
            score_profile: Some(crate::drift::ScoreProfile::of_out_of_fold(&oof)),
        };
        let predictor = Predictor {
            forest: final_parts.forest,
            linear: final_parts.linear,
            blend: final_parts.blend,
            calibration: final_parts.calibration,
        };
        let model = Model::from_parts(&p.name, schema, predictor, card)?;
        let report = TrainReport {
            model_id: model.id().to_string(),
            label: model.schema().label.clone(),
            id_column: model.id_column().map(str::to_string),
            rows: rows as u64,
            positives: positives as u64,
            features: model.card().features.clone(),
            dropped_columns: dropped,
            cross_validation: cv,
            settings,
            notes,
            reference_date: reference_date.map(dates::iso),
            reference_date_source: reference_source,
            observation_date,
        };
        Ok((model, report))
    }
}

/// One line for what the search chose: `depth 3, lr 0.05, 212 rounds, L2 10, platt`.
fn describe(s: &Selection) -> String {
    let linear = s.linear_l2.map(|l| format!(", L2 {l}")).unwrap_or_default();
    format!(
        "depth {}, lr {}, {} rounds{linear}, {}",
        s.gbdt.max_depth, s.gbdt.learning_rate, s.gbdt.rounds, s.calibration.chosen
    )
}

/// SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators"):
/// a tiny, fully specified generator, so fold assignment never changes with a dependency.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for any n here).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
}

/// Assigns each row to one of `k` folds so that each fold holds about the same number of rows
/// of each class (stratified k-fold, Kohavi 1995, "A study of cross-validation and bootstrap for
/// accuracy estimation and model selection", IJCAI). Deterministic for `seed`.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut fold = vec![0; labels.len()];
    let mut next_fold = 0;
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        // Fisher–Yates shuffle.
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.below(i + 1));
        }
        for &i in &idx {
            fold[i] = next_fold;
            next_fold = (next_fold + 1) % k;
        }
    }
    fold
}

/// Assigns each group of rows (`group_of[i]`, `0..groups`) to one of `k` folds, all its rows
/// together, so that the folds hold about the same number of churned rows and of rows
/// (stratified group k-fold, the idea of scikit-learn's `StratifiedGroupKFold`). Greedy: the
/// groups in a seeded random order, then those with more churned rows first (larger first
/// among equals); a group with churned rows goes to the fold with the fewest churned rows so
/// far, one without to the fold with the fewest rows (ties: the other count, then the lower
/// fold). Deterministic for `seed`.
///
/// # Errors
/// [`TrainError::TooFewGroups`] when there are fewer groups than folds, or fewer groups with a
/// churned row (or with an active row) than folds: some fold would have no churner to score.
pub fn stratified_group_folds(
    labels: &[bool],
    group_of: &[usize],
    k: usize,
    seed: u64,
) -> Result<Vec<usize>, TrainError> {
    let groups = group_of.iter().max().map_or(0, |g| g + 1);
    let mut size = vec![(0usize, 0usize); groups]; // (churned rows, rows)
    for (&g, &l) in group_of.iter().zip(labels) {
        size[g].0 += usize::from(l);
        size[g].1 += 1;
    }
    let with_churn = size.iter().filter(|s| s.0 > 0).count();
    let with_active = size.iter().filter(|s| s.0 < s.1).count();
    if groups < k || with_churn < k || with_active < k {
        // The most folds this file can fill; below MIN_FOLDS it cannot be cross-validated.
        let most = groups.min(with_churn).min(with_active);
        let what = if most >= MIN_FOLDS {
            format!("train with --folds {most} or fewer")
        } else {
            format!("at least {MIN_FOLDS} groups of each class are needed to cross-validate")
        };
        return Err(TrainError::TooFewGroups {
            message: format!(
                "{groups} groups ({with_churn} with a churned row, {with_active} with an active row) cannot fill {k} folds with both classes: {what}, or give a finer group column"
            ),
        });
    }
    let mut rng = SplitMix64(seed);
    let mut order: Vec<usize> = (0..groups).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    // Stable: the shuffled order breaks ties.
    order.sort_by(|&a, &b| size[b].0.cmp(&size[a].0).then(size[b].1.cmp(&size[a].1)));
    let mut fold_size = vec![(0usize, 0usize); k];
    let mut fold_of_group = vec![0; groups];
    for g in order {
        let f = (0..k)
            .min_by_key(|&f| {
                let (churned, rows) = fold_size[f];
                if size[g].0 > 0 {
                    (churned, rows, f)
                } else {
                    (rows, churned, f)
                }
            })
            .expect("k >= 2");
        fold_of_group[g] = f;
        fold_size[f].0 += size[g].0;
        fold_size[f].1 += size[g].1;
    }
    Ok(group_of.iter().map(|&g| fold_of_group[g]).collect())
}

/// Each row's group: equal cells (trimmed) are one group.
///
/// # Errors
/// [`TrainError::InvalidParams`] when a cell is blank or a missing-value marker: such a row
/// belongs to no known customer, and putting it in a group of its own would let it sit in
/// another fold than its customer's other rows (an optimistic estimate, in silence).
fn group_index(column: &str, cells: &[String]) -> Result<Vec<usize>, TrainError> {
    let blank: Vec<usize> = cells
        .iter()
        .enumerate()
        .filter(|(_, c)| values::is_missing(c))
        .map(|(i, _)| i + 1)
        .collect();
    if let Some(first) = blank.first() {
        return Err(TrainError::InvalidParams(format!(
            "the group column {column:?} is blank on {} row(s) (the first is data row {first}): every row needs its group, or the folds cannot keep a customer's rows together; fill them in, or drop those rows",
            blank.len()
        )));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    Ok(cells
        .iter()
        .map(|c| {
            let next = index.len();
            *index.entry(c.trim()).or_insert(next)
        })
        .collect())
}

/// Each row's observation date, read from column `column`'s `cells`.
///
/// # Errors
/// [`TrainError::BadObservationDate`] for the first row whose cell is blank or not a date,
/// naming its customer from `ids` when given.
fn observation_dates(
    column: &str,
    cells: &[String],
    ids: Option<&[String]>,
) -> Result<Vec<NaiveDate>, TrainError> {
    cells
        .iter()
        .enumerate()
        .map(|(i, raw)| match dates::parse_date(raw) {
            Ok(Some(d)) => Ok(d),
            _ => Err(TrainError::BadObservationDate {
                row: i as u64 + 1,
                customer_id: ids
                    .map(|ids| ids[i].trim().to_owned())
                    .filter(|c| !c.is_empty()),
                column: column.to_owned(),
                value: raw.clone(),
            }),
        })
        .collect()
}

/// What grouped folds held, for the card.
fn fold_grouping(
    column: &str,
    labels: &[bool],
    group_of: &[usize],
    fold_of: &[usize],
    k: usize,
) -> FoldGrouping {
    let groups = group_of.iter().max().map_or(0, |g| g + 1);
    let mut folds = vec![
        FoldCount {
            groups: 0,
            rows: 0,
            positives: 0,
        };
        k
    ];
    let mut seen = vec![false; groups];
    for ((&g, &f), &l) in group_of.iter().zip(fold_of).zip(labels) {
        folds[f].rows += 1;
        folds[f].positives += u64::from(l);
        if !std::mem::replace(&mut seen[g], true) {
            folds[f].groups += 1;
        }
    }
    FoldGrouping {
        column: column.to_owned(),
        groups: groups as u64,
        folds,
    }
}

/// A loud note when the id column repeats (one row per customer per date, a history) and no
/// group column was given: folds then split a customer's rows, and the cross-validated figures
/// are optimistic.
fn repeated_ids(name: &str, cells: &[String]) -> Option<String> {
    let mut rows_of: HashMap<&str, usize> = HashMap::new();
    for c in cells {
        let key = c.trim();
        if !values::is_missing(key) {
            *rows_of.entry(key).or_default() += 1;
        }
    }
    let repeated = rows_of.values().filter(|n| **n > 1).count();
    if repeated == 0 {
        return None;
    }
    let rows: usize = rows_of.values().filter(|n| **n > 1).sum();
    Some(format!(
        "WARNING: the id column {name} repeats: {repeated} ids have more than one row ({rows} rows). The folds split rows, not customers, so one customer's rows are both learnt from and validated on and the cross-validated figures above are optimistic. If the file holds several rows per customer, train with --id {name} --group {name}"
    ))
}

/// Last words that name a customer's key column (`customer_id`, `AccountID`, `user`).
const ID_WORDS: [&str; 9] = [
    "id",
    "uuid",
    "guid",
    "key",
    "customer",
    "account",
    "user",
    "client",
    "subscriber",
];

/// True for a column whose name ends in a word of [`ID_WORDS`] (words split at punctuation,
/// spaces and a lower-to-upper case change, so `amount_paid` and `user_count` do not) and
/// whose values are many (more than [`schema::MAX_LEVELS`] distinct) with some repeated: the
/// id of a history, one row per customer per date.
fn looks_like_repeated_id(name: &str, cells: &[String]) -> bool {
    let mut last = String::new();
    let mut prev_lower = false;
    for c in name.trim().chars() {
        if !c.is_alphanumeric() {
            if !last.is_empty() {
                last.clear();
                last.push(' ');
            }
            prev_lower = false;
            continue;
        }
        if (c.is_uppercase() && prev_lower) || last == " " {
            last.clear();
        }
        prev_lower = c.is_lowercase();
        last.extend(c.to_lowercase());
    }
    if !ID_WORDS.contains(&last.as_str()) {
        return false;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for c in cells {
        let c = c.trim();
        if !values::is_missing(c) {
            *seen.entry(c).or_default() += 1;
        }
    }
    seen.len() > schema::MAX_LEVELS && seen.values().any(|n| *n > 1)
}

/// `YYYY-MM-DD` (UTC) of `t`, by the days-to-civil algorithm of Hinnant,
/// "chrono-Compatible Low-Level Date Algorithms".
pub fn utc_date(t: SystemTime) -> String {
    let days = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(utc_date(UNIX_EPOCH), "1970-01-01");
        assert_eq!(
            utc_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29"
        );
        assert_eq!(
            utc_date(UNIX_EPOCH + Duration::from_secs(1_767_225_599)),
            "2025-12-31"
        );
    }

    #[test]
    fn folds_are_stratified_and_seeded() {
        let labels: Vec<bool> = (0..103).map(|i| i % 4 == 0).collect();
        let f = stratified_folds(&labels, 5, 1);
        assert_eq!(f, stratified_folds(&labels, 5, 1));
        assert_ne!(f, stratified_folds(&labels, 5, 2));
        for k in 0..5 {
            let pos = (0..103).filter(|&i| f[i] == k && labels[i]).count();
            let all = (0..103).filter(|&i| f[i] == k).count();
            assert!((5..=6).contains(&pos), "fold {k}: {pos} positives");
            assert!((20..=21).contains(&all), "fold {k}: {all} rows");
        }
    }

    #[test]
    fn history_ids_are_told_by_their_last_word_and_repeats() {
        let repeated: Vec<String> = (0..60)
            .flat_map(|i| [format!("C{i}"), format!("C{i}")])
            .collect();
        let distinct: Vec<String> = (0..120).map(|i| format!("C{i}")).collect();
        for name in [
            "customer_id",
            "customerID",
            "AccountId",
            "user",
            "Client Key",
            "id",
        ] {
            assert!(looks_like_repeated_id(name, &repeated), "{name}");
            assert!(
                !looks_like_repeated_id(name, &distinct),
                "{name}: no repeat"
            );
        }
        for name in ["amount_paid", "user_count", "valid", "customer_segment"] {
            assert!(!looks_like_repeated_id(name, &repeated), "{name}");
        }
        let few: Vec<String> = (0..120).map(|i| format!("C{}", i % 10)).collect();
        assert!(
            !looks_like_repeated_id("customer_id", &few),
            "a few levels: a category"
        );
    }

    #[test]
    fn grouped_folds_name_the_most_folds_the_file_allows() {
        // Three groups with a churned row and three without: 3 folds, never 4 or 5.
        let labels = [true, false, true, false, true, false];
        let groups = [0, 3, 1, 4, 2, 5];
        let err = stratified_group_folds(&labels, &groups, 5, 1).unwrap_err();
        assert!(err.to_string().contains("--folds 3 or fewer"), "{err}");
        assert!(stratified_group_folds(&labels, &groups, 3, 1).is_ok());
        // Two churned groups cannot fill the fewest folds: no advice to use fewer.
        let err = stratified_group_folds(&labels, &[0, 2, 0, 3, 1, 4], 3, 1).unwrap_err();
        assert!(err.to_string().contains("at least 3 groups"), "{err}");
    }

    #[test]
    fn params_are_checked() {
        let mut p = TrainParams::new("Churn");
        assert!(p.check().is_ok());
        p.folds = 1;
        assert!(matches!(p.check(), Err(TrainError::InvalidParams(_))));
    }
}

#[cfg(test)]
mod telco_tests {
    use super::*;
    use std::path::PathBuf;

    /// The Telco file: `$RETAINWISE_TELCO_CSV`, else `../shared/data/…` beside the workspace.
    fn telco_path() -> Option<PathBuf> {
        let p = std::env::var_os("RETAINWISE_TELCO_CSV")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/data/telco-customer-churn.csv")
            });
        p.exists().then_some(p)
    }

    #[test]
    fn own_inference_equals_forust_predict_on_telco() {
        let Some(path) = telco_path() else {
            eprintln!("SKIPPED: Telco data not found (set RETAINWISE_TELCO_CSV)");
            return;
        };
        let table = TrainingTable::read_csv(std::fs::File::open(path).unwrap()).unwrap();
        let mut p = TrainParams::new("Churn");
        p.id_column = Some("customerID".into());
        let prep = p.check().unwrap().prepare(&table).unwrap();
        let rows = prep.labels.len();
        let n = prep.schema.n_features();
        let y: Vec<f64> = prep.labels.iter().map(|&l| l as u8 as f64).collect();
        let booster = crate::gbdt::fit_booster(&p.gbdt, p.seed, &prep.data, rows, &y).unwrap();
        let forest = crate::gbdt::convert(&booster, n).unwrap();
        let theirs = booster.predict(&forust_ml::Matrix::new(&prep.data, rows, n), false);
        let mut row = vec![0.0; n];
        let mut worst: f64 = 0.0;
        for (i, t) in theirs.iter().enumerate() {
            for (j, r) in row.iter_mut().enumerate() {
                *r = prep.data[j * rows + i];
            }
            worst = worst.max((forest.log_odds(&row) - t).abs());
        }
        assert!(worst <= 1e-9, "largest log-odds difference {worst}");
        // The 11 blank TotalCharges rows were encoded as missing, not dropped.
        let total_at = prep.schema.n_features() - 1;
        let missing = (0..rows)
            .filter(|&i| prep.data[total_at * rows + i].is_nan())
            .count();
        assert_eq!(missing, 11);
    }
}
