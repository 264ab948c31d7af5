//! Reading a file of outcomes: what really happened to customers (customer id, churned yes/no,
//! the date it was observed), through the same intake as a scored file — encoding and
//! delimiter detection ([`crate::csv_input`]), column mapping with aliases and a person's
//! choices ([`crate::mapping`]), and a [`ValidationReport`] naming each rejected row, column
//! and raw value.
//!
//! The three inputs are [`ID`], [`CHURNED`] and [`DATE`]; other names for them are in the
//! alias table ([`crate::aliases::GROUPS`]: `customerID`, `Churn`, `Exited`, `churn_date`, …).
//! A row needs all three: a blank or unreadable cell, or a date after `today`, rejects the row
//! naming the cell. A customer given twice in one file keeps the row with the later date (the
//! later row on equal dates); the other is listed as a warning.

use std::collections::HashMap;
use std::io::Read;

use chrono::NaiveDate;

use crate::csv_input::{self, ReadError};
use crate::mapping::{self, ColumnMapping, ManualMapping};
use crate::report::{ColumnStats, ValidationReport};
use crate::schema::{ColumnKind, FeatureSchema, SourceColumn};
use crate::score::{RowIssue, ScoreError};
use crate::{dates, values};

/// The customer id input.
pub const ID: &str = "customer_id";
/// The outcome input: churned (yes) or still a customer (no).
pub const CHURNED: &str = "churned";
/// The input of the date the outcome was observed (the churn date, or the date the customer
/// was seen still active).
pub const DATE: &str = "date";

/// One recorded outcome.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// The customer id exactly as written (spaces around it removed).
    pub customer_id: String,
    /// True: the customer churned on `date`; false: still a customer on `date`.
    pub churned: bool,
    /// When it was observed.
    pub date: NaiveDate,
}

/// An outcomes file once read.
#[derive(Clone, Debug)]
pub struct OutcomeFile {
    /// One outcome per customer (a customer given twice keeps the later one), in file order.
    pub outcomes: Vec<Outcome>,
    /// How the file was read: mapping, per-column counts, rejected rows, warnings, balance
    /// (`rows_scored` counts the rows recorded).
    pub report: ValidationReport,
}

/// Why a whole outcomes file was refused.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    /// A problem of the file as a whole, worded as for a scored file.
    #[error(transparent)]
    File(#[from] ScoreError),
    /// An input has no column.
    #[error("{}", missing_message(.mapping, .found))]
    MissingColumns {
        /// The whole mapping, with suggestions for each missing input.
        mapping: Box<ColumnMapping>,
        /// The file's header as written.
        found: Vec<String>,
    },
    /// No row could be recorded.
    #[error("no outcome could be recorded: {} rows read, every one rejected; first: {}", .report.rows_total, .report.rejected_rows.first().map(ToString::to_string).unwrap_or_else(|| "none".into()))]
    NoUsableRows {
        /// The report with the rejected rows.
        report: Box<ValidationReport>,
    },
}

