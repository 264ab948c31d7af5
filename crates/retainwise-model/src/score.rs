//! The batch scorer: a customer CSV in, a scored CSV out, streaming row by row.
//!
//! Memory does not grow with the file: one input record, one feature vector and the capped
//! issue lists are all that is held. Every data record ends in exactly one place: a scored
//! output row (in input order) or a rejection counted in the report (the first
//! [`ScoreOptions::max_issues`] listed with row, customer id, column, value and what was
//! expected). Only problems with the file as a whole (empty, no header, missing feature
//! columns, nothing scorable, unreadable CSV syntax) fail the call.

use serde::Serialize;
use std::fmt;
use std::io::{Read, Write};

use crate::artifact::Model;
use crate::csv_input::{self, ReadError};
use crate::encode::CellNote;
use crate::safe_csv::escape_cell;
use crate::values;

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
    /// The risk level of churn probability `p`: `"high"`, `"medium"` or `"low"`.
    pub fn level(&self, p: f64) -> &'static str {
        if p >= self.high {
            "high"
        } else if p >= self.medium {
            "medium"
        } else {
            "low"
        }
    }
}

/// Options of [`score_csv`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreOptions {
    /// Risk level cut-offs.
    pub thresholds: RiskThresholds,
    /// At most this many rejected rows, and separately this many warnings, are listed in the
    /// report (all are counted). Default 100.
    pub max_issues: usize,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            thresholds: RiskThresholds::default(),
            max_issues: 100,
        }
    }
}

/// Scored rows per risk level.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RiskCounts {
    /// Rows at or above the high threshold.
    pub high: u64,
    /// Rows at or above the medium threshold and below high.
    pub medium: u64,
    /// The rest.
    pub low: u64,
}

/// One problem with one data row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowIssue {
    /// Data record number: 1 is the first record after the header.
    pub row: u64,
    /// The row's customer id, when the model has an id column and the row has a value.
    pub customer_id: Option<String>,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// The raw cell text at fault, if one is.
    pub value: Option<String>,
    /// What was wrong or expected, e.g. `"expected a number"`.
    pub reason: String,
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
        }
        if let Some(v) = &self.value {
            write!(f, ", value {v:?}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// What [`score_csv`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreReport {
    /// Data records read (header excluded).
    pub rows_total: u64,
    /// Rows written to the output.
    pub rows_scored: u64,
    /// Rows that could not be scored (`rows_total = rows_scored + rows_rejected`).
    pub rows_rejected: u64,
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
}

/// Why a file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The input has no bytes (or only blank lines).
    #[error("the file is empty: upload a CSV with a header row and one row per customer")]
    Empty,
    /// The first line does not name columns.
    #[error("the first line of the file must be a header naming the columns (e.g. {example}); found {found:?}")]
    NoHeader {
        /// The first line's cells.
        found: Vec<String>,
        /// Some of the model's column names, to show what a header looks like.
        example: String,
    },
    /// Feature columns the model needs are absent.
    #[error("the file lacks column(s) the model needs: {}; the file has: {}", .missing.join(", "), .found.join(", "))]
    MissingColumns {
        /// Needed columns not found (model spelling).
        missing: Vec<String>,
        /// The file's header.
        found: Vec<String>,
    },
    /// Not a single row could be scored.
    #[error("{}", no_usable_rows_message(*rows_total, first_issues))]
    NoUsableRows {
        /// Data records read.
        rows_total: u64,
        /// The first problems found.
        first_issues: Vec<RowIssue>,
    },
    /// CSV syntax the reader cannot recover from.
    #[error("the CSV file cannot be read at data row {row}: {message}")]
    Malformed {
        /// Data record number where reading failed.
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
        return "the file has a header but no data rows".into();
    }
    let first: Vec<String> = issues.iter().take(3).map(|i| i.to_string()).collect();
    format!(
        "none of the {rows_total} rows could be scored; first problems: {}",
        first.join("; ")
    )
}

impl ScoreError {
    /// True when retrying cannot help: the file itself must change. Only [`ScoreError::Io`] is
    /// transient.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ScoreError::Io(_))
    }
}

/// How the file's header maps onto the model.
struct Binding {
    /// File column index of each schema column.
    feature_at: Vec<usize>,
    /// File column index of the id column.
    id_at: Option<usize>,
    /// File columns not used.
    ignored: Vec<String>,
}

