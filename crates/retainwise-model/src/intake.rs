//! Reading a customer file for scoring, row by row: decoding, dialect, header, column mapping,
//! limits, and each row's cells into the model's feature vector.
//!
//! This is the input side of [`crate::score::score_csv`] (and of [`crate::preview::preview`]):
//! it decides whether a row can be scored and fills its features; what is computed and written
//! for a scorable row is the scorer's business.
//!
//! Row numbers are data-record numbers: 1 is the first record after the header, whatever the
//! line endings and however many lines a quoted field spans.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Read;

use crate::aliases;
use crate::artifact::Model;
use crate::card::{FeatureRange, OutOfRange};
use crate::csv_input::{self, ReadError, Records};
use crate::decode::{DecodeReader, Encoding};
use crate::dialect::Dialect;
use crate::encode::{CellNote, Encoder};
use crate::mapping::{self, ColumnMapping, ManualMapping};
use crate::quality::{Flag, FlagKind};
use crate::report::{ColumnStats, ValidationReport};
use crate::schema::{ColumnKind, FeatureSchema};
use crate::score::{RowIssue, ScoreError};
use crate::values::{self, NumberError, NumberRead};

/// Limits on what a file may hold; exceeding one is a [`ScoreError`] naming the limit. They
/// bound the work and memory one upload can cause (the file size itself is limited by the
/// caller, e.g. the HTTP layer).
#[derive(Clone, Debug, PartialEq)]
pub struct InputLimits {
    /// Most columns in the header (default 1,000). [`ScoreError::TooManyColumns`].
    pub max_columns: usize,
    /// Most bytes in one field the model reads (an input's or the id's), after decoding to
    /// UTF-8 (default 64 KiB). A longer such field is almost always a quote that was never
    /// closed, which swallows the rows after it, so it fails the file
    /// ([`ScoreError::FieldTooLong`]) instead of silently losing those rows. A longer field in
    /// a column the model does not read (a pasted note) is accepted: it is not kept; the
    /// record as a whole stays bounded at 64 × this ([`csv_input::Records::set_max_record_bytes`]).
    pub max_field_bytes: usize,
    /// Most data rows (default 5,000,000). [`ScoreError::TooManyRows`].
    pub max_rows: u64,
    /// Most rejected rows listed in the [`ValidationReport`] (default 1,000; all are counted).
    pub max_listed_rejections: usize,
    /// Largest share of a row's features that may be missing for it to be scored (default 0.5).
    /// A row mostly blank is a totals row, a notes row or a broken export, and its score would
    /// say nothing about a customer; it is rejected naming how many values are missing.
    ///
    /// The same share bounds the model inputs a *file* may lack: up to
    /// `floor(max_missing_share × features)` absent columns are scored as missing in every row
    /// (flagged, [`crate::quality::FlagKind::Absent`]); more, and the file is refused
    /// ([`ScoreError::MissingColumns`]), since every row would be rejected by the rule above.
    pub max_missing_share: f64,
    /// Distinct customer ids remembered to find repeated ones (default 1,000,000; 64-bit
    /// hashes with their first row: at most a hash table of 2²¹ buckets of 17 bytes, about
    /// 36 MB). Ids after the first this many are not checked, and the report says so
    /// ([`ValidationReport::duplicate_ids_unchecked`]).
    pub max_tracked_ids: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_columns: 1000,
            max_field_bytes: 64 * 1024,
            max_rows: 5_000_000,
            max_listed_rejections: 1000,
            max_missing_share: 0.5,
            max_tracked_ids: 1_000_000,
        }
    }
}

/// One data row read by [`Intake::next_row`].
#[derive(Clone, Debug, PartialEq)]
pub struct RowRead {
    /// Data record number (1 = first record after the header).
    pub row: u64,
    /// The id column's text exactly as given (leading zeros and spaces kept, possibly empty),
    /// when the model has an id column that the file maps and the row reaches it.
    pub customer_id: Option<String>,
    /// Why the row cannot be scored; `None` when its features were written.
    pub rejected: Option<RowIssue>,
    /// Remarks on a scored row (e.g. an unseen category scored as missing). Empty, and not
    /// allocated, for almost every row.
    pub warnings: Vec<RowIssue>,
    /// The row's flagged values, in schema order (the same cells as `warnings`); they make
    /// its `data_quality` ([`crate::quality`]). Empty for a clean row.
    pub flags: Vec<Flag>,
}

/// A customer file opened for scoring: header read, columns mapped.
pub struct Intake<'m, R> {
    model: &'m Model,
    reader: Records<DecodeReader<R>>,
    record: csv::ByteRecord,
    header: Vec<String>,
    mapping: ColumnMapping,
    /// File column (`None`: absent, read as missing) and numeric scale of each schema feature
    /// (empty unless the mapping passes [`check_columns`]).
    plan: Vec<(Option<usize>, f64)>,
    /// The repeated-id check; `None` while reading a piece of a file ([`Intake::read_piece`]),
    /// whose repeats across pieces only the merge can find.
    repeats: Option<RepeatCheck>,
    /// The last row to read, when reading a piece of a file.
    end_row: Option<u64>,
    id_at: Option<usize>,
    /// The file width a row needs for every feature to be present.
    needed_width: usize,
    encoding: Encoding,
    dialect: Dialect,
    /// The width most rows have ([`csv_input::modal_width`]), for reading a piece alike.
    rows_width: Option<usize>,
    limits: InputLimits,
    rows: u64,
    /// Set by [`Intake::latest_date`] ([`Intake::reference_source`]).
    reference_source: Option<String>,
    validation: ValidationReport,
    /// The model's encoder with this file's reference date, for a model with date columns
    /// ([`Intake::set_reference_date`]); `None`: the model's own encoder.
    dated_encoder: Option<Encoder>,
    /// Per schema column: its file column holds dates read as the time before the reference
    /// date ([`crate::mapping::FeatureMatch::from_date`]).
    from_date: Vec<bool>,
    /// The file's reference date ([`Intake::set_reference_date`]).
    reference: Option<chrono::NaiveDate>,
    /// Per schema column: its slot and, for a numeric or date column whose training range the
    /// model card records, that range (values far outside it are flagged).
    ranges: Vec<(usize, Option<FeatureRange>)>,
    /// The file column holding each row's observation date and its name, when the model was
    /// trained with one and the file has it ([`crate::card::ModelCard::observation_date`]).
    observed_at: Option<(usize, String)>,
    /// The last row's observation date, when read from `observed_at`.
    observed: Option<chrono::NaiveDate>,
}

impl<'m, R: Read> Intake<'m, R> {
    /// Opens `input`: detects encoding and dialect, reads the header and maps it onto `model`.
    /// A mapping with missing or duplicate columns is not an error here (see
    /// [`Intake::check_mapping`]), so that a preview can show it.
    ///
    /// # Errors
    /// [`ScoreError::NotCsv`], [`ScoreError::Empty`], [`ScoreError::NoHeader`],
    /// [`ScoreError::TooManyColumns`],
    /// [`ScoreError::FieldTooLong`] (a header name), [`ScoreError::Malformed`],
    /// [`ScoreError::Io`].
    pub fn open(model: &'m Model, input: R, limits: &InputLimits) -> Result<Self, ScoreError> {
        Self::open_with(model, input, limits, &ManualMapping::new())
    }

