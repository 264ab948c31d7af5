//! Data-quality flags of a scored row: the values that were not used as given (a blank or a
//! missing-value marker, an Excel error value, a category the model does not know, a number
//! with two readings, a category read through another spelling) and, when
//! the model card records training ranges, values far outside them. A flagged row is still
//! scored, but its results say so: the `data_quality` column names the flagged columns, the
//! flagged factors of its explanation carry a `"quality"` note, and its summary and
//! recommendation never present a flagged value as a plain fact about the customer.

use crate::schema::FeatureSchema;

/// Why a value of a scored row is flagged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// No value in the file (blank, a missing-value marker or an Excel error value): scored as
    /// missing.
    Missing,
    /// A category the model never saw: scored as missing.
    Unseen,
    /// The file has no column for this input at all (or the user mapped it to none): scored
    /// as missing in every row ([`crate::intake::InputLimits::max_missing_share`] bounds how
    /// many inputs may be absent).
    Absent,
    /// A number (or a date's day count) far outside the values the model was trained on, or
    /// negative where training saw none: scored as given, but the model never learnt what such
    /// a value means ([`crate::card::FeatureRange`]).
    OutOfRange,
    /// A number with two readings (`88%`, or `1.234` in a decimal-comma file,
    /// [`crate::values::Ambiguity`]): scored as missing.
    Ambiguous,
    /// A category written another way (`Fiber`, `2 years`, `monthly`) and read as the model's
    /// level it names ([`crate::aliases::LEVEL_SYNONYMS`]): scored as that level.
    Alias,
}

impl FlagKind {
    /// Whether the score rests on a value the file did not give (read as missing) or one the
    /// model never learnt: such a low score is not evidence of a safe customer. An alias is the
    /// level the file meant, so it does not.
    pub fn substitutes(self) -> bool {
        !matches!(self, FlagKind::Alias)
    }

    /// The short label written in the `data_quality` column and a factor's `"quality"`.
    pub fn label(self) -> &'static str {
        match self {
            FlagKind::Missing => "missing",
            FlagKind::Unseen => "unknown category",
            FlagKind::Absent => "not in the file",
            FlagKind::OutOfRange => "outside training range",
            FlagKind::Ambiguous => "ambiguous number",
            FlagKind::Alias => "category alias",
        }
    }

    /// The note put after a flagged factor in the summary.
    pub fn note(self) -> &'static str {
        match self {
            FlagKind::Missing => "no value in the file",
            FlagKind::Unseen => "a category the model does not know, read as missing",
            FlagKind::Absent => "the file has no such column, read as missing",
            FlagKind::OutOfRange => "outside the values the model was trained on",
            FlagKind::Ambiguous => "a number that reads two ways, read as missing",
            FlagKind::Alias => "another spelling of a category, read as the model's level",
        }
    }
}

/// One flagged value of a scored row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// Schema column index.
    pub column: usize,
    /// Why it is flagged.
    pub kind: FlagKind,
}

/// The flag of schema column `column` among `flags`, if any.
pub fn flag_of(flags: &[Flag], column: usize) -> Option<FlagKind> {
    flags.iter().find(|f| f.column == column).map(|f| f.kind)
}

/// The `data_quality` cell of a row: `"TotalCharges: missing; Contract: unknown category"`,
/// in schema order; empty for a clean row.
pub fn data_quality(flags: &[Flag], schema: &FeatureSchema, out: &mut String) {
    out.clear();
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&schema.columns[f.column].name);
        out.push_str(": ");
        out.push_str(f.kind.label());
    }
}
