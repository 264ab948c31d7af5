//! A preview of how a file will be read, before it is scored: detected encoding and delimiter,
//! the column mapping with confidences, and the first rows parsed cell by cell. Backs
//! `POST /api/csv/preview-mapping`.

use std::io::Read;

use serde::Serialize;

use crate::artifact::Model;
use crate::intake::{check_columns, InputLimits, Intake};
use crate::mapping::{ColumnMapping, ManualMapping};
use crate::report::AliasUse;
use crate::schema::ColumnKind;
use crate::score::ScoreError;
use crate::values::{self, NumberFormat, NumberRead};

/// The start of a previewed cell's `problem` when its category is read through another
/// spelling ([`crate::aliases::LEVEL_SYNONYMS`]), followed by the level.
const ALIAS_NOTE: &str = "another spelling of a category, read as";

/// Most rows a preview parses, whatever is asked.
pub const MAX_PREVIEW_ROWS: usize = 100;

/// What one cell will be read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Read as `parsed`.
    Ok,
    /// A missing value (blank, NA, N/A, null, -): scored as missing.
    Missing,
    /// A category the model has not seen: scored as missing, with a warning.
    Unseen,
    /// Cannot be read: the row would be rejected.
    Invalid,
    /// The row has no field for this column, or the feature has no column.
    Absent,
}

/// One model input's cell in a previewed row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreviewCell {
    /// The model input's name.
    pub feature: String,
    /// The file column it is read from.
    pub column: Option<String>,
    /// The cell's text as in the file.
    pub raw: Option<String>,
    /// The value as the model will see it: a number (after unit conversion), a boolean, or
    /// the category level's model spelling.
    pub parsed: Option<serde_json::Value>,
    /// How the cell reads.
    pub status: CellStatus,
    /// What is wrong or expected, for `invalid`, `unseen` and `absent` cells.
    pub problem: Option<String>,
}

/// One previewed data row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreviewRow {
    /// Data record number (1 = first record after the header).
    pub row: u64,
    /// The id column's text, as given.
    pub customer_id: Option<String>,
    /// Why scoring would reject the row, in the job's own words (the same reader and checks:
    /// [`Intake::next_row`]); `None` when it would be scored, or when the file's columns do
    /// not map (the preview's `problem` says so once).
    pub problem: Option<String>,
    /// The job's remarks on the row's cells (substituted, converted or flagged values), as
    /// the validation report will list them.
    pub warnings: Vec<crate::score::RowIssue>,
    /// One cell per model feature, in schema order.
    pub cells: Vec<PreviewCell>,
}

/// What [`preview`] returns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preview {
    /// The detected encoding, e.g. `"UTF-8"`, `"UTF-16LE"`, `"windows-1252"`.
    pub encoding: String,
    /// The detected delimiter: `","`, `";"`, `"tab"` or `"|"`.
    pub delimiter: String,
    /// Whether numbers are read with a decimal comma.
    pub decimal_comma: bool,
    /// The file's column names, as written (spaces kept).
    pub header: Vec<String>,
    /// How they map onto the model (missing and duplicate features included, never an error).
    pub mapping: ColumnMapping,
    /// True when the file can be scored as mapped (inputs without a column, up to
    /// [`crate::intake::max_absent`] of them, are then scored as missing).
    pub ready: bool,
    /// Why the file cannot be scored as mapped, in the scorer's words; `None` when `ready`.
    pub problem: Option<String>,
    /// A column chosen by hand ([`ManualMapping`]) none of whose previewed values its input
    /// can read (ids or words chosen for a number, numbers for a category): every row would be
    /// rejected or scored as missing. Names the input, the column and a value; `ready` is
    /// false. The HTTP preview also puts here every other refusal of the choices (the
    /// upload's 422 sentences).
    pub mapping_problem: Option<String>,
    /// The first data rows parsed.
    pub rows: Vec<PreviewRow>,
    /// Records among the previewed ones skipped as empty (`,,,,`, or nothing but missing
    /// markers), as scoring skips them: not customers, so not shown as rows.
    pub rows_skipped_empty: u64,
    /// The category aliases the previewed rows use (`Fiber` read as `Fiber optic`), with the
    /// rows that use them, as the validation report of scoring lists them.
    pub category_aliases: Vec<AliasUse>,
}

