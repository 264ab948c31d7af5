//! The batch scorer: a customer CSV in, a scored CSV out, streaming row by row.
//!
//! Memory does not grow with the file: one input record, one feature vector and the capped
//! issue lists are all that is held. Every data record ends in exactly one place: a scored
//! output row (in input order) or a rejection counted in the report (the first
//! [`ScoreOptions::max_issues`] listed with row, customer id, column, value and what was
//! expected). Only problems with the file as a whole (empty, no header, missing feature
//! columns, nothing scorable, unreadable CSV syntax) fail the call.

use chrono::NaiveDate;
use serde::Serialize;
use std::fmt;
use std::io::{Read, Seek, Write};

use crate::artifact::Model;
use crate::batch::{Batch, Pipeline, Scored};
use crate::intake::{InputLimits, Intake};
use crate::mapping::{ColumnMapping, DuplicateMatch, ManualMapping};
use crate::portfolio::{Portfolio, PortfolioAcc};
use crate::report::ValidationReport;

/// Probability cut-offs for the risk levels: `high` when `p >= high`, `medium` when
/// `p >= medium`, `low` otherwise (applied to the probability as written, 6 decimals).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RiskThresholds {
    /// Lower bound of "high" (default 0.70).
    pub high: f64,
    /// Lower bound of "medium" (default 0.40).
    pub medium: f64,
}

impl Default for RiskThresholds {
    fn default() -> Self {
        RiskThresholds {
            high: 0.70,
            medium: 0.40,
        }
    }
}

impl RiskThresholds {
    /// The risk level of churn probability `p`.
    pub fn level(&self, p: f64) -> RiskLevel {
        if p >= self.high {
            RiskLevel::High
        } else if p >= self.medium {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        }
    }
}

/// A customer's risk level: their churn probability against the [`RiskThresholds`]. Written in
/// the scored output's `risk_level` column and in JSON as `high`, `medium` or `low`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// At or above the high threshold.
    High,
    /// At or above the medium threshold and below high.
    Medium,
    /// Below the medium threshold.
    Low,
}

impl RiskLevel {
    /// Every level, highest first.
    pub const ALL: [RiskLevel; 3] = [RiskLevel::High, RiskLevel::Medium, RiskLevel::Low];

    /// `"high"`, `"medium"` or `"low"`: the text in scored output.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::High => "high",
            RiskLevel::Medium => "medium",
            RiskLevel::Low => "low",
        }
    }
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not a risk level.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a risk level: expected high, medium or low")]
pub struct UnknownRiskLevel(pub String);

impl std::str::FromStr for RiskLevel {
    type Err = UnknownRiskLevel;

    /// `high`, `medium` or `low`, in any case, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RiskLevel::ALL
            .into_iter()
            .find(|l| s.trim().eq_ignore_ascii_case(l.as_str()))
            .ok_or_else(|| UnknownRiskLevel(s.to_owned()))
    }
}

/// Options of [`score_csv`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreOptions {
    /// Risk level cut-offs.
    pub thresholds: RiskThresholds,
    /// At most this many rejected rows, and separately this many warnings, are listed in the
    /// report (all are counted). Default 100. Warnings are built only while the validation
    /// report's list has room ([`InputLimits::max_listed_rejections`], default 1000), so a
    /// value above that lists no more.
    pub max_issues: usize,
    /// Limits on columns, field length and rows, and on the rejected rows listed in
    /// [`ScoreReport::validation`].
    pub limits: InputLimits,
    /// The date the model's date columns count days back from ([`crate::dates`]). `None`
    /// (default): the file's own reference date, the latest date in any of its date columns,
    /// which [`score_seekable`] finds in a first pass. Unused by models without date columns.
    pub reference_date: Option<NaiveDate>,
    /// True when `reference_date` was found in the file ([`crate::plan::plan`]'s first pass),
    /// not given by a person; a given one is refused for a file whose rows carry their own
    /// observation dates ([`ScoreError::ReferenceDateWithObservationDates`]), never ignored.
    pub reference_date_found: bool,
    /// Where a found `reference_date` came from, in words ([`crate::plan::Plan::reference_source`]);
    /// copied to [`ScoreReport::reference_date_source`]. `None` for a given date.
    pub reference_date_source: Option<String>,
    /// A person's column choices, applied before the automatic mapping (default: none).
    pub mapping: ManualMapping,
    /// Which explanation columns each scored row carries (default [`Explain::Top`]).
    pub explain: Explain,
}