    /// [`Intake::open`] with a person's column choices applied before the automatic mapping
    /// ([`crate::mapping::ManualMapping`]).
    ///
    /// # Errors
    /// As [`Intake::open`], and [`ScoreError::BadMapping`] for a choice that names an input
    /// or a header that does not exist.
    pub fn open_with(
        model: &'m Model,
        input: R,
        limits: &InputLimits,
        manual: &ManualMapping,
    ) -> Result<Self, ScoreError> {
        let opened = csv_input::open(input)?;
        if let Some(format) = opened.reader.get_ref().not_text() {
            return Err(ScoreError::NotCsv { format });
        }
        let mut reader = opened.reader;
        let mut record = csv::ByteRecord::new();
        reader.set_max_record_bytes(limits.max_field_bytes.saturating_mul(64));
        if !read(&mut reader, &mut record, 0)? {
            return Err(ScoreError::Empty);
        }
        if let Some(q) = &reader.last().unclosed_quote {
            return Err(ScoreError::Malformed {
                row: 0,
                message: q.describe(),
            });
        }
        reader.set_width(record.len());
        if record.len() > limits.max_columns {
            return Err(ScoreError::TooManyColumns {
                columns: record.len(),
                limit: limits.max_columns,
            });
        }
        if let Some((i, f)) = record
            .iter()
            .enumerate()
            .find(|(_, f)| f.len() > limits.max_field_bytes)
        {
            return Err(ScoreError::FieldTooLong {
                row: 0,
                column: format!("column {}", i + 1),
                bytes: f.len(),
                limit: limits.max_field_bytes,
            });
        }
        // Names as written (spaces kept), so that the mapping and the report show each header
        // as the file has it and a trimmed match is not called exact.
        let header = written_names(&record);
        let mapping = mapping::map_columns(model, &header);
        let trimmed = csv_input::header_names(&record);
        if csv_input::looks_headerless(&trimmed)
            || looks_like_data(model.schema(), &trimmed, &mapping)
        {
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
        let mapping = if manual.is_empty() {
            mapping
        } else {
            mapping::map_columns_with(model, &header, manual)
                .map_err(|message| ScoreError::BadMapping { message })?
        };
        let plan: Vec<(Option<usize>, f64)> =
            if check_columns(&mapping, &header, model, limits).is_ok() {
                mapping
                    .features
                    .iter()
                    .map(|f| (f.column_index, f.scale))
                    .collect()
            } else {
                Vec::new()
            };
        let id_at = mapping.id.as_ref().and_then(|m| m.column_index);
        let from_date = mapping.features.iter().map(|f| f.from_date).collect();
        let needed_width = plan
            .iter()
            .filter_map(|&(at, _)| at.map(|a| a + 1))
            .max()
            .unwrap_or(0);
        let validation = ValidationReport {
            encoding: opened.encoding.label().to_string(),
            delimiter: opened.dialect.delimiter_name().to_string(),
            decimal_comma: opened.dialect.numbers.decimal_comma,
            mapping: Some(mapping.clone()),
            columns: mapping
                .features
                .iter()
                .map(|f| ColumnStats {
                    feature: f.feature.clone(),
                    column: f.column.clone(),
                    ..ColumnStats::default()
                })
                .collect(),
            rejected_rows_cap: limits.max_listed_rejections,
            absent_inputs: mapping.missing.iter().map(|m| m.feature.clone()).collect(),
            ..ValidationReport::default()
        };
        let observed_at = observation_column(model, &header);
        Ok(Intake {
            model,
            reader,
            record,
            header,
            mapping,
            plan,
            repeats: Some(RepeatCheck::new(limits.max_tracked_ids)),
            end_row: None,
            id_at,
            needed_width,
            encoding: opened.encoding,
            dialect: opened.dialect,
            rows_width: opened.rows_width,
            limits: limits.clone(),
            rows: 0,
            reference_source: None,
            validation,
            dated_encoder: None,
            from_date,
            reference: None,
            ranges: training_ranges(model),
            observed_at,
            observed: None,
        })
    }

    /// Reads the rows' date columns as whole days before `reference` (the file's reference
    /// date, [`crate::dates`]). Needed before [`Intake::next_row`] when the model has date
    /// columns; without it a row with a date is rejected saying that none was given.
    pub fn set_reference_date(&mut self, reference: Option<chrono::NaiveDate>) {
        self.reference = reference;
        self.dated_encoder = self
            .model
            .schema()
            .has_dates()
            .then(|| self.model.encoder().clone().with_reference_date(reference));
    }

    /// True when rows hold dates to count back from a reference date: the model has date
    /// columns, or the mapping reads a date column for a duration input (`signup_date` for
    /// tenure).
    pub fn reads_dates(&self) -> bool {
        self.model.schema().has_dates() || self.from_date.iter().any(|&d| d)
    }

    /// Reads every remaining record and returns the file's reference date: the latest date in
    /// any of the model's date columns that is not after today and not standing apart from the
    /// rest ([`crate::dates::latest_not_apart`]: one mistyped date must not shift every
    /// customer's figures), today if all are after it
    /// ([`crate::dates::reference_from`]); `None` when there is no date. Cells that are not
    /// dates are skipped here (scoring reports them). Call on a freshly opened file whose
    /// mapping is complete ([`Intake::check_mapping`]); rows are counted and limited as when
    /// scoring.
    ///
    /// # Errors
    /// As [`Intake::next_row`].
    pub fn latest_date(&mut self) -> Result<Option<chrono::NaiveDate>, ScoreError> {
        // Each row counts from its own observation date: the file needs none.
        if self.observed_at.is_some() {
            self.reference_source = None;
            return Ok(None);
        }
        self.latest_date_while(&mut |_, _, _| {})
    }

    /// [`Intake::latest_date`], also telling `each(row, start, line)` of every record read, as
    /// [`Intake::next_start`] would: one pass both finds a file's reference date and cuts it
    /// ([`crate::chunks::split_finding_date`]). A file whose rows carry their own observation
    /// date is read to its end all the same, and has none.
    ///
    /// # Errors
    /// As [`Intake::next_row`].
    pub fn latest_date_while(
        &mut self,
        each: &mut dyn FnMut(u64, u64, u64),
    ) -> Result<Option<chrono::NaiveDate>, ScoreError> {
        self.reference_source = None;
        let at: Vec<usize> = if self.observed_at.is_some() {
            Vec::new()
        } else {
            self.model
                .schema()
                .columns
                .iter()
                .zip(&self.plan)
                .zip(&self.from_date)
                .filter(|((c, _), &from_date)| c.kind == ColumnKind::Date || from_date)
                .filter_map(|((_, &(at, _)), _)| at)
                .collect()
        };
        let today = crate::dates::today();
        // How many cells hold each date not after today; `any`: a date was seen at all.
        let mut seen = std::collections::BTreeMap::new();
        // Where each date was first seen: (data row, column index).
        let mut first = std::collections::BTreeMap::new();
        let mut any = false;
        while self.read_record()? {
            let last = self.reader.last();
            each(self.rows, last.start, last.line);
            for &i in &at {
                if let Some(field) = self.record.get(i) {
                    let raw = csv_input::decode_field(field);
                    if let Ok(Some(d)) = crate::dates::parse_date(&raw) {
                        any = true;
                        if d <= today {
                            *seen.entry(d).or_insert(0u64) += 1;
                            first.entry(d).or_insert((self.rows, i));
                        }
                    }
                }
            }
        }
        let first: std::collections::BTreeMap<chrono::NaiveDate, (u64, String)> = first
            .into_iter()
            .map(|(d, (row, i))| {
                let column = self.header.get(i).cloned().unwrap_or_default();
                (d, (row, column))
            })
            .collect();
        let (reference, source) = crate::dates::reference_with_source(&seen, &first, today);
        self.reference_source = any.then_some(source);
        Ok(any.then_some(reference))
    }

    /// Where [`Intake::latest_date`]'s date came from, in words: its data row and column, and
    /// the dates passed over as standing apart (with theirs); `None` before it ran or when the
    /// file holds no date.
    pub fn reference_source(&self) -> Option<&str> {
        self.reference_source.as_deref()
    }

    /// The file's column names as written (decoded, control characters and a byte-order mark
    /// removed, spaces kept).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// How the header maps onto the model.
    pub fn mapping(&self) -> &ColumnMapping {
        &self.mapping
    }

    /// The detected encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The detected dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `Ok` when the file can be scored as mapped: see [`check_columns`].
    ///
    /// # Errors
    /// As [`check_columns`].
    pub fn check_mapping(&self) -> Result<(), ScoreError> {
        check_columns(&self.mapping, &self.header, self.model, &self.limits)
    }

    /// Reads the next record into the internal buffer; `Ok(false)` at the end. Counts the row
    /// and enforces [`InputLimits::max_rows`] and [`InputLimits::max_field_bytes`].
    fn read_record(&mut self) -> Result<bool, ScoreError> {
        if self.end_row.is_some_and(|end| self.rows >= end) {
            return Ok(false);
        }
        let row = self.rows + 1;
        if !read(&mut self.reader, &mut self.record, row)? {
            return Ok(false);
        }
        if row > self.limits.max_rows {
            return Err(ScoreError::TooManyRows {
                limit: self.limits.max_rows,
            });
        }
        self.rows = row;
        self.validation.rows_total = row;
        // Only a value the model reads is bounded here: a long note in a column it ignores is
        // never decoded nor kept (the record's own bound, 64 × this limit, still holds).
        let reads = |i: usize| {
            Some(i) == self.id_at
                || self.plan.iter().any(|&(at, _)| at == Some(i))
                || self.observed_at.as_ref().is_some_and(|(at, _)| *at == i)
        };
        if let Some((i, f)) = self
            .record
            .iter()
            .enumerate()
            .find(|(i, f)| f.len() > self.limits.max_field_bytes && reads(*i))
        {
            return Err(ScoreError::FieldTooLong {
                row,
                column: self
                    .header
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("column {}", i + 1)),
                bytes: f.len(),
                limit: self.limits.max_field_bytes,
            });
        }
        Ok(true)
    }