/// Reads the start of `input` as [`crate::score_csv`] would and reports how it reads: encoding,
/// delimiter, mapping and the first `rows` data rows (at most [`MAX_PREVIEW_ROWS`]) parsed cell
/// by cell. Reads only as much of the input as those rows need.
///
/// # Errors
/// Whole-file problems found before the rows: [`ScoreError::NotCsv`], [`ScoreError::Empty`], [`ScoreError::NoHeader`],
/// [`ScoreError::TooManyColumns`], [`ScoreError::FieldTooLong`], [`ScoreError::Malformed`],
/// [`ScoreError::Io`]. Missing or duplicate columns are not errors here but part of the mapping.
pub fn preview(model: &Model, input: impl Read, rows: usize) -> Result<Preview, ScoreError> {
    preview_with(model, input, rows, &InputLimits::default())
}

/// [`preview`] under the given limits (use the scoring limits, so that a file that previews
/// also passes the column and field-length limits when scored).
///
/// # Errors
/// As [`preview`].
pub fn preview_with(
    model: &Model,
    input: impl Read,
    rows: usize,
    limits: &InputLimits,
) -> Result<Preview, ScoreError> {
    preview_mapped(model, input, rows, limits, &ManualMapping::new())
}

/// [`preview_with`] with a person's column choices applied first ([`ManualMapping`]).
///
/// # Errors
/// As [`preview`], and [`ScoreError::BadMapping`] for a choice that cannot be applied.
pub fn preview_mapped(
    model: &Model,
    input: impl Read,
    rows: usize,
    limits: &InputLimits,
    manual: &ManualMapping,
) -> Result<Preview, ScoreError> {
    // The rows are read by the job's own reader and checks ([`Intake::next_row`]), so the
    // preview says of each row what scoring will: skipped, rejected (and why), or scored with
    // which remarks. The first bytes are kept to find the reference date of a file with
    // dates, as scoring does in a first pass (here over those bytes only).
    let mut input = input;
    let mut head = Vec::new();
    (&mut input)
        .take(crate::plan::HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(ScoreError::Io)?;
    let mut intake = Intake::open_with(model, head.as_slice().chain(input), limits, manual)?;
    let maps = intake.check_mapping().is_ok();
    if maps && intake.reads_dates() {
        let mut first = Intake::open_with(model, head.as_slice(), limits, manual)?;
        let reference = first.latest_date().unwrap_or(None);
        intake.set_reference_date(reference);
    }
    let numbers = intake.dialect().numbers;
    let mut features = vec![0.0; model.encoder().n_features()];
    let mut out = Vec::new();
    let mut out_fields: Vec<Vec<String>> = Vec::new();
    while out.len() < rows.min(MAX_PREVIEW_ROWS) {
        let Some(read) = intake.next_row(&mut features)? else {
            break;
        };
        let row = read.row;
        let fields = intake.last_fields();
        out_fields.push(fields.clone());
        let mapping = intake.mapping();
        let problem = read
            .rejected
            .as_ref()
            .filter(|_| maps)
            .map(|i| format!("rejected: {}", i.reason));
        let customer_id = read.customer_id.clone();
        let cells = mapping
            .features
            .iter()
            .zip(&model.schema().columns)
            .map(|(m, col)| {
                let raw = m.column_index.and_then(|i| fields.get(i).cloned());
                let (status, parsed, problem) = match &raw {
                    None if m.column_index.is_none() => (
                        CellStatus::Absent,
                        None,
                        Some(
                            "no column of the file maps to this input: scored as missing, flagged"
                                .to_string(),
                        ),
                    ),
                    None => (
                        CellStatus::Absent,
                        None,
                        Some("the row ends before this column".to_string()),
                    ),
                    Some(raw) if m.from_date => interpret(&ColumnKind::Date, raw, numbers, m.scale),
                    Some(raw) => interpret(&col.kind, raw, numbers, m.scale),
                };
                PreviewCell {
                    feature: m.feature.clone(),
                    column: m.column.clone(),
                    raw,
                    parsed,
                    status,
                    problem,
                }
            })
            .collect();
        out.push(PreviewRow {
            row,
            customer_id,
            problem,
            warnings: read.warnings,
            cells,
        });
    }
    let mut aliases = crate::report::ValidationReport::default();
    for r in &out {
        for cell in &r.cells {
            let (Some(raw), Some(column), Some(serde_json::Value::String(level))) =
                (&cell.raw, &cell.column, &cell.parsed)
            else {
                continue;
            };
            if cell
                .problem
                .as_deref()
                .is_some_and(|p| p.starts_with(ALIAS_NOTE))
            {
                aliases.alias_used(&cell.feature, column, raw, level, r.row);
            }
        }
    }
    let mut mapping = intake.mapping().clone();
    plausible_suggestions(model, &mut mapping, intake.header(), &out_fields, numbers);
    // The refusal's sentence names the suggestions the preview shows (one list, filtered by
    // the values above), never the name-only list the intake made before reading a row.
    let check = check_columns(&mapping, intake.header(), model, limits);
    let mapping_problem = unreadable_choice(intake.mapping(), &out);
    Ok(Preview {
        encoding: intake.encoding().label().to_string(),
        delimiter: intake.dialect().delimiter_name().to_string(),
        decimal_comma: numbers.decimal_comma,
        header: intake.header().to_vec(),
        mapping,
        ready: check.is_ok() && mapping_problem.is_none(),
        problem: check.err().map(|e| e.to_string()),
        mapping_problem,
        rows: out,
        rows_skipped_empty: intake.validation().rows_skipped_empty,
        category_aliases: aliases.category_aliases,
    })
}

impl Preview {
    /// Why a file whose start previewed as `self` cannot be scored, in the scorer's words, or
    /// `None` when it can: its columns do not map ([`Preview::problem`]), or — when the preview
    /// read the `whole` file — it has a header and no customer rows. What an upload is refused
    /// with before it is queued, so that it never fails later for a reason known now.
    pub fn refusal(&self, whole: bool) -> Option<String> {
        if let Some(p) = self.problem.as_ref().or(self.mapping_problem.as_ref()) {
            return Some(p.clone());
        }
        (whole && self.rows.is_empty()).then(|| {
            ScoreError::NoUsableRows {
                rows_total: 0,
                first_issues: Vec::new(),
                validation: Box::default(),
            }
            .to_string()
        })
    }
}

/// The [`Preview::mapping_problem`] of `mapping` over the previewed `rows`: the first input
/// chosen by hand whose previewed cells hold values and none of them reads.
fn unreadable_choice(mapping: &ColumnMapping, rows: &[PreviewRow]) -> Option<String> {
    mapping
        .features
        .iter()
        .enumerate()
        .filter(|(_, m)| m.method == Some(crate::mapping::MatchMethod::Manual))
        .find_map(|(k, m)| {
            let cells: Vec<&PreviewCell> = rows
                .iter()
                .filter_map(|r| r.cells.get(k))
                .filter(|c| matches!(c.status, CellStatus::Ok | CellStatus::Invalid | CellStatus::Unseen))
                .collect();
            let first = cells.first()?;
            cells.iter().all(|c| c.status != CellStatus::Ok).then(|| {
                format!(
                    "mapping: {} is mapped to {:?}, but none of its first {} value(s) can be read as {} (e.g. {:?}: {}); choose another column for {}",
                    m.feature,
                    m.column.as_deref().unwrap_or_default(),
                    cells.len(),
                    m.kind,
                    first.raw.as_deref().unwrap_or_default(),
                    first.problem.as_deref().unwrap_or("not readable"),
                    m.feature
                )
            })
        })
}

/// Drops suggested columns whose previewed values the missing input could not read (a column
/// of words offered for a number, of numbers for a yes/no), so a person is only offered
/// plausible stand-ins. A column without a value in the preview keeps its suggestion.
fn plausible_suggestions(
    model: &Model,
    mapping: &mut ColumnMapping,
    header: &[String],
    rows: &[Vec<String>],
    numbers: NumberFormat,
) {
    let schema = model.schema();
    for m in &mut mapping.missing {
        let Some(col) = schema.columns.iter().find(|c| c.name == m.feature) else {
            continue;
        };
        m.suggestions.retain(|s| {
            let Some(at) = header.iter().position(|h| *h == s.column) else {
                return true;
            };
            let statuses: Vec<CellStatus> = rows
                .iter()
                .filter_map(|r| r.get(at))
                .filter(|raw| !values::is_missing(raw))
                .map(|raw| interpret(&col.kind, raw, numbers, 1.0).0)
                .collect();
            statuses.is_empty()
                || (statuses.iter().all(|s| *s != CellStatus::Invalid)
                    && statuses.contains(&CellStatus::Ok))
        });
    }
}

/// How a cell of a column of `kind` reads, by the rules the encoder applies when scoring
/// ([`crate::encode`]): status, parsed value and problem.
fn interpret(
    kind: &ColumnKind,
    raw: &str,
    numbers: NumberFormat,
    scale: f64,
) -> (CellStatus, Option<serde_json::Value>, Option<String>) {
    if values::is_missing(raw) {
        return (CellStatus::Missing, None, None);
    }
    let invalid = |why: &str| (CellStatus::Invalid, None, Some(why.to_string()));
    match kind {
        ColumnKind::Numeric => match values::read_number(raw, numbers) {
            Ok(NumberRead::Plain(x)) if (x * scale).is_finite() => (
                CellStatus::Ok,
                serde_json::Number::from_f64(x * scale).map(serde_json::Value::Number),
                None,
            ),
            Ok(NumberRead::Respelled { value, how }) if (value * scale).is_finite() => (
                CellStatus::Ok,
                serde_json::Number::from_f64(value * scale).map(serde_json::Value::Number),
                Some(format!(
                    "read as the number {} ({how})",
                    crate::explain::number(value)
                )),
            ),
            Ok(NumberRead::Plain(_) | NumberRead::Respelled { .. }) => {
                invalid(values::NumberError::Overflow.expected())
            }
            Ok(NumberRead::Missing) => (CellStatus::Missing, None, None),
            Ok(NumberRead::Ambiguous(a)) => (
                CellStatus::Missing,
                None,
                Some(format!("{}; scored as missing", a.reason())),
            ),
            Err(e) => invalid(e.expected()),
        },
        ColumnKind::Date => match crate::dates::parse_date(raw) {
            Ok(Some(d)) => (
                CellStatus::Ok,
                Some(serde_json::Value::String(crate::dates::iso(d))),
                None,
            ),
            Ok(None) => (CellStatus::Missing, None, None),
            Err(_) => invalid(crate::dates::EXPECTED),
        },
        ColumnKind::Boolean => match values::parse_bool(raw) {
            Some(b) => (CellStatus::Ok, Some(serde_json::Value::Bool(b)), None),
            None => invalid(crate::encode::CellError::Boolean.expected()),
        },
        ColumnKind::Categorical { levels } => {
            let key = values::level_key(raw);
            let level = levels
                .iter()
                .find(|l| l.as_str() == raw || values::level_key(l) == key)
                .map(String::as_str);
            let alias = level
                .is_none()
                .then(|| crate::aliases::level_synonym(raw, levels))
                .flatten();
            match level.or(alias) {
                Some(l) => (
                    CellStatus::Ok,
                    Some(serde_json::Value::String(l.to_string())),
                    alias.map(|l| format!("{ALIAS_NOTE} {l:?}")),
                ),
                None => (
                    CellStatus::Unseen,
                    None,
                    Some(format!(
                        "not a category the model knows ({}); it will be scored as missing",
                        levels.join(", ")
                    )),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_a_saas_style_file() {
        let model = Model::embedded_default();
        let input = "user_id;gender;SeniorCitizen;Partner;Dependents;account_age_days;PhoneService;MultipleLines;InternetService;OnlineSecurity;OnlineBackup;DeviceProtection;TechSupport;StreamingTV;StreamingMovies;plan_type;PaperlessBilling;PaymentMethod;mrr;ltv\n\
            0042;Female;0;Y;n;304,4;Yes;No;Fiber optic;No;No;No;No;Yes;Yes;month to month;Yes;Electronic check;85,50;abc\n\
            0043;Female;0;Y;n;30;Yes;No;Cable;No;No;No;No;Yes;Yes;Month-to-month;Yes;Electronic check;85,50\n";
        let p = preview(model, input.as_bytes(), 10).unwrap();
        assert_eq!((p.encoding.as_str(), p.delimiter.as_str()), ("UTF-8", ";"));
        assert!(p.decimal_comma && p.ready, "{:?}", p.mapping);
        assert_eq!(p.rows.len(), 2);
        let r = &p.rows[0];
        assert_eq!(r.customer_id.as_deref(), Some("0042"));
        let cell =
            |r: &PreviewRow, f: &str| r.cells.iter().find(|c| c.feature == f).cloned().unwrap();
        let tenure = cell(r, "tenure");
        assert_eq!(tenure.status, CellStatus::Ok);
        let months = tenure.parsed.unwrap().as_f64().unwrap();
        assert!((months - 10.0).abs() < 0.01, "{months}");
        assert_eq!(cell(r, "Contract").parsed.unwrap(), "Month-to-month");
        assert_eq!(cell(r, "Partner").parsed.unwrap(), true);
        assert_eq!(cell(r, "MonthlyCharges").parsed.unwrap(), 85.5);
        assert_eq!(cell(r, "TotalCharges").status, CellStatus::Invalid);
        let r = &p.rows[1];
        assert_eq!(cell(r, "InternetService").status, CellStatus::Unseen);
        assert_eq!(cell(r, "TotalCharges").status, CellStatus::Absent);
    }

    #[test]
    fn missing_columns_are_shown_not_failed() {
        let p = preview(Model::embedded_default(), &b"foo,bar\n1,2\n"[..], 5).unwrap();
        assert!(!p.ready);
        assert_eq!(p.mapping.missing.len(), 19);
        assert_eq!(p.rows[0].cells[0].status, CellStatus::Absent);
    }
}