/// How much explanation the scored file carries; the columns of each are
/// [`output_header`]'s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Explain {
    /// No explanation: `customer_id`, the two probabilities, `risk_level`, `model_version` and
    /// `data_quality` only. The probability comes from a plain tree walk
    /// ([`crate::blend::Predictor::probability`], the same bits as the explained score), and
    /// the report's [`Portfolio::top_drivers`] stays empty (no drivers are computed).
    None,
    /// Exact TreeSHAP top-3 risk drivers and protective factors, a summary and a
    /// recommendation ([`OUTPUT_HEADER`]).
    #[default]
    Top,
    /// [`Explain::Top`]'s columns, then every model input's SHAP value in log-odds, one column
    /// `shap_<input>` each in schema order, then `shap_base_value` (the same for every row):
    /// per row `shap_base_value + Σ shap_<input>` is the model's log-odds (each value rounded
    /// to 6 decimals, so the sum agrees to within that rounding).
    All,
}

impl Explain {
    /// `none`, `top` or `all`: the spelling of the option in the CLI and the upload form.
    pub fn as_str(self) -> &'static str {
        match self {
            Explain::None => "none",
            Explain::Top => "top",
            Explain::All => "all",
        }
    }
}

impl std::str::FromStr for Explain {
    type Err = String;

    /// `none`, `top` or `all`, in any case, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Explain::None, Explain::Top, Explain::All]
            .into_iter()
            .find(|e| s.trim().eq_ignore_ascii_case(e.as_str()))
            .ok_or_else(|| format!("{s:?} is not an explain option: expected none, top or all"))
    }
}

/// The scored file's header for `model` under `explain`: [`OUTPUT_HEADER`] for
/// [`Explain::Top`]; without the four explanation columns (`risk_factors`,
/// `protective_factors`, `summary`, `recommendation`) for [`Explain::None`]; followed by
/// `shap_<input>` per schema column and `shap_base_value` for [`Explain::All`].
pub fn output_header(model: &Model, explain: Explain) -> Vec<String> {
    let mut header: Vec<String> = match explain {
        Explain::None => OUTPUT_HEADER
            .iter()
            .filter(|h| !EXPLANATION_COLUMNS.contains(h))
            .map(|h| h.to_string())
            .collect(),
        Explain::Top | Explain::All => OUTPUT_HEADER.iter().map(|h| h.to_string()).collect(),
    };
    if explain == Explain::All {
        header.extend(
            model
                .schema()
                .columns
                .iter()
                .map(|c| format!("shap_{}", c.name)),
        );
        header.push("shap_base_value".into());
    }
    header
}

/// The columns of [`OUTPUT_HEADER`] that [`Explain::None`] leaves out.
const EXPLANATION_COLUMNS: [&str; 4] = [
    "risk_factors",
    "protective_factors",
    "summary",
    "recommendation",
];

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            thresholds: RiskThresholds::default(),
            max_issues: 100,
            limits: InputLimits::default(),
            reference_date: None,
            reference_date_found: false,
            reference_date_source: None,
            mapping: ManualMapping::new(),
            explain: Explain::Top,
        }
    }
}

/// Scored rows per risk level.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RiskCounts {
    /// Rows at or above the high threshold.
    pub high: u64,
    /// Rows at or above the medium threshold and below high.
    pub medium: u64,
    /// The rest.
    pub low: u64,
}

impl RiskCounts {
    /// The count of `level`.
    pub fn get(&self, level: RiskLevel) -> u64 {
        match level {
            RiskLevel::High => self.high,
            RiskLevel::Medium => self.medium,
            RiskLevel::Low => self.low,
        }
    }

    /// Counts one more row of `level`.
    pub fn add(&mut self, level: RiskLevel) {
        match level {
            RiskLevel::High => self.high += 1,
            RiskLevel::Medium => self.medium += 1,
            RiskLevel::Low => self.low += 1,
        }
    }
}

/// One problem with one data row.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RowIssue {
    /// Data record number: 1 is the first record after the header.
    pub row: u64,
    /// The row's customer id, when the model has an id column and the row has a value.
    pub customer_id: Option<String>,
    /// The column at fault, if one is: the file's column as written (spaces kept).
    pub column: Option<String>,
    /// The model input that `column` feeds, when its name differs from the file's column
    /// (`tenure` for a file's `tenure_years`); `None` when they are the same or no column is
    /// at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// The raw cell text at fault, if one is.
    pub value: Option<String>,
    /// What was wrong or expected, e.g. `"expected a number"`.
    pub reason: String,
    /// For a value of a scored row that was not used as given (a warning): what the model used
    /// instead, e.g. `"missing (the model's rule for an absent value)"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_instead: Option<String>,
}