fn missing_message(mapping: &ColumnMapping, found: &[String]) -> String {
    let parts: Vec<String> = mapping
        .missing
        .iter()
        .map(|m| {
            let mut s = format!("no {} column", m.feature);
            if !m.suggestions.is_empty() {
                let names: Vec<String> = m
                    .suggestions
                    .iter()
                    .map(|s| format!("{:?}", s.column))
                    .collect();
                s.push_str(&format!(" (did you mean {}?)", names.join(" or ")));
            }
            s
        })
        .collect();
    format!(
        "an outcomes file needs a customer id, churned (yes/no) and date column: {}; the file has: {}; name them {ID}, {CHURNED} and {DATE}, or choose the columns with the mapping field (e.g. {{\"{CHURNED}\": \"Exited\"}})",
        parts.join("; "),
        found
            .iter()
            .map(|h| format!("{h:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// True when file column `column` names an outcome (`Churn`, `Exited`, `churned`: the alias
/// group of [`CHURNED`]): a label, never a feature to learn from.
pub fn names_outcome(column: &str) -> bool {
    crate::aliases::meaning_of(column).is_some()
        && crate::aliases::meaning_of(column) == crate::aliases::meaning_of(CHURNED)
}

/// The inputs of an outcomes file as a schema, for [`crate::mapping`].
pub fn schema() -> FeatureSchema {
    FeatureSchema {
        label: String::new(),
        id_column: Some(ID.to_owned()),
        columns: vec![
            SourceColumn {
                name: CHURNED.to_owned(),
                kind: ColumnKind::Boolean,
            },
            SourceColumn {
                name: DATE.to_owned(),
                kind: ColumnKind::Date,
            },
        ],
    }
}

/// Reads an outcomes CSV (see the module doc), with `manual` column choices applied first.
/// `today` bounds the dates (an outcome cannot be observed in the future); `limits` bounds the
/// work as for a scored file.
///
/// # Errors
/// [`OutcomeError`]: the file is not CSV text, has no header, lacks a column, a choice cannot
/// be applied, or no row could be recorded.
pub fn read(
    input: impl Read,
    manual: &ManualMapping,
    today: NaiveDate,
    limits: &crate::InputLimits,
) -> Result<OutcomeFile, OutcomeError> {
    let opened = csv_input::open(input).map_err(ScoreError::Io)?;
    if let Some(format) = opened.reader.get_ref().not_text() {
        return Err(ScoreError::NotCsv { format }.into());
    }
    let mut reader = opened.reader;
    reader.set_max_record_bytes(limits.max_field_bytes.saturating_mul(64));
    let mut record = csv::ByteRecord::new();
    let next = |reader: &mut csv_input::Records<_>, record: &mut csv::ByteRecord, row| {
        csv_input::next_record(reader, record).map_err(|e| match e {
            ReadError::Io(io) => ScoreError::Io(io),
            ReadError::Malformed(message) => ScoreError::Malformed { row, message },
        })
    };
    if !next(&mut reader, &mut record, 0)? {
        return Err(ScoreError::Empty.into());
    }
    if record.len() > limits.max_columns {
        return Err(ScoreError::TooManyColumns {
            columns: record.len(),
            limit: limits.max_columns,
        }
        .into());
    }
    reader.set_width(record.len());
    let header: Vec<String> = record
        .iter()
        .map(|f| {
            csv_input::decode_field(f)
                .chars()
                .filter(|c| !c.is_control() && *c != '\u{FEFF}')
                .collect()
        })
        .collect();
    if csv_input::looks_headerless(&csv_input::header_names(&record)) {
        return Err(ScoreError::NoHeader {
            found: header,
            example: format!("{ID},{CHURNED},{DATE}"),
        }
        .into());
    }
    let schema = schema();
    let mapping = mapping::map_to_schema_with(&schema, &header, manual)
        .map_err(|message| ScoreError::BadMapping { message })?;
    if !mapping.duplicates.is_empty() {
        return Err(ScoreError::DuplicateColumns {
            duplicates: mapping.duplicates.clone(),
            mapping: Box::new(mapping),
        }
        .into());
    }
    let id_at = mapping.id.as_ref().and_then(|m| m.column_index);
    let at = |name: &str| {
        mapping
            .features
            .iter()
            .find(|f| f.feature == name)
            .and_then(|f| f.column_index)
    };
    let (Some(id_at), Some(churned_at), Some(date_at)) = (id_at, at(CHURNED), at(DATE)) else {
        let mut mapping = mapping;
        if id_at.is_none() {
            // The id is optional for a model; an outcome without one matches nobody.
            mapping.missing.insert(
                0,
                crate::mapping::MissingFeature {
                    feature: ID.to_owned(),
                    suggestions: Vec::new(),
                    by_choice: manual.get(ID).is_some_and(Option::is_none),
                },
            );
        }
        return Err(OutcomeError::MissingColumns {
            mapping: Box::new(mapping),
            found: header,
        });
    };
    let column_name = |i: usize| header[i].clone();
    let mut report = ValidationReport {
        encoding: opened.encoding.label().to_string(),
        delimiter: opened.dialect.delimiter_name().to_string(),
        mapping: Some(mapping.clone()),
        columns: [(CHURNED, churned_at), (DATE, date_at)]
            .iter()
            .map(|&(feature, i)| ColumnStats {
                feature: feature.to_owned(),
                column: Some(column_name(i)),
                ..ColumnStats::default()
            })
            .collect(),
        rejected_rows_cap: limits.max_listed_rejections,
        ..ValidationReport::default()
    };
    let width = id_at.max(churned_at).max(date_at) + 1;
    let mut outcomes: Vec<Outcome> = Vec::new();
    // Customer id → (index in `outcomes`, its row).
    let mut seen: HashMap<String, (usize, u64)> = HashMap::new();
    let mut row = 0u64;
    while next(&mut reader, &mut record, row + 1)? {
        row += 1;
        if row > limits.max_rows {
            return Err(ScoreError::TooManyRows {
                limit: limits.max_rows,
            }
            .into());
        }
        report.rows_total = row;
        let field = |i: usize| record.get(i).map(csv_input::decode_field);
        let quote = reader.last().unclosed_quote.clone();
        if quote.is_none()
            && record
                .iter()
                .all(|f| values::is_missing(&csv_input::decode_field(f)))
        {
            report.rows_skipped_empty += 1;
            continue;
        }
        let id = field(id_at)
            .map(|s| s.trim().to_owned())
            .filter(|s| !values::is_missing(s) && quote.as_ref().is_none_or(|q| q.field != id_at));
        let issue = |column: Option<usize>, value: Option<String>, reason: String| RowIssue {
            row,
            customer_id: id.clone(),
            column: column.map(column_name),
            feature: None,
            value,
            reason,
            used_instead: None,
        };
        if let Some(q) = &quote {
            report.reject(&issue(
                Some(q.field).filter(|&f| f < header.len()),
                None,
                format!(
                    "{}; this row is rejected (close the quote, or remove it)",
                    q.describe()
                ),
            ));
            continue;
        }
        if record.len() > header.len() || record.len() < width {
            report.reject(&issue(
                None,
                None,
                format!(
                    "the row has {} fields but the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let Some(id) = id.clone() else {
            report.reject(&issue(
                Some(id_at),
                field(id_at).map(|s| s.into_owned()),
                "no customer id: an outcome is matched to earlier scores by the customer id".into(),
            ));
            continue;
        };
        let raw_churned = field(churned_at).unwrap_or_default().into_owned();
        let churned = if values::is_missing(&raw_churned) {
            report.columns[0].missing += 1;
            None
        } else {
            let read = values::parse_label(&raw_churned);
            if read.is_none() {
                report.columns[0].invalid += 1;
            }
            read
        };
        let Some(churned) = churned else {
            report.reject(&issue(
                Some(churned_at),
                Some(raw_churned),
                format!(
                    "expected whether the customer churned: {}",
                    values::LABEL_SPELLINGS
                ),
            ));
            continue;
        };
        let raw_date = field(date_at).unwrap_or_default().into_owned();
        let date = match dates::parse_date(&raw_date) {
            Ok(Some(d)) if d > today => {
                report.columns[1].invalid += 1;
                report.reject(&issue(
                    Some(date_at),
                    Some(raw_date),
                    format!(
                        "the date is after today ({}): an outcome is recorded once it happened",
                        dates::iso(today)
                    ),
                ));
                continue;
            }
            Ok(Some(d)) => d,
            Ok(None) => {
                report.columns[1].missing += 1;
                report.reject(&issue(
                    Some(date_at),
                    Some(raw_date),
                    format!(
                        "no date: {} (the day the customer churned, or was seen still a customer)",
                        dates::EXPECTED
                    ),
                ));
                continue;
            }
            Err(_) => {
                report.columns[1].invalid += 1;
                report.reject(&issue(
                    Some(date_at),
                    Some(raw_date),
                    dates::EXPECTED.into(),
                ));
                continue;
            }
        };
        let outcome = Outcome {
            customer_id: id.clone(),
            churned,
            date,
        };
        match seen.get(&id).copied() {
            Some((k, first_row)) => {
                report.duplicate_ids += 1;
                let keep_new = outcome.date >= outcomes[k].date;
                let (kept, dropped) = if keep_new {
                    (row, first_row)
                } else {
                    (first_row, row)
                };
                report.warn(&RowIssue {
                    row: dropped,
                    customer_id: Some(id.clone()),
                    column: None,
                    feature: None,
                    value: None,
                    reason: format!(
                        "customer {id} is also on row {kept}; the outcome with the later date (the later row on equal dates) is kept"
                    ),
                    used_instead: Some(format!("row {kept}")),
                });
                if keep_new {
                    outcomes[k] = outcome;
                    seen.insert(id, (k, row));
                }
            }
            None => {
                seen.insert(id, (outcomes.len(), row));
                outcomes.push(outcome);
            }
        }
    }
    let recorded_rows = report.rows_total - report.rows_rejected - report.rows_skipped_empty;
    report.close(recorded_rows);
    report.balance = report.balance.replace(" scored", " recorded");
    if outcomes.is_empty() {
        if report.rows_rejected > 0 {
            return Err(OutcomeError::NoUsableRows {
                report: Box::new(report),
            });
        }
        return Err(ScoreError::Empty.into());
    }
    Ok(OutcomeFile { outcomes, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    fn read_str(s: &str) -> Result<OutcomeFile, OutcomeError> {
        read(
            s.as_bytes(),
            &ManualMapping::new(),
            today(),
            &crate::InputLimits::default(),
        )
    }

    #[test]
    fn reads_the_three_columns_under_their_usual_names() {
        let f = read_str("customerID,Churn,churn_date\nA-1,Yes,2026-01-31\nB-2,no,2026-02-01\n")
            .unwrap();
        assert_eq!(
            f.outcomes,
            vec![
                Outcome {
                    customer_id: "A-1".into(),
                    churned: true,
                    date: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()
                },
                Outcome {
                    customer_id: "B-2".into(),
                    churned: false,
                    date: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
                },
            ]
        );
        assert_eq!(f.report.balance, "2 rows read = 2 recorded + 0 rejected");
        let m = f.report.mapping.unwrap();
        assert_eq!(m.id.unwrap().column.as_deref(), Some("customerID"));
        // Semicolons and a hand-chosen column work as for a scored file.
        let manual: ManualMapping = [(CHURNED.to_owned(), Some("Exited".to_owned()))].into();
        let f = read(
            "id;Exited;date\nX;1;2026-02-02\n".as_bytes(),
            &manual,
            today(),
            &crate::InputLimits::default(),
        )
        .unwrap();
        assert!(f.outcomes[0].churned);
        assert_eq!(f.report.delimiter, ";");
    }

    #[test]
    fn bad_rows_are_rejected_naming_row_column_and_value() {
        let f = read_str(
            "customer_id,churned,date\nA,maybe,2026-01-01\n,yes,2026-01-01\nC,yes,01/02/2026\nD,yes,2027-01-01\nE,no,\nF,yes,2026-01-05\n,,\n",
        )
        .unwrap();
        assert_eq!(f.outcomes.len(), 1);
        let r = &f.report;
        assert_eq!(r.rows_rejected, 5);
        assert_eq!(r.rows_skipped_empty, 1);
        assert_eq!(
            r.balance,
            "7 rows read = 1 recorded + 5 rejected + 1 skipped as empty"
        );
        let by_row = |n: u64| r.rejected_rows.iter().find(|i| i.row == n).unwrap();
        let a = by_row(1);
        assert_eq!(a.column.as_deref(), Some("churned"));
        assert_eq!(a.value.as_deref(), Some("maybe"));
        assert_eq!(a.customer_id.as_deref(), Some("A"));
        assert!(
            by_row(2).reason.contains("no customer id"),
            "{:?}",
            by_row(2)
        );
        assert_eq!(by_row(3).value.as_deref(), Some("01/02/2026"));
        assert!(by_row(4).reason.contains("after today"), "{:?}", by_row(4));
        assert!(by_row(5).reason.contains("no date"), "{:?}", by_row(5));
        assert_eq!(r.columns[0].invalid, 1);
    }

    #[test]
    fn a_customer_twice_keeps_the_later_date() {
        let f = read_str(
            "customer_id,churned,date\nA,no,2026-01-10\nA,yes,2026-02-10\nB,yes,2026-02-01\nB,no,2026-01-01\n",
        )
        .unwrap();
        assert_eq!(f.outcomes.len(), 2);
        assert!(f.outcomes[0].churned, "A churned later");
        assert!(
            f.outcomes[1].churned,
            "B's older 'no' does not replace its later churn"
        );
        assert_eq!(f.report.duplicate_ids, 2);
        assert_eq!(f.report.warnings_total, 2);
        assert_eq!(f.report.warnings[0].row, 1);
        assert_eq!(f.report.warnings[1].row, 4);
    }

    #[test]
    fn whole_file_problems_name_what_to_fix() {
        let e = read_str("customer_id,status\nA,yes\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no churned column"), "{e}");
        assert!(e.contains("no date column"), "{e}");
        assert!(e.contains("\"status\""), "{e}");
        let e = read_str("churned,date\nyes,2026-01-01\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no customer_id column"), "{e}");
        let e = read_str("customer_id,churned,date\nA,x,2026-01-01\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1 (customer A), column churned, value \"x\""),
            "{e}"
        );
        assert!(matches!(
            read_str(""),
            Err(OutcomeError::File(ScoreError::Empty))
        ));
        assert!(read_str("1,2,3\n4,5,6\n")
            .unwrap_err()
            .to_string()
            .contains("header"));
    }
}