/// Finds `wanted` in `header`: the exact name, else the first name equal under
/// [`values::column_key`].
fn find_column(header: &[String], wanted: &str) -> Option<usize> {
    header.iter().position(|h| h == wanted).or_else(|| {
        let key = values::column_key(wanted);
        header.iter().position(|h| values::column_key(h) == key)
    })
}

fn bind(model: &Model, header: &[String]) -> Result<Binding, ScoreError> {
    let schema = model.schema();
    let mut feature_at = Vec::with_capacity(schema.columns.len());
    let mut missing = Vec::new();
    for c in &schema.columns {
        match find_column(header, &c.name) {
            Some(i) => feature_at.push(i),
            None => missing.push(c.name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(ScoreError::MissingColumns {
            missing,
            found: header.to_vec(),
        });
    }
    let id_at = model.id_column().and_then(|id| find_column(header, id));
    let ignored = header
        .iter()
        .enumerate()
        .filter(|(i, _)| !feature_at.contains(i) && Some(*i) != id_at)
        .map(|(_, h)| h.clone())
        .collect();
    Ok(Binding {
        feature_at,
        id_at,
        ignored,
    })
}

/// Rows between two calls of the progress callback.
pub const PROGRESS_EVERY: u64 = 1000;

/// The scored file's header.
pub const OUTPUT_HEADER: [&str; 5] = [
    "customer_id",
    "churn_probability",
    "retention_probability",
    "risk_level",
    "model_version",
];

/// Scores a customer CSV with `model`, writing the scored CSV to `output`.
///
/// Input: a header row, then one row per customer; columns are matched to the model's features
/// by exact name, else ignoring case, spaces, `_` and `-`; extra columns are ignored. UTF-8 with
/// or without a byte-order mark, `\n` or `\r\n` line endings, RFC 4180 quoting.
///
/// Output: the columns [`OUTPUT_HEADER`], one row per scorable input row, in input order:
/// `customer_id` (the id column's text exactly as given, or the data row number when the model
/// or file has no id column), `churn_probability` and `retention_probability = 1 − churn`
/// rounded to 6 decimals, `risk_level` from `opts.thresholds`, and [`Model::id`]. Text cells
/// are made spreadsheet-safe ([`crate::safe_csv`]).
///
/// `progress(rows_seen)` is called every [`PROGRESS_EVERY`] data rows and once at the end.
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
    let mut reader = csv_input::reader(input)?;
    let mut record = csv::ByteRecord::new();
    let read = |reader: &mut csv::Reader<_>, record: &mut csv::ByteRecord, row: u64| {
        csv_input::next_record(reader, record).map_err(|e| match e {
            ReadError::Io(io) => ScoreError::Io(io),
            ReadError::Malformed(message) => ScoreError::Malformed { row, message },
        })
    };
    if !read(&mut reader, &mut record, 0)? {
        return Err(ScoreError::Empty);
    }
    let header = csv_input::header_names(&record);
    if csv_input::looks_headerless(&header) {
        let example: Vec<&str> = model
            .schema()
            .columns
            .iter()
            .take(3)
            .map(|c| c.name.as_str())
            .collect();
        return Err(ScoreError::NoHeader {
            found: header,
            example: example.join(","),
        });
    }
    let binding = bind(model, &header)?;
    let schema = model.schema();
    let encoder = model.encoder();
    // The highest file column a row must reach for every feature to be present.
    let needed_width = binding.feature_at.iter().max().map_or(0, |m| m + 1);

    let mut writer = csv::WriterBuilder::new().from_writer(output);
    writer
        .write_record(OUTPUT_HEADER)
        .map_err(csv_write_error)?;

    let mut report = ScoreReport {
        rows_total: 0,
        rows_scored: 0,
        rows_rejected: 0,
        issues: Vec::new(),
        warnings: Vec::new(),
        risk_counts: RiskCounts::default(),
        mean_churn_probability: 0.0,
        ignored_columns: binding.ignored.clone(),
        model_id: model.id().to_string(),
    };
    let mut features = vec![0.0; encoder.n_features()];
    let mut sum_p = 0.0;
    let mut line_buf = cells::Buf::default();

    loop {
        let row = report.rows_total + 1;
        if !read(&mut reader, &mut record, row)? {
            break;
        }
        report.rows_total = row;
        if row % PROGRESS_EVERY == 0 {
            progress(row);
        }
        let customer_id = binding
            .id_at
            .and_then(|i| record.get(i))
            .map(|b| csv_input::decode_field(b).into_owned());
        let issue = |column: Option<String>, value: Option<String>, reason: String| RowIssue {
            row,
            customer_id: customer_id.clone().filter(|s| !s.is_empty()),
            column,
            value,
            reason,
        };
        let reject = |report: &mut ScoreReport, i: RowIssue| {
            report.rows_rejected += 1;
            if report.issues.len() < opts.max_issues {
                report.issues.push(i);
            }
        };

        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            let i = issue(None, None, "the row is empty".into());
            reject(&mut report, i);
            continue;
        }
        if record.len() > header.len() {
            let i = issue(
                None,
                None,
                format!(
                    "the row has {} fields but the header has {} (a missing quote or an extra comma?)",
                    record.len(),
                    header.len()
                ),
            );
            reject(&mut report, i);
            continue;
        }
        if record.len() < needed_width {
            let first_missing = schema
                .columns
                .iter()
                .zip(&binding.feature_at)
                .filter(|(_, &at)| at >= record.len())
                .min_by_key(|(_, &at)| at)
                .map(|(c, _)| c.name.clone());
            let i = issue(
                first_missing,
                None,
                format!(
                    "the row has {} fields but the header has {}; this column is missing",
                    record.len(),
                    header.len()
                ),
            );
            reject(&mut report, i);
            continue;
        }

        let mut bad: Option<RowIssue> = None;
        let mut bad_count = 0;
        for (c, &at) in binding.feature_at.iter().enumerate() {
            let raw = csv_input::decode_field(&record[at]);
            match encoder.encode_cell(c, &raw, &mut features) {
                Ok(CellNote::Fine) => {}
                Ok(CellNote::UnseenLevel) => {
                    if report.warnings.len() < opts.max_issues {
                        report.warnings.push(issue(
                            Some(schema.columns[c].name.clone()),
                            Some(raw.into_owned()),
                            "a category the model has not seen; scored as if missing".into(),
                        ));
                    }
                }
                Err(e) => {
                    bad_count += 1;
                    if bad.is_none() {
                        bad = Some(issue(
                            Some(schema.columns[c].name.clone()),
                            Some(raw.into_owned()),
                            e.expected().to_string(),
                        ));
                    }
                }
            }
        }
        if let Some(mut i) = bad {
            if bad_count > 1 {
                i.reason = format!(
                    "{} (and {} more bad value(s) in this row)",
                    i.reason,
                    bad_count - 1
                );
            }
            reject(&mut report, i);
            continue;
        }

        let p = model.predict_probability(&features);
        sum_p += p;
        let p6 = (p * 1e6).round() / 1e6;
        let level = opts.thresholds.level(p6);
        match level {
            "high" => report.risk_counts.high += 1,
            "medium" => report.risk_counts.medium += 1,
            _ => report.risk_counts.low += 1,
        }
        let id_cell = match &customer_id {
            Some(id) => escape_cell(id).into_owned(),
            None => row.to_string(),
        };
        let (churn, retention) = line_buf.probabilities(p6);
        writer
            .write_record([
                id_cell.as_bytes(),
                churn.as_bytes(),
                retention.as_bytes(),
                level.as_bytes(),
                escape_cell(model.id()).as_bytes(),
            ])
            .map_err(csv_write_error)?;
        report.rows_scored += 1;
    }
    writer.flush()?;
    drop(writer);
    progress(report.rows_total);

    if report.rows_scored == 0 {
        return Err(ScoreError::NoUsableRows {
            rows_total: report.rows_total,
            first_issues: report.issues,
        });
    }
    report.mean_churn_probability = sum_p / report.rows_scored as f64;
    Ok(report)
}

fn csv_write_error(e: csv::Error) -> ScoreError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ScoreError::Io(io),
        other => ScoreError::Io(std::io::Error::other(format!("{other:?}"))),
    }
}

/// Formatting of the two probability cells without allocating per row.
mod cells {
    use std::fmt::Write;

    #[derive(Default)]
    pub struct Buf {
        churn: String,
        retention: String,
    }

    impl Buf {
        /// `p` and `1 − p` with exactly 6 decimals (`p` already rounded to 6 decimals).
        pub fn probabilities(&mut self, p: f64) -> (&str, &str) {
            self.churn.clear();
            self.retention.clear();
            let _ = write!(self.churn, "{p:.6}");
            // Computed in millionths so churn + retention is exactly 1 as written.
            let millionths = (p * 1e6).round() as i64;
            let r = 1_000_000 - millionths;
            let _ = write!(self.retention, "{}.{:06}", r / 1_000_000, r % 1_000_000);
            (&self.churn, &self.retention)
        }
    }
}