impl fmt::Display for RowIssue {
    /// `row 17 (customer 0042-ABCD), column TotalCharges, value "abc": expected a number`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(id) = &self.customer_id {
            write!(f, " (customer {id})")?;
        }
        if let Some(c) = &self.column {
            write!(f, ", column {c}")?;
            if let Some(input) = &self.feature {
                write!(f, " (model input {input})")?;
            }
        }
        if let Some(v) = &self.value {
            write!(f, ", value {v:?}")?;
        }
        write!(f, ": {}", self.reason)?;
        if let Some(u) = &self.used_instead {
            write!(f, "; used instead: {u}")?;
        }
        Ok(())
    }
}

/// What [`score_csv`] did; stored as a prediction's summary and read back through this type.
/// Every field is defaulted when absent, so a summary stored by an older release (before a
/// field existed) still reads: its `portfolio` and `validation` are then empty
/// ([`Portfolio::is_empty`], an empty `validation.balance`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ScoreReport {
    /// Data records read (header excluded).
    pub rows_total: u64,
    /// Rows written to the output.
    pub rows_scored: u64,
    /// Rows that could not be scored
    /// (`rows_total = rows_scored + rows_rejected + rows_skipped_empty`).
    pub rows_rejected: u64,
    /// Rows skipped because every field is empty (see [`ValidationReport::rows_skipped_empty`]).
    pub rows_skipped_empty: u64,
    /// The first rejected rows, one issue each.
    pub issues: Vec<RowIssue>,
    /// The first remarks on scored rows (e.g. an unseen category scored as missing).
    pub warnings: Vec<RowIssue>,
    /// Scored rows per risk level.
    pub risk_counts: RiskCounts,
    /// Mean churn probability of the scored rows (0 when none).
    pub mean_churn_probability: f64,
    /// File columns the model does not use (the label, the id column is not listed).
    pub ignored_columns: Vec<String>,
    /// The model that scored the file.
    pub model_id: String,
    /// Figures across the scored customers for a dashboard: probability histogram, revenue at
    /// risk (when the model has a monthly-revenue column), the most frequent risk drivers.
    pub portfolio: Portfolio,
    /// The file compared with the model's training data ([`crate::drift`]): PSI, missing and
    /// unseen shares per feature, the churn probability's shift, and the features flagged at
    /// PSI > 0.1 (watch) and > 0.25 (act). Not measured (`measured` false) in a summary stored
    /// before drift existed.
    pub drift: crate::drift::DriftReport,
    /// How the file was read: encoding, delimiter, column mapping, per-column missing/invalid
    /// counts and the rejected rows (capped, with totals).
    pub validation: ValidationReport,
    /// The reference date the date columns were counted from (`YYYY-MM-DD`), when the model
    /// has date columns and the file one (given, or its latest date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_date: Option<String>,
    /// Where `reference_date` came from when it was found in the file: its data row and
    /// column, and any later dates passed over as standing apart from the rest (those rows are
    /// flagged). Absent for a given reference date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_date_source: Option<String>,
    /// The file's column whose date each row's date columns were counted from, when the model
    /// was trained with per-row observation dates and the file has that column (then
    /// `reference_date` is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation_date: Option<String>,
}

