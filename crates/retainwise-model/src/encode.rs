//! Turning the raw cells of one row into the encoded feature vector of a [`FeatureSchema`].

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::dates;
use crate::schema::{ColumnKind, FeatureSchema};
use crate::values::{self, NumberError};

/// A cell the encoder could not read; the row cannot be scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellError {
    /// A numeric cell that is not a (finite) number.
    Number(NumberError),
    /// A boolean cell that is not yes/no.
    Boolean,
    /// A date cell that is not a date in an accepted spelling ([`crate::dates`]).
    Date,
    /// A date cell read by an encoder that has no reference date
    /// ([`Encoder::with_reference_date`]): a caller's mistake, reported rather than guessed.
    NoReferenceDate,
}

impl CellError {
    /// What the cell should have held, as put in a row issue.
    pub fn expected(self) -> &'static str {
        match self {
            CellError::Number(e) => e.expected(),
            CellError::Boolean => "expected Yes or No (also true/false, Y/N, 1/0)",
            CellError::Date => dates::EXPECTED,
            CellError::NoReferenceDate => {
                "a date needs a reference date to be read as days before it, and none was given"
            }
        }
    }
}

/// A cell that was encoded but deserves a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellNote {
    /// Encoded as given.
    Fine,
    /// A category level the model never saw: encoded as all zeros, like a missing value.
    UnseenLevel,
}

/// Encodes cells of a [`FeatureSchema`]'s columns into its feature vector.
#[derive(Clone, Debug)]
pub struct Encoder {
    offsets: Vec<usize>,
    kinds: Vec<Kind>,
    n_features: usize,
    /// The date that date cells count days back from (`None` until set).
    reference: Option<NaiveDate>,
}

#[derive(Clone, Debug)]
enum Kind {
    Numeric,
    Boolean,
    /// Levels by their exact spelling (the common case, no allocation), then by matching key.
    Categorical {
        exact: HashMap<String, usize>,
        by_key: HashMap<String, usize>,
    },
    Date,
}

