//! The validation report of one scored file: how it was read, how its columns were mapped, what
//! was missing or invalid per column, and which rows were rejected and why.
//!
//! It is stored with every prediction (`GET /api/predictions/{id}/report`) and written by
//! `retainwise predict --report FILE`, so that a person can fix the file without guessing.
//! Lists are capped ([`crate::intake::InputLimits::max_listed_rejections`]); totals never are.

use serde::Serialize;

use crate::mapping::ColumnMapping;
use crate::score::RowIssue;

/// Cell counts of one model input over the data rows that reached cell reading (rows rejected
/// for their shape, such as a wrong field count, are not counted here).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ColumnStats {
    /// The feature's name in the model.
    pub feature: String,
    /// The file column it was read from.
    pub column: Option<String>,
    /// Cells that were missing ([`crate::values::MISSING_TOKENS`]); scored as missing.
    pub missing: u64,
    /// Cells that could not be read (their rows were rejected).
    pub invalid: u64,
    /// Category levels the model has not seen; scored as missing, with a warning.
    pub unseen: u64,
    /// Numbers read exactly from a spelling that was undone first (a currency symbol,
    /// thousands separators, accounting parentheses, …: [`crate::values::NumberRead`]), each
    /// with a warning giving the number used.
    pub respelled: u64,
    /// Numbers with two readings (`88%`; `1.234` with a decimal comma): scored as missing
    /// (also counted in `missing`), with a warning and a data-quality flag.
    pub ambiguous: u64,
    /// Category values read as a model level through another spelling
    /// ([`crate::aliases::LEVEL_SYNONYMS`]: `Fiber` as `Fiber optic`), each with a warning and
    /// a data-quality flag; listed in [`ValidationReport::category_aliases`].
    pub aliased: u64,
}

/// One category alias applied while reading a file: every row whose cell of `column` held
/// `raw` was read as the model's level `level`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AliasUse {
    /// The model input.
    pub feature: String,
    /// The file column, as written.
    pub column: String,
    /// The cell text as in the file (the first spelling met for this alias).
    pub raw: String,
    /// The model's level it was read as.
    pub level: String,
    /// Rows read so (all counted).
    pub rows: u64,
    /// The first of those rows' numbers, at most [`ALIAS_ROWS_LISTED`].
    pub first_rows: Vec<u64>,
}

/// Row numbers listed per [`AliasUse`].
pub const ALIAS_ROWS_LISTED: usize = 10;

/// Distinct aliases listed in [`ValidationReport::category_aliases`] (a model's levels and the
/// synonym table bound them far below this; the cap only bounds memory).
const MAX_ALIASES_LISTED: usize = 100;

/// How a file was read and validated; part of [`crate::ScoreReport`] and of
/// [`crate::ScoreError::NoUsableRows`]. Deserialisable, every field defaulted when absent, so a
/// report stored by an older release (before a field existed) still reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ValidationReport {
    /// The detected text encoding ([`crate::decode::Encoding::label`]), e.g. `"UTF-8"`.
    pub encoding: String,
    /// The detected delimiter: `","`, `";"`, `"tab"` or `"|"`.
    pub delimiter: String,
    /// Feature and id cells of a UTF-8 file that were not valid UTF-8 and were read as
    /// windows-1252 instead (invalid bytes after the detection sample; 0 for other encodings).
    pub cells_read_as_windows_1252: u64,
    /// Whether numbers were read with a decimal comma (`;` files).
    pub decimal_comma: bool,
    /// How the header mapped onto the model (`None` only when no header could be read).
    pub mapping: Option<ColumnMapping>,
    /// Model inputs the file has no column for (or that a person mapped to none): each is
    /// scored as missing in every row and flagged in its `data_quality` as `not in the file`.
    /// A file may lack at most [`crate::intake::max_absent`] of them.
    pub absent_inputs: Vec<String>,
    /// Every category alias applied (`Fiber` read as `Fiber optic`), with its rows: an alias
    /// is a reading of the file, never a silent one.
    pub category_aliases: Vec<AliasUse>,
    /// Scored rows whose customer id was already on an earlier scored row (each also listed
    /// in `warnings`, naming both rows, while under the cap).
    pub duplicate_ids: u64,
    /// Rows whose id was not checked for repeats because
    /// [`crate::intake::InputLimits::max_tracked_ids`] distinct ids were already remembered.
    pub duplicate_ids_unchecked: u64,
    /// Per model feature, in schema order: missing, invalid and unseen cell counts.
    pub columns: Vec<ColumnStats>,
    /// Data rows read (header excluded; blank lines are not rows).
    pub rows_total: u64,
    /// Rows scored: written to the results.
    pub rows_scored: u64,
    /// Rows rejected (all of them counted).
    pub rows_rejected: u64,
    /// Rows skipped because every field is empty (`,,,,`, left by spreadsheets after rows are
    /// deleted) or a missing marker or Excel error value (`#N/A,#N/A,-`, left by formulas
    /// copied below the data): like blank lines, they hold no customer. Counted in `rows_total`.
    pub rows_skipped_empty: u64,
    /// Rows with more fields than the header whose extra fields are all empty (`…,Yes,`: a
    /// trailing delimiter the header lacks, common in exports): the extra fields are
    /// dropped and the rows read as usual. An extra field holding something rejects its row.
    pub rows_with_extra_empty_fields: u64,
    /// The first rejected rows, one issue each (row number, customer id, column, raw value,
    /// reason), at most `rejected_rows_cap`.
    pub rejected_rows: Vec<RowIssue>,
    /// The cap on `rejected_rows`.
    pub rejected_rows_cap: usize,
    /// Remarks on scored rows, all counted: every value that was not used as given (blank or
    /// a missing-value marker, an Excel error value such as `#N/A`, an unseen category), one
    /// per cell.
    pub warnings_total: u64,
    /// The first of those remarks, one per cell (row, customer id, column, raw value, reason,
    /// what was used instead), at most `rejected_rows_cap` (the score report's `warnings` holds
    /// the first few of them too).
    pub warnings: Vec<RowIssue>,
    /// Where every row read went, in words: `"4 rows read = 3 scored + 1 rejected"` (and
    /// `" + 1 skipped as empty"` when there are such rows). The counts always add up:
    /// `rows_total = rows_scored + rows_rejected + rows_skipped_empty`.
    pub balance: String,
}