/// Why a file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The input has no bytes (or only blank lines).
    #[error("the file is empty: upload a CSV with a header row and one row per customer")]
    Empty,
    /// The file is plainly not CSV text (a workbook, a PDF, binary data).
    #[error("the file is {format}, not a CSV: export or save it as CSV (comma- or semicolon-separated values) and upload that")]
    NotCsv {
        /// What it is, e.g. `"an Excel workbook or other zip archive (.xlsx, .zip)"`.
        format: &'static str,
    },
    /// The first line does not name columns.
    #[error("the first line of the file must be a header naming the columns (e.g. {example}); found {found:?}")]
    NoHeader {
        /// The first line's cells.
        found: Vec<String>,
        /// Some of the model's column names, to show what a header looks like.
        example: String,
    },
    /// More of the model's inputs have no column (no exact, normalised, alias, fuzzy or manual
    /// match) than a file may lack ([`crate::intake::max_absent`]; fewer are scored as missing).
    #[error("the file lacks {} of the model's {} inputs: {}; at most {allowed} may be absent (they are then scored as missing); the file has: {}", .missing.len(), .mapping.features.len(), missing_message(mapping), found_message(found))]
    MissingColumns {
        /// Needed columns not found (model spelling).
        missing: Vec<String>,
        /// The file's header, as written.
        found: Vec<String>,
        /// How many inputs a file may lack.
        allowed: usize,
        /// The whole mapping, with the closest columns suggested for each missing one.
        mapping: Box<ColumnMapping>,
    },
    /// Several file columns match one model input, and which to use is not ours to guess.
    #[error("{}", duplicates_message(duplicates))]
    DuplicateColumns {
        /// Each ambiguous input and the columns matching it.
        duplicates: Vec<DuplicateMatch>,
        /// The whole mapping.
        mapping: Box<ColumnMapping>,
    },
    /// A person's column choices cannot be applied (an input or header that does not exist,
    /// one column chosen twice).
    #[error("{message}")]
    BadMapping {
        /// What is wrong, naming the input and the header.
        message: String,
    },
    /// A reference date was given for a file whose rows carry their own observation date
    /// (the model was trained so): one of the two would be ignored in silence.
    #[error("the file gives each row its own date in the column {column:?}, so the reference date {given} would not be used: leave the reference date out (or remove the column to count every row from {given})")]
    ReferenceDateWithObservationDates {
        /// The observation date column found in the file.
        column: String,
        /// The reference date given, `YYYY-MM-DD`.
        given: String,
    },
    /// Not a single row could be scored.
    #[error("{}", no_usable_rows_message(*rows_total, first_issues))]
    NoUsableRows {
        /// Data records read.
        rows_total: u64,
        /// The first problems found.
        first_issues: Vec<RowIssue>,
        /// The full validation report (rejected rows, per-column counts, mapping).
        validation: Box<ValidationReport>,
    },
    /// The header has more columns than [`InputLimits::max_columns`].
    #[error(
        "the file has {columns} columns; at most {limit} are accepted (is the delimiter right?)"
    )]
    TooManyColumns {
        /// Columns in the header.
        columns: usize,
        /// The limit.
        limit: usize,
    },
    /// A field is longer than [`InputLimits::max_field_bytes`].
    #[error("{}: a field of {bytes} bytes is longer than the {limit}-byte limit (usually a quote that is never closed, swallowing the rows after it)", crate::csv_input::RowPlace(*row).cell(column))]
    FieldTooLong {
        /// Data record number (0 = the header, named as such).
        row: u64,
        /// The column's name (or `column N`).
        column: String,
        /// The field's length in bytes (UTF-8).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The file has more data rows than [`InputLimits::max_rows`].
    #[error("the file has more than {limit} data rows; split it into smaller files")]
    TooManyRows {
        /// The limit.
        limit: u64,
    },
    /// CSV syntax the reader cannot recover from.
    #[error("the CSV file cannot be read {}: {message}", crate::csv_input::RowPlace(*row))]
    Malformed {
        /// Data record number where reading failed (0 = the header, named as such).
        row: u64,
        /// The reader's explanation.
        message: String,
    },
    /// Reading the input or writing the output failed.
    #[error("reading or writing failed: {0}")]
    Io(#[from] std::io::Error),
}

fn no_usable_rows_message(rows_total: u64, issues: &[RowIssue]) -> String {
    if rows_total == 0 {
        return "the file has a header but no customer rows; add one row per customer below the header".into();
    }
    if issues.is_empty() {
        return format!("all {rows_total} rows of the file are empty (every field blank)");
    }
    let first: Vec<String> = issues.iter().take(3).map(|i| i.to_string()).collect();
    format!(
        "none of the {rows_total} rows could be scored; first problems: {}",
        first.join("; ")
    )
}

/// The header in a message: each name quoted, so spaces around a name can be seen.
fn found_message(found: &[String]) -> String {
    found
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing_message(mapping: &ColumnMapping) -> String {
    let parts: Vec<String> = mapping
        .missing
        .iter()
        .map(|m| {
            if m.suggestions.is_empty() {
                m.feature.clone()
            } else {
                let near: Vec<&str> = m.suggestions.iter().map(|s| s.column.as_str()).collect();
                format!("{} (closest: {})", m.feature, near.join(", "))
            }
        })
        .collect();
    parts.join(", ")
}

fn duplicates_message(duplicates: &[DuplicateMatch]) -> String {
    let parts: Vec<String> = duplicates
        .iter()
        .map(|d| {
            // Positions count from 1 as a spreadsheet shows them, and tell apart two columns
            // with the same name.
            let named: Vec<String> = d
                .columns
                .iter()
                .zip(&d.positions)
                .map(|(c, p)| format!("{c:?} (column {})", p + 1))
                .collect();
            format!("columns {} all match {}", named.join(" and "), d.feature)
        })
        .collect();
    format!(
        "{}: keep one of each, or rename the others",
        parts.join("; ")
    )
}

impl ScoreError {
    /// True when retrying cannot help: the file itself must change. Only [`ScoreError::Io`] is
    /// transient.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ScoreError::Io(_))
    }

    /// The column mapping, when the error is about columns.
    pub fn mapping(&self) -> Option<&ColumnMapping> {
        match self {
            ScoreError::MissingColumns { mapping, .. }
            | ScoreError::DuplicateColumns { mapping, .. } => Some(mapping),
            ScoreError::NoUsableRows { validation, .. } => validation.mapping.as_ref(),
            _ => None,
        }
    }

    /// The validation report, when rows were read before the file failed.
    pub fn validation(&self) -> Option<&ValidationReport> {
        match self {
            ScoreError::NoUsableRows { validation, .. } => Some(validation),
            _ => None,
        }
    }

    /// What a failed file's report holds: the error in words plus whatever was learnt about the
    /// file before it failed (mapping, per-column counts, first rejected rows), so a failed job
    /// has a report as a scored one does. Serializes as `{"error", "validation", "mapping"}`.
    pub fn failure_report(&self) -> FailureReport<'_> {
        FailureReport {
            error: self.to_string(),
            validation: self.validation(),
            mapping: self.mapping(),
        }
    }
}

