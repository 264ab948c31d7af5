//! Mapping a file's columns onto a model's inputs, before any row is read.
//!
//! Column order never matters. Each model input (the customer id column, then every schema
//! feature) is matched to one file column by the first method that finds one:
//!
//! 1. **exact**: the same name;
//! 2. **normalised**: the same [`values::column_key`] (case, spaces, punctuation, accents ignored);
//! 3. **alias**: the same meaning in [`crate::aliases::GROUPS`] (`mrr` for `MonthlyCharges`,
//!    `account_age_days` for `tenure` with days converted to months);
//! 4. **fuzzy**: a typo within the words of the name (`TotalCharge`, `SeniorCitzen`,
//!    `MonthlyChrages`, `tenur`): at most [`MAX_TYPO_EDITS`] letters differ, and the header has
//!    no word or letters the name lacks. `tenure_year`, `tenure_d`, `TotalChargesPrev` or
//!    `MonthlyCharges (k)` may be another quantity or unit: never matched, only suggested.
//!
//! A file column serves at most one input. Two columns matching one input by the same method
//! tier (exact and normalised count as one tier) is an ambiguity the user must resolve, never
//! a silent choice.
//!
//! Names are compared as written: a header `" tenure"` (a space before it) or `"TENURE"` is a
//! *normalised* match, said so in its note, never an *exact* one, and the mapping reports the
//! header with its spaces. A person can overrule the automatic choice input by input with a
//! [`ManualMapping`] (the upload page's selects, the API's `mapping` form field), applied
//! before every automatic tier.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aliases;
use crate::artifact::Model;
use crate::schema::FeatureSchema;
use crate::values;

/// Most letters a header may differ from a long input name by (insertions, deletions,
/// substitutions, swaps of neighbours) and still be matched as a typo of it; one for a name of
/// up to 7 letters. Small, because a wrong match scores silently wrong while a missing column is
/// a clear message with suggestions.
pub const MAX_TYPO_EDITS: usize = 2;

/// Lowest similarity of a column suggested for a missing feature.
const SUGGEST_THRESHOLD: f64 = 0.6;

/// How a model input was matched to a file column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMethod {
    /// The same name.
    Exact,
    /// The same name ignoring case, spaces, punctuation and accents.
    Normalised,
    /// A known other name for the same thing.
    Alias,
    /// A similar name (probably a typo).
    Fuzzy,
    /// Chosen by a person ([`ManualMapping`]).
    Manual,
}

/// A person's choice of file column per model input: input name (model spelling) → the file's
/// header exactly as written, or `None` (JSON `null`, or `""`) for "no column: score this input
/// as missing". Inputs not named are mapped automatically.
pub type ManualMapping = BTreeMap<String, Option<String>>;

/// What a model input is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The customer id, copied to the output; optional (row numbers are used without it).
    Id,
    /// A feature the model reads; required.
    Feature,
}

/// One model input and the file column it reads.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct FeatureMatch {
    /// The input's name in the model (training spelling).
    pub feature: String,
    /// Id or feature.
    pub role: Role,
    /// `"id"`, or the feature type: `"numeric"`, `"boolean"`, `"categorical"`.
    #[serde(deserialize_with = "known_kind")]
    pub kind: KindName,
    /// The matched file column's name, `None` when unmatched.
    pub column: Option<String>,
    /// The matched column's 0-based position in the file.
    pub column_index: Option<usize>,
    /// How it was matched, `None` when unmatched.
    pub method: Option<MatchMethod>,
    /// 0–1: exact 1.0, normalised 0.98, alias 0.9 (0.85 with a unit conversion), fuzzy 0.9 ×
    /// similarity; 0 when unmatched.
    pub confidence: f64,
    /// Numbers read from the column are multiplied by this (a unit conversion), else 1.
    pub scale: f64,
    /// Why the match was made, in words (the alias meaning, the conversion, the similarity).
    pub note: Option<String>,
    /// The column holds dates read for this numeric input as the time before the file's
    /// reference date ([`crate::aliases::date_match`]: `last_login_date` for
    /// `days_since_last_login`), in days times `scale`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_date: bool,
}

/// A file column offered for a missing feature.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Suggestion {
    /// The file column's name.
    pub column: String,
    /// Jaro-Winkler similarity of the column keys, 0–1.
    pub similarity: f64,
}

/// A required feature no file column matched.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct MissingFeature {
    /// The feature's name in the model.
    pub feature: String,
    /// The closest unused file columns that could plausibly hold it, best first (at most 3):
    /// a similar name that is not a known name of another input ([`crate::aliases`]); a
    /// preview also drops columns whose first values the input could not read.
    pub suggestions: Vec<Suggestion>,
    /// True when a person chose "no column" for it ([`ManualMapping`]).
    pub by_choice: bool,
}

/// A model input matched by more than one file column.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DuplicateMatch {
    /// The input's name in the model.
    pub feature: String,
    /// Every file column that matched it (at least two).
    pub columns: Vec<String>,
    /// Their 0-based positions in the file, in the same order as `columns` (so two columns of
    /// one name can be told apart).
    pub positions: Vec<usize>,
}