impl Encoder {
    /// Builds the encoder of `schema` (assumed valid, see [`FeatureSchema::validate`]).
    pub fn new(schema: &FeatureSchema) -> Self {
        let kinds = schema
            .columns
            .iter()
            .map(|c| match &c.kind {
                ColumnKind::Numeric => Kind::Numeric,
                ColumnKind::Boolean => Kind::Boolean,
                ColumnKind::Date => Kind::Date,
                ColumnKind::Categorical { levels } => Kind::Categorical {
                    exact: levels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (l.clone(), i))
                        .collect(),
                    by_key: levels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (values::level_key(l), i))
                        .collect(),
                },
            })
            .collect();
        Encoder {
            offsets: schema.offsets(),
            kinds,
            n_features: schema.n_features(),
            reference: None,
        }
    }

    /// This encoder with date cells read as whole days before `reference`
    /// ([`crate::dates::days_before`]). Without one, a date cell is
    /// [`CellError::NoReferenceDate`] (a missing one is still missing).
    pub fn with_reference_date(mut self, reference: Option<NaiveDate>) -> Self {
        self.reference = reference;
        self
    }

    /// Sets the reference date in place ([`Encoder::with_reference_date`]): for a file whose
    /// rows each carry their own (an observation date), set before each row is encoded.
    pub fn set_reference_date(&mut self, reference: Option<NaiveDate>) {
        self.reference = reference;
    }

    /// The reference date date cells are counted from, if set.
    pub fn reference_date(&self) -> Option<NaiveDate> {
        self.reference
    }

    /// Length of the feature vector.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Writes schema column `column`'s encoding of `raw` into its slots of `out`
    /// (`out.len() == n_features()`); other slots are left alone.
    ///
    /// # Errors
    /// [`CellError`] when the cell cannot be read; its slots are then left as missing.
    pub fn encode_cell(
        &self,
        column: usize,
        raw: &str,
        out: &mut [f64],
    ) -> Result<CellNote, CellError> {
        let at = self.offsets[column];
        match &self.kinds[column] {
            Kind::Numeric => {
                out[at] = f64::NAN;
                let v = values::parse_number(raw).map_err(CellError::Number)?;
                out[at] = v.unwrap_or(f64::NAN);
                Ok(CellNote::Fine)
            }
            Kind::Boolean => {
                out[at] = f64::NAN;
                if values::is_missing(raw) {
                    return Ok(CellNote::Fine);
                }
                let b = values::parse_bool(raw).ok_or(CellError::Boolean)?;
                out[at] = if b { 1.0 } else { 0.0 };
                Ok(CellNote::Fine)
            }
            Kind::Date => {
                out[at] = f64::NAN;
                let Some(date) = dates::parse_date(raw).map_err(|_| CellError::Date)? else {
                    return Ok(CellNote::Fine);
                };
                let reference = self.reference.ok_or(CellError::NoReferenceDate)?;
                out[at] = dates::days_before(date, reference) as f64;
                Ok(CellNote::Fine)
            }
            Kind::Categorical { exact, by_key } => {
                out[at..at + by_key.len()].fill(0.0);
                if let Some(&i) = exact.get(raw) {
                    out[at + i] = 1.0;
                    return Ok(CellNote::Fine);
                }
                if values::is_missing(raw) {
                    return Ok(CellNote::Fine);
                }
                match by_key.get(&values::level_key(raw)) {
                    Some(&i) => {
                        out[at + i] = 1.0;
                        Ok(CellNote::Fine)
                    }
                    None => Ok(CellNote::UnseenLevel),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SourceColumn;

    fn schema() -> FeatureSchema {
        FeatureSchema {
            label: "y".into(),
            id_column: None,
            columns: vec![
                SourceColumn {
                    name: "n".into(),
                    kind: ColumnKind::Numeric,
                },
                SourceColumn {
                    name: "c".into(),
                    kind: ColumnKind::Categorical {
                        levels: vec!["DSL".into(), "Fiber optic".into()],
                    },
                },
                SourceColumn {
                    name: "b".into(),
                    kind: ColumnKind::Boolean,
                },
            ],
        }
    }

    #[test]
    fn encodes_each_kind() {
        let e = Encoder::new(&schema());
        let mut out = vec![9.0; e.n_features()];
        assert_eq!(e.encode_cell(0, " 1.5", &mut out), Ok(CellNote::Fine));
        assert_eq!(
            e.encode_cell(1, "FIBER  OPTIC", &mut out),
            Ok(CellNote::Fine)
        );
        assert_eq!(e.encode_cell(2, "yes", &mut out), Ok(CellNote::Fine));
        assert_eq!(out, vec![1.5, 0.0, 1.0, 1.0]);
        assert_eq!(e.encode_cell(0, "", &mut out), Ok(CellNote::Fine));
        assert!(out[0].is_nan());
        assert_eq!(
            e.encode_cell(1, "Cable", &mut out),
            Ok(CellNote::UnseenLevel)
        );
        assert_eq!(&out[1..3], &[0.0, 0.0]);
        assert_eq!(
            e.encode_cell(0, "abc", &mut out),
            Err(CellError::Number(NumberError::NotANumber))
        );
        assert_eq!(e.encode_cell(2, "maybe", &mut out), Err(CellError::Boolean));
    }

    #[test]
    fn dates_are_days_before_the_reference() {
        let mut s = schema();
        s.columns.push(SourceColumn {
            name: "signup".into(),
            kind: ColumnKind::Date,
        });
        let e = Encoder::new(&s);
        let mut out = vec![9.0; e.n_features()];
        assert_eq!(
            e.encode_cell(3, "2024-03-01", &mut out),
            Err(CellError::NoReferenceDate)
        );
        assert_eq!(e.encode_cell(3, "", &mut out), Ok(CellNote::Fine));
        assert!(out[4].is_nan());
        let e = e.with_reference_date(NaiveDate::from_ymd_opt(2025, 4, 17));
        assert_eq!(e.encode_cell(3, "2024-03-01", &mut out), Ok(CellNote::Fine));
        assert_eq!(out[4], 412.0);
        assert_eq!(
            e.encode_cell(3, "2025-04-20T08:00:00Z", &mut out),
            Ok(CellNote::Fine)
        );
        assert_eq!(out[4], -3.0);
        assert_eq!(
            e.encode_cell(3, "01/03/2024", &mut out),
            Err(CellError::Date)
        );
        assert!(out[4].is_nan());
    }
}