/// The report of a file that could not be scored; see [`ScoreError::failure_report`].
#[derive(Debug, Serialize)]
pub struct FailureReport<'a> {
    /// The error, as shown to the user.
    pub error: String,
    /// The validation report, when rows were read.
    pub validation: Option<&'a ValidationReport>,
    /// The column mapping, when the header was read.
    pub mapping: Option<&'a ColumnMapping>,
}

/// Rows between two calls of the progress callback.
pub const PROGRESS_EVERY: u64 = 1000;

/// The scored file's header.
pub const OUTPUT_HEADER: [&str; 10] = [
    "customer_id",
    "churn_probability",
    "retention_probability",
    "risk_level",
    "model_version",
    "risk_factors",
    "protective_factors",
    "summary",
    "recommendation",
    "data_quality",
];

/// Scores a customer CSV with `model`, writing the scored CSV to `output`.
///
/// Input: a header row, then one row per customer, read by [`crate::intake`]: UTF-8 (with or
/// without a byte-order mark), UTF-16 with a byte-order mark or windows-1252; `,` `;` tab or `|`
/// delimited (a decimal comma in `;` files); `\n`, `\r\n` or mixed line endings; RFC 4180
/// quoting. Columns are matched to the model's inputs by [`crate::mapping::map_columns`] (exact,
/// normalised, alias with unit conversion, fuzzy); extra columns are ignored.
///
/// Output: the columns [`output_header`] (with the default [`Explain::Top`],
/// [`OUTPUT_HEADER`]), one row per scorable input row, in input order:
/// `customer_id` (the id column's text exactly as given, or the data row number when the model
/// or file has no id column), `churn_probability` and `retention_probability = 1 − churn`
/// rounded to 6 decimals, `risk_level` from `opts.thresholds`, [`Model::id`]; then the
/// explanation from exact TreeSHAP ([`crate::explain`]): `risk_factors` and
/// `protective_factors` (JSON arrays of up to 3 `{"feature","value","impact"}`, impact in
/// percentage points of churn probability, rounded to 0.1, plus `"quality"` on a flagged
/// value), a one-line `summary` and a `recommendation` by risk level and top driver; then
/// `data_quality`: the row's flagged values ([`crate::quality`], e.g.
/// `"TotalCharges: missing"`), empty for a clean row. Cells are written raw, as given
/// (the results are stored so); a file for a person to open goes through
/// [`crate::safe_csv::SafeCsvWriter`], which makes every cell spreadsheet-safe.
///
/// Rows are scored in batches of [`crate::batch::BATCH_ROWS`] on every core (rayon) and
/// written in input order; the output bytes do not depend on the number of threads.
///
/// `progress(rows_seen)` is called every [`PROGRESS_EVERY`] data rows and once at the end.
///
/// A model with date columns reads them as whole days before `opts.reference_date`; one pass
/// over a stream cannot find the file's own latest date first, so without a reference date a
/// row holding a date is rejected saying so. [`score_seekable`] finds it in a first pass.
///
/// # Errors
/// [`ScoreError`]: whole-file problems (see its variants); a bad row is never an error but a
/// [`RowIssue`] in the report.
pub fn score_csv<R: Read, W: Write>(
    model: &Model,
    input: R,
    output: W,
    opts: &ScoreOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ScoreReport, ScoreError> {
    let mut intake = Intake::open_with(model, input, &opts.limits, &opts.mapping)?;
    let (report, reference) = prepare(model, &mut intake, opts)?;
    let mut output = output;
    write_header(model, opts.explain, &mut output)?;
    let gathered = gather(
        model,
        intake,
        reference,
        report,
        &mut output,
        opts,
        progress,
        None,
    )?;
    output.flush()?;
    finish(model, gathered)
}

/// Checks `intake`'s mapping and the reference date against `opts`, sets the reference date
/// its rows' date columns count from, and starts the report. Returns the report and that
/// date.
pub(crate) fn prepare<R: Read>(
    model: &Model,
    intake: &mut Intake<'_, R>,
    opts: &ScoreOptions,
) -> Result<(ScoreReport, Option<NaiveDate>), ScoreError> {
    intake.check_mapping()?;
    let reads_dates = intake.reads_dates();
    // Rows that carry their own observation date count from it, not from one file date.
    let observation_column = intake
        .observation_column()
        .filter(|_| reads_dates)
        .map(str::to_owned);
    if let (Some(column), Some(given), false) = (
        &observation_column,
        opts.reference_date,
        opts.reference_date_found,
    ) {
        return Err(ScoreError::ReferenceDateWithObservationDates {
            column: column.clone(),
            given: crate::dates::iso(given),
        });
    }
    let reference = opts
        .reference_date
        .filter(|_| reads_dates && observation_column.is_none());
    if reads_dates {
        intake.set_reference_date(reference);
    }
    let report = ScoreReport {
        rows_total: 0,
        rows_scored: 0,
        rows_rejected: 0,
        rows_skipped_empty: 0,
        issues: Vec::new(),
        warnings: Vec::new(),
        risk_counts: RiskCounts::default(),
        mean_churn_probability: 0.0,
        // The observation date column is read, not ignored.
        ignored_columns: intake
            .mapping()
            .unmapped
            .iter()
            .filter(|c| Some(c.as_str()) != intake.observation_column())
            .cloned()
            .collect(),
        model_id: model.id().to_string(),
        portfolio: Portfolio::default(),
        drift: crate::drift::DriftReport::default(),
        validation: ValidationReport::default(),
        reference_date: reference.map(crate::dates::iso),
        reference_date_source: reference.and(opts.reference_date_source.clone()),
        observation_date: observation_column,
    };
    Ok((report, reference))
}

/// Writes the scored file's header line ([`output_header`]).
pub(crate) fn write_header<W: Write>(
    model: &Model,
    explain: Explain,
    output: &mut W,
) -> Result<(), ScoreError> {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    writer
        .write_record(output_header(model, explain))
        .map_err(csv_write_error)?;
    output.write_all(&writer.into_inner().map_err(|e| e.into_error())?)?;
    Ok(())
}

/// A scoring pass's report and running sums before its figures (mean, portfolio, drift) are
/// finished: what a piece of a file stores for the merge ([`crate::chunks`]).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Gathered {
    /// The report so far: counts, the first issues and warnings, the validation report
    /// (closed); `mean_churn_probability`, `portfolio` and `drift` not yet computed.
    pub report: ScoreReport,
    /// Σ churn probability of the scored rows.
    pub sum_p: crate::fixed_sum::FixedSum,
    /// The dashboard's running sums.
    pub portfolio: PortfolioAcc,
    /// The drift bin counts.
    pub drift: crate::drift::DriftAcc,
}