/// How a file's header maps onto a model: what [`map_columns`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ColumnMapping {
    /// The customer id input, when the model has an id column.
    pub id: Option<FeatureMatch>,
    /// One entry per schema feature, in schema order.
    pub features: Vec<FeatureMatch>,
    /// Required features without a column (the file cannot be scored while any remain).
    pub missing: Vec<MissingFeature>,
    /// Inputs matched by several columns (the file cannot be scored while any remain).
    pub duplicates: Vec<DuplicateMatch>,
    /// File columns no input uses (a label or notes column), ignored when scoring. A column
    /// without a name is listed as `(column N)`, N counting from 1.
    pub unmapped: Vec<String>,
}

impl ColumnMapping {
    /// True when every feature has exactly one column: the file can be scored.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.duplicates.is_empty()
    }

    /// The file column index of each schema feature, when [`Self::is_complete`].
    pub fn feature_columns(&self) -> Option<Vec<usize>> {
        self.features.iter().map(|f| f.column_index).collect()
    }
}

/// Maps `header` (the file's column names as written: spaces kept, control characters
/// removed) onto `model`'s inputs. Never fails: problems are listed in the result
/// ([`ColumnMapping::missing`], [`ColumnMapping::duplicates`]).
pub fn map_columns(model: &Model, header: &[String]) -> ColumnMapping {
    map_to_schema(model.schema(), header)
}

/// [`map_columns`] with a person's choices applied first ([`ManualMapping`]).
///
/// # Errors
/// A sentence naming what is wrong with `manual`: an input the model does not have, a header
/// the file does not have (or has twice), or one column chosen for two inputs.
pub fn map_columns_with(
    model: &Model,
    header: &[String],
    manual: &ManualMapping,
) -> Result<ColumnMapping, String> {
    map_to_schema_with(model.schema(), header, manual)
}

/// [`map_columns`] for a bare schema (its `id_column` is the id input).
pub fn map_to_schema(schema: &FeatureSchema, header: &[String]) -> ColumnMapping {
    map_to_schema_with(schema, header, &ManualMapping::new()).expect("no manual choice to refuse")
}

