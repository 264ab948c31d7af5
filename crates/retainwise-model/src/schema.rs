//! The feature schema: which source columns the model reads, how each is typed, and the encoded
//! feature vector they produce; plus its inference from a labelled training table.
//!
//! Encoded layout (the order trees index into): source columns in schema order; a numeric,
//! boolean or date column takes one slot, a categorical column one slot per level (one-hot).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::{dates, values};

/// At most this many distinct levels (after [`values::level_key`]) make a text column categorical.
pub const MAX_LEVELS: usize = 50;

/// A text column whose distinct values are at least this share of its non-missing values is
/// taken for an identifier and not used as a feature.
pub const ID_LIKE_UNIQUE_SHARE: f64 = 0.9;

/// A column is numeric when at least this share of its non-missing training values are finite
/// numbers; the rest are read as missing and reported (a stray typo should not turn a numeric
/// column into a categorical one).
pub const NUMERIC_SHARE: f64 = 0.98;

/// A column is a date column when at least this share of its non-missing training values are
/// dates in an accepted spelling ([`crate::dates`]); the rest are read as missing and reported,
/// as for numbers.
pub const DATE_SHARE: f64 = 0.98;

/// How a source column is typed and encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnKind {
    /// One slot: the number; missing (see [`values::MISSING_TOKENS`]) is NaN.
    Numeric,
    /// One slot: 1 for yes, 0 for no, NaN for missing.
    Boolean,
    /// One slot per level: 1 for the cell's level, 0 elsewhere. A missing or unseen level is
    /// all zeros. `levels` are display spellings; matching uses [`values::level_key`].
    Categorical {
        /// The training levels, in slot order.
        levels: Vec<String>,
    },
    /// One slot: whole days from the cell's date to the file's reference date (positive =
    /// before it; [`crate::dates::days_before`]); missing is NaN. The reference date is the
    /// latest date in any date column of the file being read, unless one is given.
    Date,
}

impl ColumnKind {
    /// `"numeric"`, `"boolean"`, `"categorical"` or `"date"`.
    pub fn name(&self) -> &'static str {
        match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Boolean => "boolean",
            ColumnKind::Categorical { .. } => "categorical",
            ColumnKind::Date => "date",
        }
    }

    /// Slots this column takes in the encoded feature vector.
    pub fn width(&self) -> usize {
        match self {
            ColumnKind::Numeric | ColumnKind::Boolean | ColumnKind::Date => 1,
            ColumnKind::Categorical { levels } => levels.len(),
        }
    }
}

/// One source column the model reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceColumn {
    /// The column name as it appeared in the training file's header.
    pub name: String,
    /// Its type and encoding.
    #[serde(flatten)]
    pub kind: ColumnKind,
}

/// The model's input contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// The label column the model was trained on (ignored when scoring).
    pub label: String,
    /// The customer id column, copied to the scored output when present.
    pub id_column: Option<String>,
    /// The feature columns in encoding order.
    pub columns: Vec<SourceColumn>,
}

impl FeatureSchema {
    /// True when some feature is a date column (reading a file then needs a reference date).
    pub fn has_dates(&self) -> bool {
        self.columns.iter().any(|c| c.kind == ColumnKind::Date)
    }

    /// Length of the encoded feature vector.
    pub fn n_features(&self) -> usize {
        self.columns.iter().map(|c| c.kind.width()).sum()
    }

    /// Start slot of each source column in the encoded vector.
    pub fn offsets(&self) -> Vec<usize> {
        let mut at = 0;
        self.columns
            .iter()
            .map(|c| {
                let start = at;
                at += c.kind.width();
                start
            })
            .collect()
    }

    /// Name of every encoded slot: the column name, or `column=level` for one-hot slots.
    pub fn feature_names(&self) -> Vec<String> {
        self.columns
            .iter()
            .flat_map(|c| match &c.kind {
                ColumnKind::Categorical { levels } => levels
                    .iter()
                    .map(|l| format!("{}={}", c.name, l))
                    .collect::<Vec<_>>(),
                _ => vec![c.name.clone()],
            })
            .collect()
    }

    /// The source column index owning each encoded slot (for summing contributions per column).
    pub fn slot_columns(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .flat_map(|(i, c)| std::iter::repeat_n(i, c.kind.width()))
            .collect()
    }