    /// The next record's row number and raw decoded fields, for previews; `None` at the end.
    ///
    /// # Errors
    /// As [`Intake::next_row`].
    pub fn next_raw(&mut self) -> Result<Option<(u64, Vec<String>)>, ScoreError> {
        if !self.read_record()? {
            return Ok(None);
        }
        let fields = self
            .record
            .iter()
            .map(|f| csv_input::decode_field(f).into_owned())
            .collect();
        Ok(Some((self.rows, fields)))
    }

    /// The decoded fields of the record [`Intake::next_row`] last read, as it read them (empty
    /// fields past the header's dropped), for a preview showing the row the job would read.
    /// A field longer than [`InputLimits::max_field_bytes`] (a note in a column the model
    /// does not read) is cut to that many bytes, an ellipsis marking the cut.
    pub fn last_fields(&self) -> Vec<String> {
        let most = self.limits.max_field_bytes;
        self.record
            .iter()
            .map(|f| {
                if f.len() > most {
                    let mut text = String::from_utf8_lossy(&f[..most]).into_owned();
                    text.push('…');
                    text
                } else {
                    csv_input::decode_field(f).into_owned()
                }
            })
            .collect()
    }

    /// Reads the next data row into `features` (length [`crate::encode::Encoder::n_features`]);
    /// `None` at the end of the file. A row that cannot be scored comes back with `rejected`
    /// set (and is recorded in the validation report); its `features` are then meaningless.
    ///
    /// Call only after [`Intake::check_mapping`] succeeded; otherwise every row is rejected.
    ///
    /// A record whose fields are all empty or missing markers ([`values::is_missing`]: `NA`,
    /// `#N/A`, `-`) is skipped (counted in
    /// [`ValidationReport::rows_skipped_empty`]), so the row numbers of the rows returned may
    /// jump.
    ///
    /// # Errors
    /// Whole-file problems only: [`ScoreError::Malformed`], [`ScoreError::TooManyRows`],
    /// [`ScoreError::FieldTooLong`], [`ScoreError::Io`].
    pub fn next_row(&mut self, features: &mut [f64]) -> Result<Option<RowRead>, ScoreError> {
        loop {
            if !self.read_record()? {
                return Ok(None);
            }
            // A record of empty fields (`,,,,`: the rows Excel leaves behind after a delete)
            // or of nothing but missing markers and error values (`#N/A,#N/A,-`: a formula
            // copied below the data) holds no customer: skipped like a blank line, and counted.
            if self.reader.last().unclosed_quote.is_some()
                || !self
                    .record
                    .iter()
                    .all(|f| values::is_missing(&csv_input::decode_field(f)))
            {
                break;
            }
            self.validation.rows_skipped_empty += 1;
        }
        // Fields past the header's that hold nothing (`…,Yes,` on the rows of an export whose
        // header has no trailing delimiter): dropped, and the rows counted for one note in the
        // report. A field there that holds something still rejects the row, naming it.
        let width = self.header.len();
        if self.record.len() > width
            && self.reader.last().unclosed_quote.is_none()
            && self
                .record
                .iter()
                .skip(width)
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
        {
            self.record.truncate(width);
            self.validation.rows_with_extra_empty_fields += 1;
        }
        let row = self.rows;
        let record = &self.record;
        let mut id_recoded = false;
        let customer_id = self.id_at.and_then(|i| record.get(i)).map(|b| {
            let id = csv_input::decode_field(b);
            // Owned only when the bytes were not UTF-8 (see `decode_field`).
            if let Cow::Owned(_) = id {
                self.validation.cells_read_as_windows_1252 += 1;
                id_recoded = true;
            }
            id.into_owned()
        });
        // A quote left open in the id field: what it holds is the rest of the line, not an id.
        let customer_id = customer_id.filter(|_| {
            self.reader
                .last()
                .unclosed_quote
                .as_ref()
                .is_none_or(|q| Some(q.field) != self.id_at)
        });
        let issue = |column: Option<String>, value: Option<String>, reason: String| RowIssue {
            row,
            customer_id: customer_id.clone().filter(|s| !values::is_missing(s)),
            column,
            feature: None,
            value,
            reason,
            used_instead: None,
        };
        let shape_problem = if let Some(q) = &self.reader.last().unclosed_quote {
            let column = self
                .header
                .get(q.field)
                .cloned()
                .unwrap_or_else(|| format!("column {}", q.field + 1));
            let value = record.get(q.field).map(|f| {
                let text = csv_input::decode_field(f);
                let short: String = text.chars().take(60).collect();
                format!(
                    "\"{short}{}",
                    if short.len() < text.len() { "…" } else { "" }
                )
            });
            Some(issue(
                Some(column),
                value,
                if q.cut() {
                    format!(
                        "{}; this row is rejected and the lines after it are read as rows of their own (close the quote, or remove it)",
                        q.describe()
                    )
                } else {
                    format!(
                        "{}; this row is rejected, as its fields mix the two (if they are two customers, remove the quote on line {} or close it there)",
                        q.describe(),
                        q.line
                    )
                },
            ))
        } else if record.len() == self.header.len()
            && record
                .iter()
                .zip(&self.header)
                .all(|(f, h)| csv_input::decode_field(f).trim() == h.trim())
        {
            Some(issue(
                None,
                None,
                "the row repeats the header (were files joined together?)".into(),
            ))
        } else if record.len() > self.header.len() {
            let (at, extra) = record
                .iter()
                .enumerate()
                .skip(self.header.len())
                .find(|(_, f)| !f.iter().all(u8::is_ascii_whitespace))
                .map_or((self.header.len(), Cow::Borrowed("")), |(i, f)| {
                    (i, csv_input::decode_field(f))
                });
            let cause = self.quote_note().unwrap_or_else(|| {
                format!(
                    "a missing quote or an extra {}?",
                    match self.dialect.delimiter {
                        b'\t' => "tab".to_string(),
                        d => format!("'{}'", d as char),
                    }
                )
            });
            Some(issue(
                None,
                Some(clip(&extra)),
                format!(
                    "the row has {} fields but the header has {}: field {} holds {:?}, which no column names ({cause})",
                    record.len(),
                    self.header.len(),
                    at + 1,
                    clip(&extra),
                ),
            ))
        } else if self.plan.is_empty() && !self.model.schema().columns.is_empty() {
            Some(issue(
                None,
                None,
                "the file's columns do not map onto the model".into(),
            ))
        } else if record.len() < self.needed_width {
            let first_missing = self
                .model
                .schema()
                .columns
                .iter()
                .zip(&self.plan)
                .filter_map(|(c, &(at, _))| at.filter(|&a| a >= record.len()).map(|a| (c, a)))
                .min_by_key(|&(_, a)| a)
                .map(|(c, a)| file_column(&self.header, a, &c.name));
            let mut i = issue(
                first_missing.as_ref().map(|(column, _)| column.clone()),
                None,
                format!(
                    "the row has {} fields but the header has {}; this column is missing{}",
                    record.len(),
                    self.header.len(),
                    self.quote_note()
                        .map_or(String::new(), |cause| format!(" ({cause})"))
                ),
            );
            i.feature = first_missing.and_then(|(_, feature)| feature);
            Some(i)
        } else if self.id_at.is_some() && customer_id.as_deref().is_none_or(values::is_missing) {
            // A customer the row does not name cannot be acted on (nor told apart from
            // another): rejected with the reason, never scored under a blank or `#N/A`.
            let raw = customer_id.clone().unwrap_or_default();
            Some(issue(
                self.mapping.id.as_ref().and_then(|m| m.column.clone()),
                Some(raw.clone()),
                format!(
                    "no customer id ({}): a row that names no customer cannot be acted on; fill in its id",
                    values::missing_kind(&raw)
                ),
            ))
        } else {
            None
        };
        if let Some(i) = shape_problem {
            self.validation.reject(&i);
            return Ok(Some(RowRead {
                row,
                customer_id,
                rejected: Some(i),
                warnings: Vec::new(),
                flags: Vec::new(),
            }));
        }

        self.observed = None;
        if let (Some((at, name)), Some(encoder)) = (&self.observed_at, self.dated_encoder.as_mut())
        {
            let raw = record
                .get(*at)
                .map(csv_input::decode_field)
                .unwrap_or_default();
            if let Ok(Some(d)) = crate::dates::parse_date(&raw) {
                encoder.set_reference_date(Some(d));
                self.observed = Some(d);
            } else {
                let i = issue(
                    Some(name.clone()),
                    Some(raw.to_string()),
                    format!(
                        "no observation date: {}; the model counts this row's dates back from it",
                        crate::dates::EXPECTED
                    ),
                );
                self.validation.reject(&i);
                return Ok(Some(RowRead {
                    row,
                    customer_id,
                    rejected: Some(i),
                    warnings: Vec::new(),
                    flags: Vec::new(),
                }));
            }
        }
        let schema = self.model.schema();
        let encoder = self
            .dated_encoder
            .as_ref()
            .unwrap_or_else(|| self.model.encoder());
        let numbers = self.dialect.numbers;
        let mut warnings = Vec::new();
        // Once the report's list of warnings is full, a row's warnings are only counted: no
        // RowIssue (column name, raw value, reason text) is built for a list that keeps none.
        let listing = self.validation.warnings.len() < self.validation.rejected_rows_cap;
        let mut unlisted = 0u64;
        let header = &self.header;
        // One warning of this row on schema column `c`, read from file column `at`: listed
        // (its text built only then) or only counted. It names the file's column as written,
        // and the model input it feeds when that is named otherwise.
        let mut say =
            |c: usize, at: usize, raw: &str, text: &dyn Fn() -> (String, Option<String>)| {
                if listing {
                    let (reason, used) = text();
                    let (column, feature) = file_column(header, at, &schema.columns[c].name);
                    let mut w = issue(Some(column), Some(raw.to_owned()), reason);
                    w.feature = feature;
                    w.used_instead = used;
                    warnings.push(w);
                } else {
                    unlisted += 1;
                }
            };
        let mut flags = Vec::new();
        let mut bad: Option<RowIssue> = None;
        let mut bad_count = 0;
        let mut missing = 0usize;
        for (c, &(at, scale)) in self.plan.iter().enumerate() {
            let Some(at) = at else {
                // No column in the file: missing in every row, flagged on each (the file-level
                // warning is `ValidationReport::absent_inputs`).
                // An empty cell encodes as missing for every kind (as a blank cell does below).
                let _ = encoder.encode_cell(c, "", features);
                self.validation.columns[c].missing += 1;
                missing += 1;
                flags.push(Flag {
                    column: c,
                    kind: FlagKind::Absent,
                });
                continue;
            };
            let raw = csv_input::decode_field(&record[at]);
            // A unit conversion or a date counted back: the value scored is not the one
            // written, so every remark on it says both.
            let converts = scale != 1.0 || self.from_date.get(c).copied().unwrap_or(false);
            if let Cow::Owned(_) = raw {
                self.validation.cells_read_as_windows_1252 += 1;
                say(c, at, &escaped(&record[at]), &|| {
                    recoded_reason(&raw, self.encoding)
                });
            }
            let missing_here = values::is_missing(&raw);
            if missing_here {
                self.validation.columns[c].missing += 1;
                missing += 1;
            }
            // A number goes through the one number reader, which says how it read the cell
            // (plain, respelled or ambiguous: [`values::read_number`]); its value, after the
            // column's unit conversion, is the feature's one slot.
            let mut respelled: Option<(String, f64)> = None;
            let mut ambiguous = None;
            let result = if self.from_date.get(c).copied().unwrap_or(false) {
                // A date read for a duration input: the time before the reference date.
                let slot = self.ranges[c].0;
                features[slot] = f64::NAN;
                match crate::dates::parse_date(&raw) {
                    Ok(None) => Ok(CellNote::Fine),
                    Ok(Some(date)) => match self.reference {
                        Some(reference) => {
                            features[slot] =
                                crate::dates::days_before(date, reference) as f64 * scale;
                            Ok(CellNote::Fine)
                        }
                        None => Err(crate::encode::CellError::NoReferenceDate.expected()),
                    },
                    Err(_) => Err(crate::dates::EXPECTED),
                }
            } else if matches!(schema.columns[c].kind, ColumnKind::Numeric) {
                let slot = self.ranges[c].0;
                features[slot] = f64::NAN;
                match values::read_number(&raw, numbers) {
                    Ok(NumberRead::Missing) => Ok(CellNote::Fine),
                    Ok(NumberRead::Ambiguous(a)) => {
                        ambiguous = Some(a);
                        Ok(CellNote::Fine)
                    }
                    Ok(NumberRead::Plain(x)) if !(x * scale).is_finite() => {
                        Err(NumberError::Overflow.expected())
                    }
                    Ok(NumberRead::Respelled { value, .. }) if !(value * scale).is_finite() => {
                        Err(NumberError::Overflow.expected())
                    }
                    Ok(NumberRead::Plain(x)) => {
                        features[slot] = x * scale;
                        Ok(CellNote::Fine)
                    }
                    Ok(NumberRead::Respelled { value, how }) => {
                        features[slot] = value * scale;
                        respelled = Some((how, value));
                        Ok(CellNote::Fine)
                    }
                    Err(e) => Err(e.expected()),
                }
            } else {
                encoder
                    .encode_cell(c, &raw, features)
                    .map_err(|e| e.expected())
            };
            // A level the model does not know may still be a known synonym (`annual`): read as
            // that level, and said (a warning, a flag, the report's list of aliases).
            let mut aliased = None;
            let result = match (&result, &schema.columns[c].kind) {
                (Ok(CellNote::UnseenLevel), ColumnKind::Categorical { levels }) => {
                    match aliases::level_synonym(&raw, levels) {
                        Some(level) => {
                            aliased = Some(level);
                            encoder
                                .encode_cell(c, level, features)
                                .map_err(|e| e.expected())
                        }
                        None => result,
                    }
                }
                _ => result,
            };
            if let Some((how, value)) = respelled.filter(|_| result.is_ok()) {
                self.validation.columns[c].respelled += 1;
                let slot = self.ranges[c].0;
                let used = features[slot];
                say(c, at, &raw, &|| {
                    let number = crate::explain::number(value);
                    if converts {
                        let feature = &schema.columns[c].name;
                        let used = converted(feature, used);
                        (
                            format!(
                                "read as the number {number} ({how}), that is {used} for {feature}"
                            ),
                            Some(used),
                        )
                    } else {
                        (format!("read as the number {number} ({how})"), Some(number))
                    }
                });
            }
            if let Some(a) = ambiguous {
                self.validation.columns[c].missing += 1;
                self.validation.columns[c].ambiguous += 1;
                missing += 1;
                say(c, at, &raw, &|| {
                    (a.reason().to_string(), Some(SUBSTITUTE.into()))
                });
                flags.push(Flag {
                    column: c,
                    kind: FlagKind::Ambiguous,
                });
                continue;
            }
            if let (Some(level), Ok(_)) = (aliased, &result) {
                self.validation.columns[c].aliased += 1;
                let file_column = self.header.get(at).cloned().unwrap_or_default();
                self.validation
                    .alias_used(&schema.columns[c].name, &file_column, &raw, level, row);
                say(c, at, &raw, &|| {
                    (
                        format!("another spelling of the category {level:?}: read as {level:?}"),
                        Some(level.to_string()),
                    )
                });
                flags.push(Flag {
                    column: c,
                    kind: FlagKind::Alias,
                });
                continue;
            }
            match result {
                Ok(CellNote::Fine) if missing_here => {
                    say(c, at, &raw, &|| {
                        (
                            format!("{}: no value to score", values::missing_kind(&raw)),
                            Some(SUBSTITUTE.into()),
                        )
                    });
                    flags.push(Flag {
                        column: c,
                        kind: FlagKind::Missing,
                    });
                }
                Ok(CellNote::Fine) => {
                    let (slot, range) = &self.ranges[c];
                    if let Some(why) = range.as_ref().and_then(|r| r.judge(features[*slot])) {
                        let range = range.as_ref().expect("judged against it");
                        let used = features[*slot];
                        say(c, at, &raw, &|| {
                            let feature = &schema.columns[c].name;
                            let conversion = converts.then(|| converted(feature, used));
                            (
                                out_of_range_reason(
                                    &schema.columns[c].kind,
                                    why,
                                    range,
                                    used,
                                    conversion.as_deref().map(|u| (feature.as_str(), u)),
                                ),
                                conversion.clone(),
                            )
                        });
                        flags.push(Flag {
                            column: c,
                            kind: FlagKind::OutOfRange,
                        });
                    }
                }
                Ok(CellNote::UnseenLevel) => {
                    self.validation.columns[c].unseen += 1;
                    say(c, at, &raw, &|| {
                        (unseen_reason(schema, c), Some(SUBSTITUTE.into()))
                    });
                    flags.push(Flag {
                        column: c,
                        kind: FlagKind::Unseen,
                    });
                }
                Err(expected) => {
                    self.validation.columns[c].invalid += 1;
                    bad_count += 1;
                    if bad.is_none() {
                        let (column, feature) =
                            file_column(&self.header, at, &schema.columns[c].name);
                        let mut i =
                            issue(Some(column), Some(raw.into_owned()), expected.to_string());
                        i.feature = feature;
                        bad = Some(i);
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
            self.validation.reject(&i);
            return Ok(Some(RowRead {
                row,
                customer_id,
                rejected: Some(i),
                warnings: Vec::new(),
                flags: Vec::new(),
            }));
        }
        let n = self.plan.len();
        if missing as f64 > self.limits.max_missing_share * n as f64 {
            let i = issue(
                None,
                None,
                format!(
                    "{missing} of the {n} feature values are missing; at most {} may be (a totals, notes or mostly empty row?)",
                    (self.limits.max_missing_share * n as f64).floor()
                ),
            );
            self.validation.reject(&i);
            return Ok(Some(RowRead {
                row,
                customer_id,
                rejected: Some(i),
                warnings: Vec::new(),
                flags: Vec::new(),
            }));
        }
        if let (true, Some(at), Some(id)) = (id_recoded, self.id_at, &customer_id) {
            if listing {
                let (column, _) = file_column(&self.header, at, "");
                let (reason, used) = recoded_reason(id, self.encoding);
                let mut w = issue(Some(column), Some(escaped(&self.record[at])), reason);
                w.used_instead = used;
                warnings.push(w);
            } else {
                unlisted += 1;
            }
        }
        if let Some(w) = self.repeated_id(row, customer_id.as_deref()) {
            warnings.push(w);
        }
        for w in &warnings {
            self.validation.warn(w);
        }
        self.validation.warnings_total += unlisted;
        Ok(Some(RowRead {
            row,
            customer_id,
            rejected: None,
            warnings,
            flags,
        }))
    }

    /// When the record just read has a quoted field that runs over line breaks (or, failing
    /// that, holds the delimiter), that quote in words: where it opens and where it ends. Said
    /// when the row's field count is wrong, as the quote is then the likely cause (a stray
    /// `"` that RFC 4180 quoting reads up to the next one).
    fn quote_note(&self) -> Option<String> {
        let mut line = self.reader.last().line;
        let name = |i: usize| {
            self.header
                .get(i)
                .map_or_else(|| "past the header".to_owned(), |h| format!("column {h}"))
        };
        for (i, f) in self.record.iter().enumerate() {
            let breaks = f
                .iter()
                .enumerate()
                .filter(|&(k, &b)| b == b'\r' || (b == b'\n' && (k == 0 || f[k - 1] != b'\r')))
                .count() as u64;
            if breaks > 0 {
                return Some(format!(
                    "the quote (\") that opens field {} ({}) on line {line} is closed only on line {}, so the lines between are read as one field: close it where it should end, or remove it",
                    i + 1,
                    name(i),
                    line + breaks
                ));
            }
        }
        let delimiter = self.dialect.delimiter;
        let (i, _) = self
            .record
            .iter()
            .enumerate()
            .find(|(_, f)| f.contains(&delimiter))?;
        line = self.reader.last().line;
        Some(format!(
            "field {} ({}) on line {line} is quoted and holds the delimiter {:?}: a quote there may be misplaced",
            i + 1,
            name(i),
            delimiter as char
        ))
    }

    /// The observation date of the row [`Intake::next_row`] last read, when the model counts
    /// each row's dates from its own observation date and the file has that column; `None`
    /// otherwise (the rows then count from the file's reference date).
    pub fn observation_date(&self) -> Option<chrono::NaiveDate> {
        self.observed
    }

    /// The file's observation date column, when the model was trained with one and the file
    /// has it (matched as the model's other columns are: exactly, then ignoring case, spaces
    /// and punctuation).
    pub fn observation_column(&self) -> Option<&str> {
        self.observed_at.as_ref().map(|(_, name)| name.as_str())
    }

    /// A warning when scored row `row`'s customer id was already seen on a scored row
    /// ([`RepeatCheck::check`]); never while reading a piece of a file.
    fn repeated_id(&mut self, row: u64, id: Option<&str>) -> Option<RowIssue> {
        let column = self.mapping.id.as_ref().and_then(|m| m.column.as_deref());
        self.repeats
            .as_mut()?
            .check(row, id, column, &mut self.validation)
    }

    /// Reads piece `piece` of the file from `body` (the file's bytes from `piece.start` on)
    /// instead of the rest of the file after the header, with the file's own row and line
    /// numbers, stopping after its `rows` records. Call right after opening the file's start
    /// (its header read; encoding and dialect detected from the whole file's first bytes),
    /// before any row is read. Repeated ids are not checked (see [`crate::chunks`]).
    ///
    /// # Errors
    /// [`ScoreError::Io`] when the file is not read as it is (UTF-16, windows-1252: offsets
    /// of the decoded text are not the file's), which [`crate::chunks::split`] never cuts.
    pub fn read_piece(&mut self, body: R, piece: &crate::chunks::Piece) -> Result<(), ScoreError> {
        if !matches!(self.encoding, Encoding::Utf8 | Encoding::Utf8Bom) {
            return Err(ScoreError::Io(std::io::Error::other(format!(
                "a {} file is not read in pieces",
                self.encoding.label()
            ))));
        }
        let mut reader = Records::new(
            DecodeReader::passthrough(body, self.encoding),
            self.dialect.delimiter,
            piece.first_line,
        );
        reader.set_width(self.header.len());
        reader.set_rows_width(self.rows_width);
        reader.set_max_record_bytes(self.limits.max_field_bytes.saturating_mul(64));
        reader.set_offset(piece.start);
        self.reader = reader;
        self.rows = piece.first_row - 1;
        self.end_row = Some(piece.first_row - 1 + piece.rows);
        self.repeats = None;
        Ok(())
    }

    /// Reads the next record without looking at its fields: its row number and where it
    /// starts ([`csv_input::RecordInfo`]'s `start` and `line`); `None` at the end. The limits
    /// of [`Intake::next_row`] apply.
    ///
    /// # Errors
    /// As [`Intake::next_row`].
    pub fn next_start(&mut self) -> Result<Option<(u64, u64, u64)>, ScoreError> {
        if !self.read_record()? {
            return Ok(None);
        }
        let last = self.reader.last();
        Ok(Some((self.rows, last.start, last.line)))
    }

    /// The validation report so far (complete once [`Intake::next_row`] returned `None`).
    pub fn validation(&self) -> &ValidationReport {
        &self.validation
    }

    /// Ends reading and returns the validation report.
    pub fn finish(self) -> ValidationReport {
        self.validation
    }
}

/// The search for customer ids repeated on scored rows, in row order: one per file (an
/// [`Intake`]'s, or the merge's over a file's pieces, [`crate::chunks::Merger`]).
#[derive(Debug, Default)]
pub struct RepeatCheck {
    /// Ids seen so far (64-bit hashes) and the row each was first seen on.
    seen_ids: HashMap<u64, u64>,
    /// The first spelling of remembered ids written with spaces around them, by hash.
    spaced_ids: HashMap<u64, String>,
    max_tracked_ids: usize,
}

impl RepeatCheck {
    /// A check remembering at most `max_tracked_ids` distinct ids
    /// ([`InputLimits::max_tracked_ids`]).
    pub fn new(max_tracked_ids: usize) -> RepeatCheck {
        RepeatCheck {
            max_tracked_ids,
            ..RepeatCheck::default()
        }
    }

    /// A warning when scored row `row`'s customer id (not blank) was already seen on a scored
    /// row: two rows for one customer give two scores, and every count over customers counts
    /// them twice. Ids are compared with the spaces around them removed (`" A1"` and `"A1\t"`
    /// are one customer; letter case counts), and remembered as 64-bit hashes (SipHash with
    /// fixed keys, so the same file always gives the same report; two different ids share a
    /// hash with probability about n²/2⁶⁵, under 10⁻⁷ for a million ids), up to
    /// `max_tracked_ids`; the first spelling of an id written with spaces around it is kept
    /// too (up to [`MAX_SPACED_IDS`]), so the warning can show both. Counts into
    /// `validation`'s `duplicate_ids` and `duplicate_ids_unchecked`; `column` is the file's id
    /// column, named in the warning.
    pub fn check(
        &mut self,
        row: u64,
        id: Option<&str>,
        column: Option<&str>,
        validation: &mut ValidationReport,
    ) -> Option<RowIssue> {
        let id = id.filter(|s| !s.trim().is_empty())?;
        let trimmed = id.trim();
        let mut h = std::hash::DefaultHasher::new();
        trimmed.hash(&mut h);
        let key = h.finish();
        if let Some(&first) = self.seen_ids.get(&key) {
            validation.duplicate_ids += 1;
            let there = self.spaced_ids.get(&key).map_or(trimmed, String::as_str);
            let spelled = if there != id {
                format!(" (written {there:?} there and {id:?} here: ids are compared without the spaces around them)")
            } else {
                String::new()
            };
            return Some(RowIssue {
                row,
                customer_id: Some(id.to_owned()),
                column: column.map(str::to_owned),
                feature: None,
                value: Some(id.to_owned()),
                reason: format!(
                    "customer id {trimmed:?} is also on row {first}{spelled}: both rows are scored, so this customer is counted twice (remove one, or give each row its own id)"
                ),
                used_instead: None,
            });
        }
        if self.seen_ids.len() < self.max_tracked_ids {
            self.seen_ids.insert(key, row);
            if trimmed.len() != id.len() && self.spaced_ids.len() < MAX_SPACED_IDS {
                self.spaced_ids.insert(key, id.to_owned());
            }
        } else {
            validation.duplicate_ids_unchecked += 1;
        }
        None
    }
}

/// Most first spellings of ids written with spaces around them kept to name in a repeat's
/// warning (a few MB at most); later ones are still compared, trimmed.
pub const MAX_SPACED_IDS: usize = 10_000;

/// `Ok` when a file with `header`, mapped as `mapping`, can be scored by `model`: no input is
/// matched by several columns, and at most `floor(limits.max_missing_share × features)` inputs
/// have no column (those are scored as missing in every row, flagged). The one check behind
/// scoring, the preview's `ready` and the checks at upload, so they never disagree.
///
/// # Errors
/// [`ScoreError::DuplicateColumns`] when an input matched several columns, else
/// [`ScoreError::MissingColumns`] when too many inputs have no column.
pub fn check_columns(
    mapping: &ColumnMapping,
    header: &[String],
    model: &Model,
    limits: &InputLimits,
) -> Result<(), ScoreError> {
    if !mapping.duplicates.is_empty() {
        return Err(ScoreError::DuplicateColumns {
            duplicates: mapping.duplicates.clone(),
            mapping: Box::new(mapping.clone()),
        });
    }
    let allowed = max_absent(model, limits);
    if mapping.missing.len() > allowed {
        return Err(ScoreError::MissingColumns {
            missing: mapping.missing.iter().map(|m| m.feature.clone()).collect(),
            found: header.to_vec(),
            allowed,
            mapping: Box::new(mapping.clone()),
        });
    }
    Ok(())
}

/// How many of `model`'s inputs a file may lack and still be scored (see
/// [`InputLimits::max_missing_share`]).
pub fn max_absent(model: &Model, limits: &InputLimits) -> usize {
    (limits.max_missing_share * model.schema().columns.len() as f64).floor() as usize
}

/// Where `model`'s observation date column is in `header` (with its name as written), when
/// the model has one and the file has it.
fn observation_column(model: &Model, header: &[String]) -> Option<(usize, String)> {
    let name = model.card().observation_date.as_deref()?;
    let at = header.iter().position(|h| h.trim() == name).or_else(|| {
        let key = values::column_key(name);
        header.iter().position(|h| values::column_key(h) == key)
    })?;
    Some((at, header[at].clone()))
}

/// A header record's names as written: decoded, nothing removed. A tab, another control
/// character or a byte-order mark inside a name is kept, so that the mapping calls such a
/// name a *normalised* match and names the character (once they were removed here and
/// `"tenure\t"` was reported as an exact match). A NUL alone is shown as `␀` (U+2400): the
/// reports are stored as JSON, which PostgreSQL's `jsonb` cannot hold with a `\u0000`. The
/// file's own leading byte-order mark is not part of any name: the decoder has taken it off.
fn written_names(record: &csv::ByteRecord) -> Vec<String> {
    record
        .iter()
        .map(|f| csv_input::decode_field(f).replace('\0', "\u{2400}"))
        .collect()
}

/// True when a header that maps onto no feature reads like a data row instead: at least half of
/// its cells are numbers, yes/no words or category levels of the model (a file exported
/// without its header row).
fn looks_like_data(schema: &FeatureSchema, header: &[String], mapping: &ColumnMapping) -> bool {
    if mapping.features.iter().any(|f| f.column.is_some()) || header.is_empty() {
        return false;
    }
    let levels: std::collections::HashSet<String> = schema
        .columns
        .iter()
        .filter_map(|c| match &c.kind {
            ColumnKind::Categorical { levels } => Some(levels.iter().map(|l| values::level_key(l))),
            _ => None,
        })
        .flatten()
        .collect();
    let data_like = header
        .iter()
        .filter(|h| {
            values::parse_number(h).is_ok_and(|v| v.is_some())
                || values::is_bool_word(h)
                || crate::dates::parse_date(h).is_ok_and(|d| d.is_some())
                || levels.contains(&values::level_key(h))
        })
        .count();
    data_like * 2 >= header.len()
}

/// The warning for an unseen level of schema column `c`, listing the known levels.
fn unseen_reason(schema: &FeatureSchema, c: usize) -> String {
    match &schema.columns[c].kind {
        ColumnKind::Categorical { levels } => format!(
            "a category the model has not seen (it knows: {})",
            levels.join(", ")
        ),
        _ => "a category the model has not seen".into(),
    }
}

/// Each schema column's slot and, for numeric and date columns, the training range recorded on
/// the model's card (matched by name; cards before ranges were recorded have none).
fn training_ranges(model: &Model) -> Vec<(usize, Option<FeatureRange>)> {
    let schema = model.schema();
    schema
        .columns
        .iter()
        .zip(schema.offsets())
        .map(|(c, slot)| {
            let range = matches!(c.kind, ColumnKind::Numeric | ColumnKind::Date)
                .then(|| {
                    model
                        .card()
                        .features
                        .iter()
                        .find(|f| f.name == c.name)
                        .and_then(|f| f.range.clone())
                })
                .flatten();
            (slot, range)
        })
        .collect()
}

/// A cell's bytes with every byte that is not printable ASCII written `\xNN` (`M\xfcller`):
/// what the file holds, shown when it is not valid text in the file's encoding.
fn escaped(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// The remark on a cell whose bytes were not valid in the file's `encoding` and were read as
/// windows-1252 instead ([`csv_input::decode_field`]), and the text read.
fn recoded_reason(read: &str, encoding: Encoding) -> (String, Option<String>) {
    (
        format!(
            "bytes that are not valid {} (the file's encoding), read as windows-1252: {read:?} (check the accented letters; save the file as UTF-8 to be sure)",
            encoding.label()
        ),
        Some(read.to_owned()),
    )
}

/// `text` cut to 60 characters (an ellipsis marks a cut), for quoting a cell in a message.
fn clip(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// File column `at` of `header` as written (or `column N` past its end) and, when its name is
/// not `feature`'s, the model input `feature` it feeds: the two names a remark on a cell gives.
fn file_column(header: &[String], at: usize, feature: &str) -> (String, Option<String>) {
    let written = header
        .get(at)
        .cloned()
        .unwrap_or_else(|| format!("column {}", at + 1));
    let feeds = (written.trim() != feature).then(|| feature.to_owned());
    (written, feeds)
}

/// The value a converted cell was scored with, rounded for reading, in the unit of model
/// input `feature` when the alias table knows it ([`aliases::unit_of`]): `408 months`.
fn converted(feature: &str, value: f64) -> String {
    let n = crate::explain::shown(value);
    match aliases::unit_of(feature) {
        Some(unit) => format!("{n} {unit}"),
        None => n,
    }
}

/// The warning for a value outside its column's training range; `used` is the value scored,
/// `conversion` the model input and the converted value, when a unit conversion or a date
/// counted back made it.
fn out_of_range_reason(
    kind: &ColumnKind,
    why: OutOfRange,
    range: &FeatureRange,
    used: f64,
    conversion: Option<(&str, &str)>,
) -> String {
    let n = crate::explain::shown;
    let trained = if *kind == ColumnKind::Date {
        format!(
            "the model was trained on dates {} to {} days before the reference date",
            n(range.min),
            n(range.max)
        )
    } else {
        format!(
            "the model was trained on values from {} to {}",
            n(range.min),
            n(range.max)
        )
    };
    let what = match (why, kind) {
        (OutOfRange::Negative, ColumnKind::Date) => "a date after the file's reference date",
        (OutOfRange::Negative, _) => "a negative value",
        (OutOfRange::FarBelow, _) => "far below the training range",
        (OutOfRange::FarAbove, ColumnKind::Date) => "a date far before the training range",
        (OutOfRange::FarAbove, _) => "far above the training range",
    };
    let read = match conversion {
        Some((feature, value)) => format!("read as {value} for {feature}, "),
        None => String::new(),
    };
    let scored = conversion.map_or_else(|| n(used), |(_, value)| value.to_owned());
    format!("{read}{what}: {trained}; scored with {scored}, but the model never learnt what such a value means (check it)")
}

/// What a substituted value was scored as: the model's own handling of an absent value (the
/// trees' learned direction for a missing value, the regression's mean).
const SUBSTITUTE: &str = "missing (the model's rule for an absent value)";

/// Reads one record, mapping reader errors to [`ScoreError`] at data row `row`.
fn read<R: Read>(
    reader: &mut Records<R>,
    record: &mut csv::ByteRecord,
    row: u64,
) -> Result<bool, ScoreError> {
    csv_input::next_record(reader, record).map_err(|e| match e {
        ReadError::Io(io) => ScoreError::Io(io),
        ReadError::Malformed(message) => ScoreError::Malformed { row, message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges";
    const REST: &[u8] = b",Female,0,Yes,No,5,Yes,No,Fiber optic,No,No,No,No,Yes,Yes,Month-to-month,Yes,Electronic check,85.5,420\n";

    #[test]
    fn invalid_utf8_after_the_sample_is_read_as_windows_1252_and_counted() {
        let mut file = format!("{HEADER}\n").into_bytes();
        let mut n = 0;
        while file.len() < 2 * crate::decode::SAMPLE_BYTES {
            file.extend_from_slice(format!("A{n}").as_bytes());
            file.extend_from_slice(REST);
            n += 1;
        }
        file.extend_from_slice(b"M\xfcller");
        file.extend_from_slice(REST);
        let model = Model::embedded_default();
        let mut intake = Intake::open(model, &file[..], &InputLimits::default()).unwrap();
        intake.check_mapping().unwrap();
        let mut features = vec![0.0; model.encoder().n_features()];
        let mut last = None;
        while let Some(r) = intake.next_row(&mut features).unwrap() {
            assert!(r.rejected.is_none(), "{r:?}");
            last = r.customer_id;
        }
        assert_eq!(last.as_deref(), Some("Müller"));
        let v = intake.finish();
        assert_eq!(v.encoding, "UTF-8");
        assert_eq!(v.cells_read_as_windows_1252, 1);
        assert_eq!(v.rows_total, n + 1);
    }

    #[test]
    fn repeated_ids_are_warned_within_the_tracking_cap() {
        let model = Model::embedded_default();
        let mut file = format!("{HEADER}\n");
        for id in ["A", "B", " A ", "B", " "] {
            file.push_str(id);
            file.push_str(std::str::from_utf8(REST).unwrap());
        }
        let limits = InputLimits {
            max_tracked_ids: 1,
            ..InputLimits::default()
        };
        let mut intake = Intake::open(model, file.as_bytes(), &limits).unwrap();
        intake.check_mapping().unwrap();
        let mut features = vec![0.0; model.encoder().n_features()];
        let mut warned = Vec::new();
        let mut rejected = Vec::new();
        while let Some(r) = intake.next_row(&mut features).unwrap() {
            if let Some(i) = r.rejected {
                rejected.push((i.row, i.reason));
            }
            warned.extend(r.warnings.into_iter().map(|w| (w.row, w.reason)));
        }
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert_eq!(warned[0].0, 3);
        assert!(
            warned[0].1.contains("\"A\" is also on row 1") && warned[0].1.contains("\" A \" here"),
            "{warned:?}"
        );
        // A blank id is no id: the row is rejected, saying so.
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert!(rejected[0].1.contains("no customer id"), "{rejected:?}");
        let v = intake.finish();
        // B was never remembered (the cap is one id): its rows are counted as unchecked.
        assert_eq!((v.duplicate_ids, v.duplicate_ids_unchecked), (1, 2));
    }

    #[test]
    fn decimal_comma_numbers_reach_the_encoder_exactly() {
        let model = Model::embedded_default();
        let row = String::from_utf8_lossy(REST).trim_end().to_string();
        let comma = format!("{HEADER}\nX1{row}\n");
        let semi = format!(
            "{}\nX1{}\n",
            HEADER.replace(',', ";"),
            row.replace(',', ";").replace("85.5", "85,5")
        );
        let read = |input: &[u8]| {
            let mut intake = Intake::open(model, input, &InputLimits::default()).unwrap();
            intake.check_mapping().unwrap();
            let mut f = vec![0.0; model.encoder().n_features()];
            let r = intake.next_row(&mut f).unwrap().unwrap();
            assert!(r.rejected.is_none(), "{r:?}");
            f.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(read(comma.as_bytes()), read(semi.as_bytes()));
    }
}