/// The file column a person chose by its header: exactly as written, else the one header equal
/// to it once spaces around both are trimmed.
fn chosen_column(header: &[String], wanted: &str, input: &str) -> Result<usize, String> {
    let exact: Vec<usize> = (0..header.len()).filter(|&i| header[i] == wanted).collect();
    let hits = if exact.is_empty() {
        (0..header.len())
            .filter(|&i| !wanted.trim().is_empty() && header[i].trim() == wanted.trim())
            .collect()
    } else {
        exact
    };
    match hits.as_slice() {
        [i] => Ok(*i),
        [] => Err(format!(
            "mapping: {input} is mapped to {wanted:?}, which is not a column of the file (its columns: {})",
            header
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        many => Err(format!(
            "mapping: {input} is mapped to {wanted:?}, but the file has {} columns of that name (columns {}); rename all but one",
            many.len(),
            many.iter()
                .map(|i| (i + 1).to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

/// [`map_columns_with`] for a bare schema.
///
/// # Errors
/// As [`map_columns_with`].
pub fn map_to_schema_with(
    schema: &FeatureSchema,
    header: &[String],
    manual: &ManualMapping,
) -> Result<ColumnMapping, String> {
    struct Target {
        name: String,
        key: String,
        role: Role,
        kind: &'static str,
    }
    let mut targets: Vec<Target> = Vec::with_capacity(schema.columns.len() + 1);
    if let Some(id) = &schema.id_column {
        targets.push(Target {
            name: id.clone(),
            key: values::column_key(id),
            role: Role::Id,
            kind: "id",
        });
    }
    for c in &schema.columns {
        targets.push(Target {
            name: c.name.clone(),
            key: values::column_key(&c.name),
            role: Role::Feature,
            kind: c.kind.name(),
        });
    }
    let keys: Vec<String> = header.iter().map(|h| values::column_key(h)).collect();
    let mut used = vec![false; header.len()];
    let mut found: Vec<Option<FeatureMatch>> = vec![None; targets.len()];
    let mut dup = vec![false; targets.len()];
    // Inputs a person decided (a column, or none): no automatic tier touches them.
    let mut decided = vec![false; targets.len()];
    let mut duplicates = Vec::new();
    let matched = |t: &Target, i: usize, method, confidence, scale, note| FeatureMatch {
        feature: t.name.clone(),
        role: t.role,
        kind: t.kind,
        column: Some(header[i].clone()),
        column_index: Some(i),
        method: Some(method),
        confidence,
        scale,
        note,
        from_date: false,
    };

    // What each column is read as automatically, while no choice names that input: a choice
    // that takes such a column for another input would silently leave the first without its
    // column (scored as missing, or the file without its customer ids), so the person must say
    // where that input goes too.
    let auto: Vec<FeatureMatch> = if manual.is_empty() {
        Vec::new()
    } else {
        let m = map_to_schema_with(schema, header, &ManualMapping::new())?;
        m.id.into_iter()
            .chain(m.features)
            .filter(|f| f.column_index.is_some() && !manual.contains_key(&f.feature))
            .collect()
    };

    // One column chosen for two inputs is said as such, before either is checked against the
    // automatic mapping.
    let mut chosen: Vec<(&str, usize)> = Vec::new();
    for (input, choice) in manual {
        let Some(wanted) = choice.as_deref().filter(|c| !c.is_empty()) else {
            continue;
        };
        let Ok(i) = chosen_column(header, wanted, input) else {
            continue;
        };
        if let Some((other, _)) = chosen.iter().find(|(_, j)| *j == i) {
            return Err(format!(
                "mapping: column {:?} (column {}) is chosen for both {other} and {input}; one column reads one input",
                header[i],
                i + 1
            ));
        }
        chosen.push((input, i));
    }

    // Tier 0: a person's choices.
    for (input, choice) in manual {
        let Some(t) = targets.iter().position(|t| t.name == *input) else {
            return Err(format!(
                "mapping: the model has no input {input:?} (its inputs: {})",
                targets
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        decided[t] = true;
        let Some(wanted) = choice.as_deref().filter(|c| !c.is_empty()) else {
            continue;
        };
        let i = chosen_column(header, wanted, input)?;
        if let Some(other) = auto
            .iter()
            .find(|f| f.column_index == Some(i) && f.feature != *input)
        {
            let what = if other.role == Role::Id {
                format!("the file's customer id column (read as {})", other.feature)
            } else {
                format!(
                    "the column the automatic mapping reads as {}",
                    other.feature
                )
            };
            return Err(format!(
                "mapping: {input} is mapped to {:?} (column {}), {what}; taking it would leave {} without its column. Map {} too (to another column, or null to score it as missing), or choose another column for {input}",
                header[i],
                i + 1,
                other.feature,
                other.feature
            ));
        }
        if used[i] {
            let other = found
                .iter()
                .flatten()
                .find(|f| f.column_index == Some(i))
                .map_or("another input", |f| f.feature.as_str());
            return Err(format!(
                "mapping: column {:?} (column {}) is chosen for both {other} and {input}; one column reads one input",
                header[i],
                i + 1
            ));
        }
        used[i] = true;
        found[t] = Some(matched(
            &targets[t],
            i,
            MatchMethod::Manual,
            1.0,
            1.0,
            Some("chosen by hand".into()),
        ));
    }

    // Tier 1: exact or normalised name.
    for (t, target) in targets.iter().enumerate() {
        if decided[t] {
            continue;
        }
        let hits: Vec<usize> = (0..header.len())
            .filter(|&i| !used[i])
            .filter(|&i| !keys[i].is_empty() && (header[i] == target.name || keys[i] == target.key))
            .collect();
        match hits.as_slice() {
            [] => {}
            [i] => {
                let exact = header[*i] == target.name;
                let (method, confidence, note) = if exact {
                    (MatchMethod::Exact, 1.0, None)
                } else {
                    (
                        MatchMethod::Normalised,
                        0.98,
                        Some(normalised_note(&header[*i], &target.name)),
                    )
                };
                used[*i] = true;
                found[t] = Some(matched(target, *i, method, confidence, 1.0, note));
            }
            many => {
                dup[t] = true;
                many.iter().for_each(|&i| used[i] = true);
                duplicates.push(DuplicateMatch {
                    feature: target.name.clone(),
                    columns: many.iter().map(|&i| header[i].clone()).collect(),
                    positions: many.to_vec(),
                });
            }
        }
    }

    // Tier 2: the alias table.
    for (t, target) in targets.iter().enumerate() {
        // The alias table's names are quantities (durations with units, amounts): another
        // name there is not another name for a date column (but for the dates of its own
        // group: an outcome's date, [`aliases::names_dates`]).
        if found[t].is_some()
            || dup[t]
            || decided[t]
            || (target.kind == "date" && !aliases::names_dates(&target.name))
        {
            continue;
        }
        let numeric = target.kind == "numeric";
        let mut hits: Vec<(usize, aliases::AliasMatch)> = (0..header.len())
            .filter(|&i| !used[i])
            .filter_map(|i| {
                aliases::alias_match(&target.name, &header[i])
                    .or_else(|| {
                        numeric
                            .then(|| aliases::date_match(&target.name, &header[i]))
                            .flatten()
                    })
                    .map(|m| (i, m))
            })
            .collect();
        // A monthly amount beside an annual one (`mrr` and `arr`), a duration beside a date
        // (`days_since_last_login` and `last_login_date`): the first is read as it is, the
        // other is left alone (listed as unmapped), not an ambiguity.
        if hits.iter().any(|(_, m)| !m.per_year && !m.from_date) {
            hits.retain(|(_, m)| !m.per_year && !m.from_date);
        }
        match hits.as_slice() {
            [] => {}
            [(i, m)] => {
                let confidence = if m.conversion.is_some() { 0.85 } else { 0.9 };
                let note = match &m.conversion {
                    Some(c) => format!("another name for {}; {c}", m.meaning),
                    None => format!("another name for {}", m.meaning),
                };
                used[*i] = true;
                let mut f = matched(
                    target,
                    *i,
                    MatchMethod::Alias,
                    confidence,
                    m.scale,
                    Some(note),
                );
                f.from_date = m.from_date;
                found[t] = Some(f);
            }
            many => {
                dup[t] = true;
                many.iter().for_each(|&(i, _)| used[i] = true);
                duplicates.push(DuplicateMatch {
                    feature: target.name.clone(),
                    columns: many.iter().map(|(i, _)| header[*i].clone()).collect(),
                    positions: many.iter().map(|(i, _)| *i).collect(),
                });
            }
        }
    }

    // Tier 3: fuzzy, fewest edits first (then most similar), each column and input used once.
    let mut pairs: Vec<(usize, f64, usize, usize)> = Vec::new();
    for (t, target) in targets.iter().enumerate() {
        if found[t].is_some() || dup[t] || decided[t] {
            continue;
        }
        for i in (0..header.len()).filter(|&i| !used[i]) {
            if let Some(edits) = typo_of(&target.name, &header[i]) {
                let sim = strsim::jaro_winkler(&target.key, &keys[i]);
                pairs.push((edits, sim, t, i));
            }
        }
    }
    pairs.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.total_cmp(&a.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    for (edits, sim, t, i) in pairs {
        if found[t].is_some() || used[i] {
            continue;
        }
        used[i] = true;
        found[t] = Some(matched(
            &targets[t],
            i,
            MatchMethod::Fuzzy,
            0.9 * sim,
            1.0,
            Some(format!(
                "probably a typo of {} ({edits} letter{} differ{}; {:.0}% alike)",
                targets[t].name,
                if edits == 1 { "" } else { "s" },
                if edits == 1 { "s" } else { "" },
                sim * 100.0
            )),
        ));
    }

    let mut missing = Vec::new();
    let mut id = None;
    let mut features = Vec::with_capacity(schema.columns.len());
    for (t, target) in targets.iter().enumerate() {
        let m = found[t].take().unwrap_or_else(|| FeatureMatch {
            feature: target.name.clone(),
            role: target.role,
            kind: target.kind,
            column: None,
            column_index: None,
            method: None,
            confidence: 0.0,
            scale: 1.0,
            note: None,
            from_date: false,
        });
        if m.column.is_none() && !dup[t] && target.role == Role::Feature {
            missing.push(MissingFeature {
                feature: target.name.clone(),
                suggestions: if decided[t] {
                    Vec::new()
                } else {
                    suggest(
                        &target.name,
                        &target.key,
                        &schema.label,
                        header,
                        &keys,
                        &used,
                    )
                },
                by_choice: decided[t],
            });
        }
        match target.role {
            Role::Id => id = Some(m),
            Role::Feature => features.push(m),
        }
    }
    let unmapped = (0..header.len())
        .filter(|&i| !used[i])
        .map(|i| {
            if header[i].trim().is_empty() {
                format!("(column {})", i + 1)
            } else {
                header[i].clone()
            }
        })
        .collect();
    Ok(ColumnMapping {
        id,
        features,
        missing,
        duplicates,
        unmapped,
    })
}

/// The words of a name: runs of letters or digits, split at punctuation and spaces, at a
/// lower-to-upper case change (`MonthlyCharges`) and between letters and digits.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev = None;
            continue;
        }
        let split = prev.is_some_and(|p| {
            (p.is_lowercase() && c.is_uppercase()) || (p.is_alphabetic() != c.is_alphabetic())
        });
        if split && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
        prev = Some(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// How many letters header `column` differs from input `name` by (optimal string alignment
/// distance of their [`values::column_key`]s), when it reads as a typo of the name: at most
/// [`MAX_TYPO_EDITS`] (one for a name of up to 7 letters), and never a name with something the
/// input's name lacks: an extra word (`tenure_year`, `TotalChargesPrev`, `MonthlyCharges (k)`)
/// or the whole name with letters added (`tenured`, `tenure_d`). Such a header may be a
/// different quantity or another unit (a wrong number if read as the input); it is offered as a
/// suggestion instead. Nor a header the alias table gives to another input.
fn typo_of(name: &str, column: &str) -> Option<usize> {
    let (nk, ck) = (values::column_key(name), values::column_key(column));
    if nk.chars().count() < 3 || ck.chars().count() < 3 || nk == ck || ck.contains(&nk) {
        return None;
    }
    if words(column).len() > words(name).len() || aliases::names_another_input(name, column) {
        return None;
    }
    let budget = if nk.chars().count() <= 7 {
        1
    } else {
        MAX_TYPO_EDITS
    };
    let edits = strsim::osa_distance(&nk, &ck);
    (edits <= budget).then_some(edits)
}

/// What differs between a header and the input name it matched by [`values::column_key`], in
/// words, so that a trimmed or recased match is never taken for an exact one. Characters a
/// person cannot see (a tab, another control character, a byte-order mark, a no-break space)
/// are named with their code points, and the header is shown escaped (`"tenure\t"`).
fn normalised_note(header: &str, name: &str) -> String {
    let unseen = unseen_characters(header);
    if !unseen.is_empty() {
        return format!(
            "the same name with {} in it ({header:?})",
            unseen.join(" and ")
        );
    }
    let trimmed = header.trim();
    if trimmed == name {
        return format!("the same name with spaces around it ({header:?})");
    }
    let spaces = if trimmed != header {
        " and spaces around it"
    } else {
        ""
    };
    if trimmed.to_lowercase() == name.to_lowercase() {
        format!("the same name in other letter case{spaces}")
    } else {
        format!("the same name ignoring case, spacing and punctuation{spaces}")
    }
}

/// The characters of `header` a person cannot see, in words, each kind once in order of
/// appearance: `a tab (U+0009)`, `a byte-order mark (U+FEFF)`, `a control character (U+0001)`.
fn unseen_characters(header: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in header.chars() {
        let what = match c {
            '\t' => "a tab",
            '\r' | '\n' => "a line break",
            '\u{FEFF}' => "a byte-order mark",
            // A NUL, shown as its symbol in the names ([`crate::intake`]).
            '\u{2400}' => {
                let word = "a NUL character (U+0000)".to_owned();
                if !out.contains(&word) {
                    out.push(word);
                }
                continue;
            }
            '\u{A0}' | '\u{202F}' => "a no-break space",
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' => "a zero-width character",
            c if c.is_control() => "a control character",
            _ => continue,
        };
        let word = format!("{what} (U+{:04X})", u32::from(c));
        if !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// One column a model accepts, for a "supported columns" listing or a template.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SupportedColumn {
    /// The model's name for it (the preferred column name).
    pub feature: String,
    /// Id or feature.
    pub role: Role,
    /// `"id"`, `"numeric"`, `"boolean"`, `"categorical"` or `"date"`.
    pub kind: &'static str,
    /// True for features (a file without them cannot be scored); the id is optional.
    pub required: bool,
    /// The category levels the model knows (categorical only), matched ignoring case, spacing
    /// and punctuation.
    pub levels: Vec<String>,
    /// What the alias table says the column means, if it has an entry.
    pub meaning: Option<&'static str>,
    /// Other column names accepted through the alias table (also with unit suffixes such as
    /// `_days` or `_years` for durations, converted); names are compared ignoring case, spaces
    /// and punctuation.
    pub also_accepted: Vec<&'static str>,
}

/// What a date column means, in the supported-columns listing.
pub const DATE_MEANING: &str =
    "a date (2024-05-31, 2024/5/31 or a date-time), read as whole days before the file's reference date (its latest date, unless one is given)";

/// The columns `model` reads, id first, with their types, levels and accepted other names.
pub fn supported_columns(model: &Model) -> Vec<SupportedColumn> {
    let schema = model.schema();
    let entry = |name: &str, role, kind, levels: Vec<String>| {
        // A date column takes no alias: the table's other names are quantities.
        let group = aliases::group_of(name).filter(|_| kind != "date");
        let key = values::column_key(name);
        SupportedColumn {
            feature: name.to_string(),
            role,
            kind,
            required: role == Role::Feature,
            levels,
            meaning: if kind == "date" {
                Some(DATE_MEANING)
            } else {
                group.map(|g| g.meaning)
            },
            also_accepted: group
                .map(|g| {
                    g.names
                        .iter()
                        .map(|(n, _)| *n)
                        .filter(|n| values::column_key(n) != key)
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
    let mut out: Vec<SupportedColumn> = schema
        .id_column
        .iter()
        .map(|id| entry(id, Role::Id, "id", Vec::new()))
        .collect();
    for c in &schema.columns {
        let levels = match &c.kind {
            crate::schema::ColumnKind::Categorical { levels } => levels.clone(),
            _ => Vec::new(),
        };
        out.push(entry(&c.name, Role::Feature, c.kind.name(), levels));
    }
    out
}

/// Names of a churn label column (as column keys), besides the model's own label: the outcome
/// a file may carry is never a stand-in for an input.
const LABEL_KEYS: &[&str] = &[
    "churn",
    "churned",
    "exited",
    "attrition",
    "attritionflag",
    "label",
    "target",
];

/// Up to three unused columns most similar to `key` (input `name`'s key), best first. Never
/// offered, however similar the name: a column the alias table knows as another input
/// (`monthly_spend` for `TotalCharges`), the label (the model's `label`, or a usual name for
/// churn such as `Churn` or `Exited`), or a header of fewer than 3 letters (`x`, `a1`).
fn suggest(
    name: &str,
    key: &str,
    label: &str,
    header: &[String],
    keys: &[String],
    used: &[bool],
) -> Vec<Suggestion> {
    let label = values::column_key(label);
    let mut s: Vec<Suggestion> = (0..header.len())
        .filter(|&i| !used[i] && keys[i].chars().count() >= 3)
        .filter(|&i| keys[i] != label && !LABEL_KEYS.contains(&keys[i].as_str()))
        .filter(|&i| !aliases::names_another_input(name, &header[i]))
        .map(|i| Suggestion {
            column: header[i].clone(),
            similarity: (strsim::jaro_winkler(key, &keys[i]) * 100.0).round() / 100.0,
        })
        .filter(|s| s.similarity >= SUGGEST_THRESHOLD)
        .collect();
    s.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    s.truncate(3);
    s
}

/// `&'static str` under another name: serde borrows a field spelled `&str` from its input,
/// which a kind read back by [`known_kind`] does not need.
type KindName = &'static str;

/// Reads a stored [`FeatureMatch::kind`] back as the one `&'static str` of its spelling.
fn known_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
    ["id", "numeric", "boolean", "categorical", "date"]
        .into_iter()
        .find(|k| *k == text)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown input kind {text:?}: expected id, numeric, boolean, categorical or date"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &str) -> Vec<String> {
        names.split(',').map(str::to_string).collect()
    }

    fn telco() -> &'static FeatureSchema {
        Model::embedded_default().schema()
    }

    const TELCO: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges";

    fn method_of(m: &ColumnMapping, feature: &str) -> (Option<MatchMethod>, Option<String>) {
        let f = m
            .features
            .iter()
            .chain(m.id.iter())
            .find(|f| f.feature == feature)
            .unwrap();
        (f.method, f.column.clone())
    }

    #[test]
    fn exact_header_maps_everything_exactly() {
        let m = map_to_schema(telco(), &header(&format!("{TELCO},Churn")));
        assert!(m.is_complete());
        assert!(m
            .features
            .iter()
            .all(|f| f.method == Some(MatchMethod::Exact) && f.confidence == 1.0));
        assert_eq!(m.unmapped, vec!["Churn"]);
        assert_eq!(m.id.unwrap().column_index, Some(0));
    }

    #[test]
    fn every_tier_in_one_header_in_any_order() {
        let h = TELCO
            .replace("customerID", "user_id")
            .replace("tenure", "account_age_days")
            .replace("MonthlyCharges", "mrr")
            .replace("TotalCharges", "Total Charge")
            .replace("PaymentMethod", "payment-method")
            .replace("SeniorCitizen", "SeniorCitzen");
        let mut cols = header(&h);
        cols.reverse();
        let m = map_to_schema(telco(), &cols);
        assert!(m.is_complete(), "{m:?}");
        assert_eq!(
            method_of(&m, "customerID"),
            (Some(MatchMethod::Alias), Some("user_id".into()))
        );
        assert_eq!(method_of(&m, "tenure").0, Some(MatchMethod::Alias));
        assert_eq!(method_of(&m, "MonthlyCharges").0, Some(MatchMethod::Alias));
        assert_eq!(method_of(&m, "TotalCharges").0, Some(MatchMethod::Fuzzy));
        assert_eq!(
            method_of(&m, "PaymentMethod").0,
            Some(MatchMethod::Normalised)
        );
        assert_eq!(method_of(&m, "SeniorCitizen").0, Some(MatchMethod::Fuzzy));
        let tenure = m.features.iter().find(|f| f.feature == "tenure").unwrap();
        assert!((tenure.scale - 1.0 / 30.436875).abs() < 1e-12);
        assert!(tenure.note.as_deref().unwrap().contains("days converted"));
        assert!(m.unmapped.is_empty());
    }

    #[test]
    fn duplicates_and_missing_are_listed() {
        let h = format!("{TELCO},Monthly Charges").replace(",TotalCharges", ",Total");
        let m = map_to_schema(telco(), &header(&h));
        assert!(!m.is_complete());
        assert_eq!(
            m.duplicates,
            vec![DuplicateMatch {
                feature: "MonthlyCharges".into(),
                columns: vec!["MonthlyCharges".into(), "Monthly Charges".into()],
                positions: vec![18, 20],
            }]
        );
        assert_eq!(m.missing.len(), 1);
        assert_eq!(m.missing[0].feature, "TotalCharges");
        assert_eq!(m.missing[0].suggestions[0].column, "Total");
        // Two aliases for one feature.
        let h = TELCO.replace("MonthlyCharges", "mrr,monthly_fee");
        let m = map_to_schema(telco(), &header(&h));
        assert_eq!(m.duplicates[0].columns, vec!["mrr", "monthly_fee"]);
    }

    #[test]
    fn supported_columns_list_aliases_and_levels() {
        let cols = supported_columns(Model::embedded_default());
        assert_eq!(cols.len(), 20);
        assert_eq!((cols[0].role, cols[0].required), (Role::Id, false));
        assert!(cols[0].also_accepted.contains(&"user_id"));
        let monthly = cols.iter().find(|c| c.feature == "MonthlyCharges").unwrap();
        assert!(monthly.also_accepted.contains(&"mrr"));
        assert!(!monthly.also_accepted.contains(&"monthly_charges"));
        let contract = cols.iter().find(|c| c.feature == "Contract").unwrap();
        assert_eq!(contract.levels.len(), 3);
    }

    #[test]
    fn a_trimmed_or_recased_name_is_normalised_and_says_so() {
        let h = TELCO
            .replace("tenure", " tenure ")
            .replace("gender", "GENDER");
        let m = map_to_schema(telco(), &header(&h));
        let tenure = m.features.iter().find(|f| f.feature == "tenure").unwrap();
        assert_eq!(tenure.column.as_deref(), Some(" tenure "));
        assert_eq!(tenure.method, Some(MatchMethod::Normalised));
        assert!(tenure.note.as_deref().unwrap().contains("spaces around it"));
        let gender = m.features.iter().find(|f| f.feature == "gender").unwrap();
        assert!(gender.note.as_deref().unwrap().contains("letter case"));
        // Characters nobody sees are named, never an exact match.
        let h = TELCO
            .replace("tenure", "tenure\t")
            .replace("Contract", "Con\u{FEFF}tract")
            .replace("gender", "gender\u{1}");
        let m = map_to_schema(telco(), &header(&h));
        for (input, words) in [
            ("tenure", "a tab (U+0009)"),
            ("Contract", "a byte-order mark (U+FEFF)"),
            ("gender", "a control character (U+0001)"),
        ] {
            let f = m.features.iter().find(|f| f.feature == input).unwrap();
            assert_eq!(f.method, Some(MatchMethod::Normalised), "{input}");
            assert!(f.note.as_deref().unwrap().contains(words), "{f:?}");
        }
    }

    #[test]
    fn manual_choices_come_first_and_bad_ones_are_named() {
        let h = TELCO.replace("tenure", "Months with us");
        let mut manual = ManualMapping::new();
        manual.insert("tenure".into(), Some("Months with us".into()));
        manual.insert("TotalCharges".into(), None);
        let m = map_to_schema_with(telco(), &header(&h), &manual).unwrap();
        let tenure = m.features.iter().find(|f| f.feature == "tenure").unwrap();
        assert_eq!(tenure.method, Some(MatchMethod::Manual));
        assert_eq!(m.missing.len(), 1);
        assert!(m.missing[0].by_choice && m.missing[0].suggestions.is_empty());
        assert_eq!(m.unmapped, vec!["TotalCharges"]);
        // A choice resolves an ambiguity.
        let h = format!("{TELCO},Monthly Charges");
        let mut manual = ManualMapping::new();
        manual.insert("MonthlyCharges".into(), Some("Monthly Charges".into()));
        let m = map_to_schema_with(telco(), &header(&h), &manual).unwrap();
        assert!(m.duplicates.is_empty(), "{m:?}");
        assert_eq!(m.unmapped, vec!["MonthlyCharges"]);
        for (input, column, word) in [
            ("tenure", Some("nope"), "\"nope\""),
            ("nope", Some("tenure"), "no input \"nope\""),
        ] {
            let mut manual = ManualMapping::new();
            manual.insert(input.into(), column.map(String::from));
            let e = map_to_schema_with(telco(), &header(TELCO), &manual).unwrap_err();
            assert!(e.contains(word), "{e}");
        }
        let mut manual = ManualMapping::new();
        manual.insert("tenure".into(), Some("customerID".into()));
        let e = map_to_schema_with(telco(), &header(TELCO), &manual).unwrap_err();
        assert!(e.contains("customer id column"), "{e}");
        // Moving the id elsewhere frees its column.
        manual.insert("customerID".into(), None);
        map_to_schema_with(telco(), &header(TELCO), &manual).unwrap();
        let mut manual = ManualMapping::new();
        manual.insert("tenure".into(), Some("gender".into()));
        manual.insert("gender".into(), Some("gender".into()));
        let e = map_to_schema_with(telco(), &header(TELCO), &manual).unwrap_err();
        assert!(e.contains("both"), "{e}");
    }

    #[test]
    fn another_inputs_known_name_is_never_suggested() {
        // `monthly_charge` is as similar to TotalCharges as `Total amt`, but means
        // MonthlyCharges.
        let h = TELCO.replace(",TotalCharges", ",monthly_charge,Total amt");
        let m = map_to_schema(telco(), &header(&h));
        let offered: Vec<&str> = m.missing[0]
            .suggestions
            .iter()
            .map(|s| s.column.as_str())
            .collect();
        assert_eq!(offered, ["Total amt"]);
        assert!(strsim::jaro_winkler("totalcharges", "monthlycharge") >= SUGGEST_THRESHOLD);
    }

    /// The input of `feature` in `m`.
    fn input_of<'a>(m: &'a ColumnMapping, feature: &str) -> &'a FeatureMatch {
        m.id.iter()
            .chain(&m.features)
            .find(|f| f.feature == feature)
            .unwrap()
    }

    #[test]
    fn a_name_with_a_word_or_unit_letter_more_is_suggested_not_matched() {
        for (input, col) in [
            ("tenure", "tenure_year"),
            ("tenure", "tenure_y"),
            ("tenure", "tenure_d"),
            ("tenure", "tenured"),
            ("TotalCharges", "TotalChargesPrev"),
            ("TotalCharges", "total_charges_last_month"),
            ("MonthlyCharges", "MonthlyChargesDiscount"),
            ("MonthlyCharges", "MonthlyCharges (k)"),
            ("MonthlyCharges", "monthly_charge_cents"),
        ] {
            let h = TELCO.replacen(&format!(",{input}"), &format!(",{col}"), 1);
            let m = map_to_schema(telco(), &header(&h));
            assert_eq!(input_of(&m, input).column, None, "{col} read as {input}");
            let missing = m.missing.iter().find(|x| x.feature == input).unwrap();
            assert!(
                missing.suggestions.iter().any(|s| s.column == col),
                "{col} offered for {input}: {missing:?}"
            );
            assert_eq!(m.unmapped, vec![col.to_string()]);
        }
        // Real typos within the words still match, and say so.
        for (input, col) in [
            ("MonthlyCharges", "MonthlyChrages"),
            ("tenure", "tenur"),
            ("TotalCharges", "Total Charge"),
            ("SeniorCitizen", "SeniorCitzen"),
        ] {
            let h = TELCO.replacen(&format!(",{input}"), &format!(",{col}"), 1);
            let m = map_to_schema(telco(), &header(&h));
            let f = input_of(&m, input);
            assert_eq!(f.column.as_deref(), Some(col), "{m:?}");
            assert_eq!(f.method, Some(MatchMethod::Fuzzy));
            assert!(f.note.as_deref().unwrap().contains("typo"), "{f:?}");
        }
        // Named units still convert.
        for (col, scale) in [
            ("tenure_years", 12.0),
            ("Tenure (yrs)", 12.0),
            ("days_subscribed", 12.0 / 365.2425),
            ("TenureDays", 12.0 / 365.2425),
            ("tenure_weeks", 7.0 * 12.0 / 365.2425),
        ] {
            let m = map_to_schema(
                telco(),
                &header(&TELCO.replace(",tenure,", &format!(",{col},"))),
            );
            let f = input_of(&m, "tenure");
            assert_eq!(f.method, Some(MatchMethod::Alias), "{col}");
            assert!((f.scale - scale).abs() < 1e-12, "{col}: {f:?}");
        }
    }

    #[test]
    fn a_customers_age_is_not_their_tenure() {
        for age in ["Customer_Age", "Customer Age (years)", "lifetime"] {
            let m = map_to_schema(
                telco(),
                &header(&TELCO.replace(",tenure,", &format!(",{age},"))),
            );
            assert_eq!(input_of(&m, "tenure").column, None, "{age}");
        }
        let m = map_to_schema(
            telco(),
            &header(&TELCO.replace(",tenure,", ",Customer_Age,Months_on_book,")),
        );
        let tenure = input_of(&m, "tenure");
        assert_eq!(tenure.column.as_deref(), Some("Months_on_book"));
        assert_eq!(
            (tenure.method, tenure.scale),
            (Some(MatchMethod::Alias), 1.0)
        );
        assert_eq!(m.unmapped, vec!["Customer_Age"]);
    }

    #[test]
    fn a_choice_taking_another_inputs_column_names_both() {
        let mut manual = ManualMapping::new();
        manual.insert("tenure".into(), Some("MonthlyCharges".into()));
        let e = map_to_schema_with(telco(), &header(TELCO), &manual).unwrap_err();
        for word in ["tenure", "MonthlyCharges", "column 19", "null"] {
            assert!(e.contains(word), "{word}: {e}");
        }
        // Saying where the other input goes makes it a choice.
        manual.insert("MonthlyCharges".into(), None);
        let m = map_to_schema_with(telco(), &header(TELCO), &manual).unwrap();
        assert!(m
            .missing
            .iter()
            .any(|x| x.feature == "MonthlyCharges" && x.by_choice));
        let mut manual = ManualMapping::new();
        manual.insert("customerID".into(), Some("gender".into()));
        let e = map_to_schema_with(telco(), &header(TELCO), &manual).unwrap_err();
        assert!(e.contains("customerID") && e.contains("gender"), "{e}");
    }

    #[test]
    fn the_label_and_junk_headers_are_never_suggested() {
        let h = TELCO.replace(",tenure,", ",").to_string() + ",Churn,t,tn,Exited";
        let m = map_to_schema(telco(), &header(&h));
        let missing = m.missing.iter().find(|x| x.feature == "tenure").unwrap();
        assert!(missing.suggestions.is_empty(), "{missing:?}");
        assert!(strsim::jaro_winkler("tenure", "t") > 0.0);
    }

    #[test]
    fn blank_and_odd_names_never_match() {
        let m = map_to_schema(telco(), &header(",,x"));
        assert_eq!(m.missing.len(), telco().columns.len());
        assert_eq!(m.unmapped, vec!["(column 1)", "(column 2)", "x"]);
        let m = map_to_schema(telco(), &[]);
        assert_eq!(m.missing.len(), telco().columns.len());
    }
}