    /// Checks the schema on its own: names present and unique, levels present and distinct.
    ///
    /// # Errors
    /// A sentence naming the offending column.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = HashMap::new();
        for c in &self.columns {
            if c.name.trim().is_empty() {
                return Err("a feature column has an empty name".into());
            }
            if seen.insert(c.name.as_str(), ()).is_some() {
                return Err(format!("feature column {:?} appears twice", c.name));
            }
            if let ColumnKind::Categorical { levels } = &c.kind {
                if levels.is_empty() {
                    return Err(format!("categorical column {:?} has no levels", c.name));
                }
                let mut keys = HashMap::new();
                for l in levels {
                    if keys.insert(values::level_key(l), ()).is_some() {
                        return Err(format!(
                            "categorical column {:?} lists level {:?} twice",
                            c.name, l
                        ));
                    }
                }
            }
        }
        if self.columns.is_empty() {
            return Err("the schema has no feature columns".into());
        }
        Ok(())
    }
}

/// A training column left out of the features, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DroppedColumn {
    /// Header name.
    pub name: String,
    /// A short sentence, e.g. `"identifier: 7043 distinct values in 7043 rows"`.
    pub reason: String,
}

/// What [`infer`] decided.
#[derive(Clone, Debug)]
pub struct Inferred {
    /// The schema (label and id column included).
    pub schema: FeatureSchema,
    /// Columns left out, with reasons (the label is not listed).
    pub dropped: Vec<DroppedColumn>,
    /// Remarks for the training report, e.g. non-numeric values read as missing.
    pub notes: Vec<String>,
}