impl ValidationReport {
    /// Records how many rows were scored once reading has ended, and states the balance.
    ///
    /// # Panics
    /// In debug builds, when the counts do not add up (a bug: a row was lost).
    pub fn close(&mut self, rows_scored: u64) {
        self.rows_scored = rows_scored;
        debug_assert_eq!(
            self.rows_total,
            self.rows_scored + self.rows_rejected + self.rows_skipped_empty,
            "every row read is scored, rejected or skipped as empty"
        );
        self.balance = format!(
            "{} rows read = {} scored + {} rejected",
            self.rows_total, self.rows_scored, self.rows_rejected
        );
        if self.rows_skipped_empty > 0 {
            self.balance
                .push_str(&format!(" + {} skipped as empty", self.rows_skipped_empty));
        }
    }

    /// Records a remark on a scored row: counted always, listed while under the cap.
    pub fn warn(&mut self, issue: &RowIssue) {
        self.warnings_total += 1;
        if self.warnings.len() < self.rejected_rows_cap {
            self.warnings.push(issue.clone());
        }
    }

    /// Records that row `row`'s cell `raw` of file column `column` (model input `feature`) was
    /// read as level `level` through an alias.
    pub fn alias_used(&mut self, feature: &str, column: &str, raw: &str, level: &str, row: u64) {
        let key = crate::values::level_key(raw);
        let room = self.category_aliases.len() < MAX_ALIASES_LISTED;
        let known = self.category_aliases.iter_mut().find(|a| {
            a.feature == feature && a.level == level && crate::values::level_key(&a.raw) == key
        });
        match known {
            Some(a) => {
                a.rows += 1;
                if a.first_rows.len() < ALIAS_ROWS_LISTED {
                    a.first_rows.push(row);
                }
            }
            None if room => self.category_aliases.push(AliasUse {
                feature: feature.to_owned(),
                column: column.to_owned(),
                raw: raw.to_owned(),
                level: level.to_owned(),
                rows: 1,
                first_rows: vec![row],
            }),
            None => {}
        }
    }

    /// Adds the counts and lists of the next piece of the same file ([`crate::chunks`]), read
    /// with the same header and mapping, as one reader going on through it would have: totals
    /// summed, lists extended up to their caps, category aliases merged by alias (a piece's
    /// rows of an alias it already lists are added to it). Warnings are not merged here: the
    /// merge interleaves them with the repeated ids it finds across pieces.
    pub fn add_piece(&mut self, piece: &ValidationReport) {
        self.cells_read_as_windows_1252 += piece.cells_read_as_windows_1252;
        for a in &piece.category_aliases {
            let key = crate::values::level_key(&a.raw);
            let room = self.category_aliases.len() < MAX_ALIASES_LISTED;
            let known = self.category_aliases.iter_mut().find(|b| {
                b.feature == a.feature
                    && b.level == a.level
                    && crate::values::level_key(&b.raw) == key
            });
            match known {
                Some(b) => {
                    b.rows += a.rows;
                    let room = ALIAS_ROWS_LISTED.saturating_sub(b.first_rows.len());
                    b.first_rows.extend(a.first_rows.iter().take(room));
                }
                None if room => self.category_aliases.push(a.clone()),
                None => {}
            }
        }
        self.duplicate_ids += piece.duplicate_ids;
        self.duplicate_ids_unchecked += piece.duplicate_ids_unchecked;
        for (c, p) in self.columns.iter_mut().zip(&piece.columns) {
            c.missing += p.missing;
            c.invalid += p.invalid;
            c.unseen += p.unseen;
            c.respelled += p.respelled;
            c.ambiguous += p.ambiguous;
            c.aliased += p.aliased;
        }
        self.rows_total += piece.rows_total;
        self.rows_rejected += piece.rows_rejected;
        self.rows_skipped_empty += piece.rows_skipped_empty;
        self.rows_with_extra_empty_fields += piece.rows_with_extra_empty_fields;
        let room = self
            .rejected_rows_cap
            .saturating_sub(self.rejected_rows.len());
        self.rejected_rows
            .extend(piece.rejected_rows.iter().take(room).cloned());
        self.warnings_total += piece.warnings_total;
    }

    /// Records a rejected row: counted always, listed while under the cap.
    pub fn reject(&mut self, issue: &RowIssue) {
        self.rows_rejected += 1;
        if self.rejected_rows.len() < self.rejected_rows_cap {
            self.rejected_rows.push(issue.clone());
        }
    }
}
