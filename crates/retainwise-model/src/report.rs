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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
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
}

/// How a file was read and validated; part of [`crate::ScoreReport`] and of
/// [`crate::ScoreError::NoUsableRows`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
    /// Per model feature, in schema order: missing, invalid and unseen cell counts.
    pub columns: Vec<ColumnStats>,
    /// Data rows read (header excluded).
    pub rows_total: u64,
    /// Rows rejected (all of them counted).
    pub rows_rejected: u64,
    /// The first rejected rows, one issue each (row number, customer id, column, raw value,
    /// reason), at most `rejected_rows_cap`.
    pub rejected_rows: Vec<RowIssue>,
    /// The cap on `rejected_rows`.
    pub rejected_rows_cap: usize,
    /// Remarks on scored rows, all counted (the first are in the score report's `warnings`).
    pub warnings_total: u64,
}

impl ValidationReport {
    /// Records a rejected row: counted always, listed while under the cap.
    pub fn reject(&mut self, issue: &RowIssue) {
        self.rows_rejected += 1;
        if self.rejected_rows.len() < self.rejected_rows_cap {
            self.rejected_rows.push(issue.clone());
        }
    }
}