/// Told each scored row's number and customer id ([`crate::chunks::score_piece`]).
pub(crate) type IdSink<'a> = dyn FnMut(u64, &str) + 'a;

/// Scores every row `intake` yields into `output` (lines only, no header); `ids`, when given,
/// is told each scored row's number and customer id (for a repeat check across pieces).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gather<R: Read, W: Write>(
    model: &Model,
    mut intake: Intake<'_, R>,
    reference: Option<NaiveDate>,
    mut report: ScoreReport,
    output: &mut W,
    opts: &ScoreOptions,
    progress: &mut dyn FnMut(u64),
    mut ids: Option<&mut IdSink<'_>>,
) -> Result<Gathered, ScoreError> {
    let encoder = model.encoder();
    let mut portfolio = PortfolioAcc::new(model.explainer().n_columns());
    let mut drift = crate::drift::DriftAcc::new(model.schema(), &model.card().features);
    let mut batch = Batch::new(encoder.n_features());
    // Scores full batches on the other cores while this thread reads the next one.
    let mut pipeline = Pipeline::new(model, &opts.thresholds, reference, opts.explain);
    let mut sum_p = crate::fixed_sum::FixedSum::default();

    while let Some(read) = intake.next_row(batch.next_features())? {
        let row = read.row;
        let customer_id = read.customer_id;
        report.rows_total = row;
        if row % PROGRESS_EVERY == 0 {
            progress(row);
        }
        for w in read.warnings {
            if report.warnings.len() < opts.max_issues {
                report.warnings.push(w);
            }
        }
        if let Some(i) = read.rejected {
            report.rows_rejected += 1;
            if report.issues.len() < opts.max_issues {
                report.issues.push(i);
            }
            continue;
        }
        if let (Some(ids), Some(id)) = (ids.as_mut(), customer_id.as_deref()) {
            ids(row, id);
        }

        batch.push_observed(row, customer_id, read.flags, intake.observation_date());
        if batch.is_full() {
            if let Some(scored) = pipeline.submit(&mut batch) {
                write_scored(&scored, output, &mut report, &mut sum_p)?;
                portfolio.merge(&scored.portfolio);
                drift.merge(&scored.drift);
            }
        }
    }
    if let Some(scored) = pipeline.submit(&mut batch) {
        write_scored(&scored, output, &mut report, &mut sum_p)?;
        portfolio.merge(&scored.portfolio);
        drift.merge(&scored.drift);
    }
    for scored in pipeline.finish() {
        write_scored(&scored, output, &mut report, &mut sum_p)?;
        portfolio.merge(&scored.portfolio);
        drift.merge(&scored.drift);
    }
    report.validation = intake.finish();
    report.rows_total = report.validation.rows_total;
    report.rows_skipped_empty = report.validation.rows_skipped_empty;
    progress(report.rows_total);
    Ok(Gathered {
        report,
        sum_p,
        portfolio,
        drift,
    })
}