/// Infers the feature schema from a training table.
///
/// `header[i]` names column `i`, `cells[i]` holds its raw values (one per row).
/// `label` is the label column's index; `id_column`, when given, is dropped as the identifier;
/// when not given, the first text column that looks like an identifier becomes the id column.
///
/// Rules, in order: all-missing → dropped; date when at least [`DATE_SHARE`] of non-missing
/// values are dates ([`crate::dates`]; constant → dropped), dropped with the reason when at
/// least half but fewer are, or when they are day/month dates in an unstated order
/// (`03/04/2024`); distinct whole numbers (100+
/// rows) → identifier;
/// numeric when at least [`NUMERIC_SHARE`] of non-missing values are finite numbers and none is
/// zero-padded (`007` is a code); constant → dropped; boolean when every value is a yes/no
/// word; categorical when at most [`MAX_LEVELS`] levels; identifier when nearly all values are
/// distinct ([`ID_LIKE_UNIQUE_SHARE`]); otherwise dropped for too many levels.
pub fn infer(
    header: &[String],
    cells: &[Vec<String>],
    label: usize,
    id_column: Option<usize>,
) -> Inferred {
    let mut columns = Vec::new();
    let mut dropped = Vec::new();
    let mut notes = Vec::new();
    let mut detected_id: Option<usize> = None;
    for (i, name) in header.iter().enumerate() {
        if i == label {
            continue;
        }
        if Some(i) == id_column {
            dropped.push(DroppedColumn {
                name: name.clone(),
                reason: "the customer id column".into(),
            });
            continue;
        }
        let present: Vec<&str> = cells[i]
            .iter()
            .map(String::as_str)
            .filter(|v| !values::is_missing(v))
            .collect();
        let drop = |reason: String| DroppedColumn {
            name: name.clone(),
            reason,
        };
        if name.is_empty() {
            dropped.push(drop("the column has no name".into()));
            continue;
        }
        if present.is_empty() {
            dropped.push(drop("no values: every cell is missing".into()));
            continue;
        }
        // Dates first: a column of timestamps is nearly all distinct, which is not an identifier.
        // (The label and the id column never get here.)
        let dated: Vec<chrono::NaiveDate> = present
            .iter()
            .filter_map(|v| dates::parse_date(v).ok().flatten())
            .collect();
        if !dated.is_empty() && dated.len() as f64 >= DATE_SHARE * present.len() as f64 {
            let first = dated[0];
            if dated.iter().all(|d| *d == first) {
                dropped.push(drop(format!(
                    "constant: every value is {}",
                    dates::iso(first)
                )));
                continue;
            }
            let bad = present.len() - dated.len();
            if bad > 0 {
                let example = present
                    .iter()
                    .find(|v| dates::parse_date(v).is_err())
                    .copied()
                    .unwrap_or_default();
                notes.push(format!(
                    "column {name}: {bad} value(s) that are not dates read as missing (e.g. {example:?})"
                ));
            }
            columns.push(SourceColumn {
                name: name.clone(),
                kind: ColumnKind::Date,
            });
            continue;
        }
        if dated.len() * 2 >= present.len() {
            // Name a value that is not a date: it is usually a placeholder ("unknown") that an
            // empty cell would say better, and the column is often the most telling one.
            let example = present
                .iter()
                .find(|v| dates::parse_date(v).is_err())
                .copied()
                .unwrap_or_default();
            dropped.push(drop(format!(
                "mostly dates, but only {} of {} values are dates like {} (at least {:.0} % must be to read it as a date column); values such as {example:?} are not dates — leave those cells empty if they mean \"no date\"",
                dated.len(),
                present.len(),
                dates::EXAMPLE,
                DATE_SHARE * 100.0
            )));
            continue;
        }
        let ambiguous = present.iter().filter(|v| dates::looks_ambiguous(v)).count();
        if ambiguous as f64 >= DATE_SHARE * present.len() as f64 {
            let example = present
                .iter()
                .find(|v| dates::looks_ambiguous(v))
                .copied()
                .unwrap_or_default();
            dropped.push(drop(format!(
                "looks like dates in an ambiguous day/month order (e.g. {example:?}); write them as ISO 8601 dates ({}) to use this column",
                dates::EXAMPLE
            )));
            continue;
        }
        let numbers: Vec<f64> = present
            .iter()
            .filter_map(|v| values::parse_number(v).ok().flatten())
            .collect();
        // Zero-padded codes ("00042") and columns of distinct integers are identifiers, not
        // quantities, even though they parse as numbers.
        let zero_padded = present.iter().any(|v| {
            let t = v.trim().trim_start_matches(['+', '-']);
            t.len() > 1 && t.starts_with('0') && t.as_bytes()[1].is_ascii_digit()
        });
        let all_distinct_integers = numbers.len() == present.len()
            && present.len() >= 100
            && numbers.iter().all(|x| x.fract() == 0.0)
            && {
                let mut sorted = numbers.clone();
                sorted.sort_by(f64::total_cmp);
                sorted.windows(2).all(|w| w[0] != w[1])
            };
        if all_distinct_integers && !zero_padded {
            if id_column.is_none() && detected_id.is_none() {
                detected_id = Some(i);
            }
            dropped.push(drop(format!(
                "identifier: {} distinct whole numbers in {} rows",
                numbers.len(),
                present.len()
            )));
            continue;
        }
        if !zero_padded && numbers.len() as f64 >= NUMERIC_SHARE * present.len() as f64 {
            let first = numbers[0];
            if numbers.iter().all(|x| *x == first) {
                dropped.push(drop(format!("constant: every value is {first}")));
                continue;
            }
            let bad = present.len() - numbers.len();
            if bad > 0 {
                let example = present
                    .iter()
                    .find(|v| values::parse_number(v).is_err())
                    .copied()
                    .unwrap_or_default();
                notes.push(format!(
                    "column {name}: {bad} non-numeric value(s) read as missing (e.g. {example:?})"
                ));
            }
            columns.push(SourceColumn {
                name: name.clone(),
                kind: ColumnKind::Numeric,
            });
            continue;
        }
        // Distinct levels by matching key, keeping the first spelling seen for display.
        let mut level_of: HashMap<String, usize> = HashMap::new();
        let mut levels: Vec<String> = Vec::new();
        for v in &present {
            let key = values::level_key(v);
            if let std::collections::hash_map::Entry::Vacant(e) = level_of.entry(key) {
                e.insert(levels.len());
                levels.push(v.trim().to_string());
            }
        }
        if levels.len() == 1 {
            dropped.push(drop(format!("constant: every value is {:?}", levels[0])));
            continue;
        }
        if present.iter().all(|v| values::is_bool_word(v)) {
            let truth: Vec<bool> = present
                .iter()
                .filter_map(|v| values::parse_bool(v))
                .collect();
            if truth.iter().all(|t| *t == truth[0]) {
                dropped.push(drop(format!("constant: every value is {:?}", present[0])));
            } else {
                columns.push(SourceColumn {
                    name: name.clone(),
                    kind: ColumnKind::Boolean,
                });
            }
            continue;
        }
        if levels.len() <= MAX_LEVELS {
            levels.sort_by_key(|l| values::level_key(l));
            columns.push(SourceColumn {
                name: name.clone(),
                kind: ColumnKind::Categorical { levels },
            });
        } else if levels.len() as f64 >= ID_LIKE_UNIQUE_SHARE * present.len() as f64 {
            if id_column.is_none() && detected_id.is_none() {
                detected_id = Some(i);
            }
            dropped.push(drop(format!(
                "identifier: {} distinct values in {} rows",
                levels.len(),
                present.len()
            )));
        } else {
            dropped.push(drop(format!(
                "too many categories: {} distinct values (at most {MAX_LEVELS} are used)",
                levels.len()
            )));
        }
    }
    let id = id_column.or(detected_id).map(|i| header[i].clone());
    Inferred {
        schema: FeatureSchema {
            label: header[label].clone(),
            id_column: id,
            columns,
        },
        dropped,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn infers_types_and_drops() {
        let header = col(&["id", "age", "plan", "paperless", "label", "const", "note"]);
        let n = 60;
        let ids: Vec<String> = (0..n).map(|i| format!("C{i:04}")).collect();
        let ages: Vec<String> = (0..n)
            .map(|i| {
                if i == 3 {
                    " ".into()
                } else {
                    format!("{}", 20 + i)
                }
            })
            .collect();
        let plans: Vec<String> = (0..n)
            .map(|i| ["Basic", "basic ", "Pro"][i % 3].to_string())
            .collect();
        let paperless: Vec<String> = (0..n).map(|i| ["Yes", "No"][i % 2].to_string()).collect();
        let labels: Vec<String> = (0..n).map(|i| ["1", "0"][i % 2].to_string()).collect();
        let constant: Vec<String> = vec!["x".into(); n];
        let notes: Vec<String> = (0..n).map(|i| format!("note {}", i % 52)).collect();
        let cells = vec![ids, ages, plans, paperless, labels, constant, notes];
        let inf = infer(&header, &cells, 4, None);
        let kinds: Vec<(&str, &str)> = inf
            .schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.kind.name()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("age", "numeric"),
                ("plan", "categorical"),
                ("paperless", "boolean")
            ]
        );
        assert_eq!(
            inf.schema.columns[1].kind,
            ColumnKind::Categorical {
                levels: vec!["Basic".into(), "Pro".into()]
            }
        );
        assert_eq!(inf.schema.id_column.as_deref(), Some("id"));
        assert_eq!(inf.schema.n_features(), 4);
        assert_eq!(
            inf.schema.feature_names(),
            vec!["age", "plan=Basic", "plan=Pro", "paperless"]
        );
        let reasons: Vec<&str> = inf.dropped.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(reasons, vec!["id", "const", "note"]);
        assert!(inf.dropped[2].reason.starts_with("too many categories"));
    }

    #[test]
    fn numeric_looking_identifiers_are_dropped() {
        let header = col(&["code", "number", "y"]);
        let codes: Vec<String> = (0..120).map(|i| format!("{:04}", i % 30)).collect();
        let numbers: Vec<String> = (0..120).map(|i| (1000 + 7 * i).to_string()).collect();
        let ys: Vec<String> = (0..120).map(|i| (i % 2).to_string()).collect();
        let inf = infer(&header, &[codes, numbers, ys], 2, None);
        // Zero-padded codes are text: 30 levels, categorical.
        assert_eq!(inf.schema.columns[0].kind.name(), "categorical");
        assert_eq!(inf.schema.columns.len(), 1);
        assert!(inf.dropped[0].reason.starts_with("identifier"));
        assert_eq!(inf.schema.id_column.as_deref(), Some("number"));
    }

    #[test]
    fn numeric_with_a_stray_typo_stays_numeric() {
        let header = col(&["x", "y"]);
        let mut xs: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        xs[7] = "abc".into();
        let ys: Vec<String> = (0..100).map(|i| (i % 2).to_string()).collect();
        let inf = infer(&header, &[xs, ys], 1, None);
        assert_eq!(inf.schema.columns[0].kind, ColumnKind::Numeric);
        assert_eq!(inf.notes.len(), 1);
    }

    /// `n` distinct ISO dates starting 2023-01-01, every `step` days.
    fn iso_dates(n: usize, step: i64) -> Vec<String> {
        let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        (0..n)
            .map(|i| dates::iso(dates::date_days_before(start, -(i as i64) * step).unwrap()))
            .collect()
    }

    #[test]
    fn date_columns_are_inferred_in_each_accepted_spelling() {
        let header = col(&["signup", "last_seen", "renewal", "y"]);
        let n = 120;
        let signup = iso_dates(n, 3);
        let last_seen: Vec<String> = iso_dates(n, 1)
            .iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "{d}T{:02}:15:00.250{}",
                    i % 24,
                    ["Z", "+02:00", "-05:00"][i % 3]
                )
            })
            .collect();
        let renewal: Vec<String> = iso_dates(n, 2)
            .iter()
            .map(|d| d.replace('-', "/"))
            .collect();
        let ys: Vec<String> = (0..n).map(|i| (i % 2).to_string()).collect();
        let inf = infer(&header, &[signup, last_seen, renewal, ys], 3, None);
        let kinds: Vec<(&str, &ColumnKind)> = inf
            .schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), &c.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("signup", &ColumnKind::Date),
                ("last_seen", &ColumnKind::Date),
                ("renewal", &ColumnKind::Date)
            ],
            "{:?}",
            inf.dropped
        );
        // Nearly distinct timestamps are dates, not an identifier.
        assert_eq!(inf.schema.id_column, None);
        assert!(inf.schema.has_dates());
        assert_eq!(inf.schema.n_features(), 3);
        assert!(inf.notes.is_empty(), "{:?}", inf.notes);
    }

    #[test]
    fn ambiguous_day_month_dates_are_dropped_with_the_reason() {
        let header = col(&["joined", "y"]);
        let joined: Vec<String> = (0..100)
            .map(|i| format!("{:02}/{:02}/2024", 1 + i % 28, 1 + i % 12))
            .collect();
        let ys: Vec<String> = (0..100).map(|i| (i % 2).to_string()).collect();
        let inf = infer(&header, &[joined, ys], 1, None);
        assert!(inf.schema.columns.is_empty());
        let reason = &inf.dropped[0].reason;
        assert!(
            reason.contains("ambiguous day/month order") && reason.contains("ISO 8601"),
            "{reason}"
        );
    }

    #[test]
    fn the_date_share_decides_between_97_and_99_percent() {
        let header = col(&["d", "y"]);
        let ys: Vec<String> = (0..100).map(|i| (i % 2).to_string()).collect();
        let with_bad = |bad: usize| {
            let mut d = iso_dates(100, 1);
            for cell in d.iter_mut().take(bad) {
                *cell = "soon".into();
            }
            infer(&header, &[d, ys.clone()], 1, None)
        };
        let ninety_nine = with_bad(1);
        assert_eq!(ninety_nine.schema.columns[0].kind, ColumnKind::Date);
        assert_eq!(ninety_nine.notes.len(), 1, "{:?}", ninety_nine.notes);
        assert!(ninety_nine.notes[0].contains("\"soon\""));
        let ninety_seven = with_bad(3);
        assert!(ninety_seven.schema.columns.is_empty());
        assert!(
            ninety_seven.dropped[0]
                .reason
                .starts_with("mostly dates, but only 97 of 100 values are dates"),
            "{:?}",
            ninety_seven.dropped
        );
        assert!(
            ninety_seven.dropped[0].reason.contains("such as \"soon\""),
            "{:?}",
            ninety_seven.dropped
        );
    }

    #[test]
    fn validate_rejects_duplicates() {
        let mut s = FeatureSchema {
            label: "y".into(),
            id_column: None,
            columns: vec![SourceColumn {
                name: "a".into(),
                kind: ColumnKind::Numeric,
            }],
        };
        assert!(s.validate().is_ok());
        s.columns.push(s.columns[0].clone());
        assert!(s.validate().is_err());
    }
}