/// Closes the validation report and computes the figures over the whole file.
///
/// # Errors
/// [`ScoreError::NoUsableRows`] when no row was scored.
pub(crate) fn finish(model: &Model, gathered: Gathered) -> Result<ScoreReport, ScoreError> {
    let Gathered {
        mut report,
        sum_p,
        portfolio,
        drift,
    } = gathered;
    report.validation.close(report.rows_scored);
    if report.rows_scored == 0 {
        return Err(ScoreError::NoUsableRows {
            rows_total: report.rows_total,
            first_issues: report.issues,
            validation: Box::new(report.validation),
        });
    }
    report.mean_churn_probability = sum_p.value() / report.rows_scored as f64;
    report.portfolio = portfolio.finish(model.schema(), report.validation.mapping.as_ref());
    report
        .portfolio
        .note_repeated_ids(report.validation.duplicate_ids);
    report.drift = drift.finish(
        model.schema(),
        &model.card().features,
        model.card().score_profile.as_ref(),
        &report.portfolio.probability_histogram,
    );
    Ok(report)
}

/// [`score_csv`] over an input that can be read twice: when the model has date columns and
/// `opts.reference_date` is `None`, a first pass finds the file's reference date (the latest
/// date in any of its date columns, [`find_reference_date`]; the choice is
/// [`crate::plan::plan`]'s), then the input is rewound to where it was and scored against it.
/// Otherwise exactly [`score_csv`] (one pass).
///
/// # Errors
/// As [`score_csv`]; [`ScoreError::Io`] when seeking fails.
pub fn score_seekable<R: Read + Seek, W: Write>(
    model: &Model,
    mut input: R,
    output: W,
    opts: &ScoreOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ScoreReport, ScoreError> {
    let plan = crate::plan::plan(
        model,
        None,
        opts.reference_date,
        &mut input,
        &opts.limits,
        &opts.mapping,
    )?;
    let opts = ScoreOptions {
        reference_date: plan.reference_date,
        reference_date_found: opts.reference_date.is_none(),
        reference_date_source: plan.reference_source,
        ..opts.clone()
    };
    score_csv(model, input, output, &opts, progress)
}

/// The file's reference date for `model`: the latest date in any of the model's date columns
/// of `input` (`None` when the model has none, or the file holds no date in them). Reads the
/// whole input, under `limits`; cells that are not dates are skipped (scoring reports them).
///
/// # Errors
/// Whole-file problems, as [`score_csv`] (the mapping included: a file that cannot be scored
/// fails here already).
pub fn find_reference_date<R: Read>(
    model: &Model,
    input: R,
    limits: &InputLimits,
) -> Result<Option<NaiveDate>, ScoreError> {
    find_reference_date_with(model, input, limits, &ManualMapping::new())
}

/// [`find_reference_date`] with the file's columns read through a person's column choices
/// (`manual`), as scoring will read them.
///
/// # Errors
/// As [`find_reference_date`].
pub fn find_reference_date_with<R: Read>(
    model: &Model,
    input: R,
    limits: &InputLimits,
    manual: &ManualMapping,
) -> Result<Option<NaiveDate>, ScoreError> {
    let mut intake = Intake::open_with(model, input, limits, manual)?;
    intake.check_mapping()?;
    if !intake.reads_dates() {
        return Ok(None);
    }
    intake.latest_date()
}

/// [`find_reference_date_with`], with where the date came from in words
/// ([`Intake::reference_source`]: its data row and column, and any latest dates passed over as
/// standing apart from the rest, [`crate::dates::latest_not_apart`]).
///
/// # Errors
/// As [`find_reference_date`].
pub fn find_reference_date_sourced<R: Read>(
    model: &Model,
    input: R,
    limits: &InputLimits,
    manual: &ManualMapping,
) -> Result<(Option<NaiveDate>, Option<String>), ScoreError> {
    let mut intake = Intake::open_with(model, input, limits, manual)?;
    intake.check_mapping()?;
    if !intake.reads_dates() {
        return Ok((None, None));
    }
    let date = intake.latest_date()?;
    Ok((date, intake.reference_source().map(str::to_owned)))
}

/// Writes a scored batch's lines (already in input order) and counts its rows into `report`
/// and `sum_p` (an exact sum, so the mean depends neither on threads nor on how the file was
/// cut into batches or pieces).
fn write_scored<W: Write>(
    scored: &Scored,
    output: &mut W,
    report: &mut ScoreReport,
    sum_p: &mut crate::fixed_sum::FixedSum,
) -> Result<(), ScoreError> {
    output.write_all(&scored.bytes)?;
    for (p, level) in scored.probabilities.iter().zip(&scored.levels) {
        sum_p.add(*p);
        report.risk_counts.add(*level);
    }
    report.rows_scored += scored.probabilities.len() as u64;
    Ok(())
}

fn csv_write_error(e: csv::Error) -> ScoreError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ScoreError::Io(io),
        other => ScoreError::Io(std::io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_levels_follow_the_thresholds_and_read_back_from_their_text() {
        let t = RiskThresholds::default();
        assert_eq!(t.level(0.70), RiskLevel::High);
        assert_eq!(t.level(0.699999), RiskLevel::Medium);
        assert_eq!(t.level(0.40), RiskLevel::Medium);
        assert_eq!(t.level(0.0), RiskLevel::Low);
        for level in RiskLevel::ALL {
            assert_eq!(level.as_str().parse::<RiskLevel>(), Ok(level));
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{level}\""));
            assert_eq!(serde_json::from_str::<RiskLevel>(&json).unwrap(), level);
        }
        assert_eq!(" HIGH ".parse::<RiskLevel>(), Ok(RiskLevel::High));
        assert!("urgent".parse::<RiskLevel>().is_err());
        let mut counts = RiskCounts::default();
        counts.add(RiskLevel::Medium);
        assert_eq!(counts.get(RiskLevel::Medium), 1);
        let back: RiskCounts =
            serde_json::from_str(&serde_json::to_string(&counts).unwrap()).unwrap();
        assert_eq!(back, counts);
    }
}
