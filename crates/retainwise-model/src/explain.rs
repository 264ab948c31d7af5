//! Per-customer explanations: exact TreeSHAP contributions per source column, turned into the
//! top risk drivers and protective factors (in probability points), a one-line summary and a
//! recommendation.
//!
//! # Exact SHAP values of the blended model
//! The model's log-odds are `F(x) = c + a·T(x) + b·L(x)` ([`crate::blend`]): trees `T` and a
//! logistic regression `L(x) = β₀ + Σ_k w_k (f_k(x_j) − μ_k)` ([`crate::linear`]). TreeSHAP
//! ([`crate::shap`]) splits `T(x) = T₀ + Σ_j φ_j^T`; the linear part's exact SHAP values are
//! its terms `w_k (f_k(x_j) − μ_k)` (0 for a missing value, which the regression reads as the
//! mean), with base value `β₀`. Both parts are affine in `F`, so `F(x) = F₀ + Σ_c φ_c` with
//! `F₀ = c + a·T₀ + b·β₀` and `φ_c` = `a ·` the TreeSHAP values plus `b ·` the terms of the
//! column's slots (one-hot slots, and a value's identity and log terms, add up to the column).
//!
//! # From log-odds to probability points
//! Probabilities are not additive in log-odds, so each contribution is scaled by the same
//! factor, the slope of the secant of the calibration map `g` (the logistic function `σ`, or the
//! isotonic map when cross-validation chose it) between `F₀` and `F(x)`:
//!
//! ```text
//! impact_c = 100 · φ_c · (p − p₀) / (F(x) − F₀),   p = g(F(x)), p₀ = g(F₀)
//! ```
//!
//! (the tangent slope when `F(x) = F₀`). The impacts are in percentage points and add up
//! exactly to `100 · (p − p₀)`: the customer's distance from the average customer's risk. The
//! sign and the ranking of the columns are those of the SHAP values. With isotonic calibration
//! the SHAP values are those of the pre-calibration log-odds `F` (a monotone map has no additive
//! split of its own), and only their conversion to points goes through the calibrated map.
//!
//! # Correlated columns ranked as one
//! Some columns say one thing twice: total charges are, near enough, tenure × monthly charges,
//! so for a new customer the model's risk is split between a short tenure and the small total
//! it implies, and a lone "total charges of 30 raises the risk" reads as "a low bill is a
//! risk" — advice about nothing. SHAP values are additive, so a group's contribution is the sum
//! of its members' (Lundberg & Lee 2017, the additivity property; grouping correlated features
//! is the usual remedy, Molnar, *Interpretable Machine Learning*, §9.6 "Shapley values" on
//! correlated features). [`GROUPS`] lists such pairs by their alias-table meanings: when both
//! values of a row are present, the second column's contribution is counted with the first's
//! ([`Factor::with`]), ranked and worded as one factor ("tenure of 1 (with the total charges
//! it brings)"). The per-column values `phi` stay exact; the impacts still add up.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::blend::Predictor;
use crate::dates;
use crate::quality::{flag_of, Flag, FlagKind};
use crate::schema::{ColumnKind, FeatureSchema};
use crate::score::RiskLevel;
use crate::shap::TreeExplainer;

/// At most this many risk drivers, and separately protective factors, are listed per customer.
pub const TOP_FACTORS: usize = 3;

/// A factor whose impact rounds to less than this (percentage points) is not listed.
pub const MIN_IMPACT_POINTS: f64 = 0.05;

/// Pairs of columns ranked as one factor (see the module doc), by their meanings in
/// [`crate::aliases::GROUPS`]: the first is named, the second counted with it.
pub const GROUPS: &[(&str, &str, &str)] = &[(
    "tenure (time as a customer)",
    "total charges",
    "with the total charges it brings",
)];

/// Tenure (in the model's unit, months for the Telco data) below which a customer is new: the
/// first half-year, the baseline's short-tenure band ([`crate::baseline`]).
pub const NEW_CUSTOMER_MONTHS: f64 = 6.0;

/// One source column's part in a customer's score. Borrows from the [`Explainer`] so that
/// explaining a row allocates little (it runs for every scored row).
#[derive(Clone, Debug, PartialEq)]
pub struct Factor<'a> {
    /// Schema column index.
    pub column: usize,
    /// The column's name as in the model's schema.
    pub feature: &'a str,
    /// The customer's value as the model read it: the category level, `Yes`/`No`, the number,
    /// for a date `"2024-03-01 (412 days before 2025-04-17)"` (the reference date), or
    /// `"missing"` when absent or an unseen category.
    pub value: Cow<'a, str>,
    /// Effect on the churn probability in percentage points (positive raises the risk); with
    /// `with`, the two columns' effects together.
    pub impact: f64,
    /// A correlated column whose effect is counted in this factor's ([`GROUPS`]), if any: its
    /// schema index and name.
    pub with: Option<(usize, &'a str)>,
}

/// What [`Explainer::explain`] found for one customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation<'a> {
    /// Up to [`TOP_FACTORS`] columns raising the risk, largest first.
    pub risk_factors: Vec<Factor<'a>>,
    /// Up to [`TOP_FACTORS`] columns lowering the risk, largest effect first (negative impacts).
    pub protective_factors: Vec<Factor<'a>>,
    /// The average customer's churn probability `p₀ = g(F₀)`.
    pub base_probability: f64,
    /// This customer's churn probability `p = g(F(x))`.
    pub probability: f64,
    /// The model output `F(x)` in log-odds.
    pub log_odds: f64,
    /// The base value `F₀` in log-odds: `F₀ + Σ_c φ_c = F(x)`.
    pub base_value: f64,
}

/// How a column's value is recovered from the encoded row and put into words.
#[derive(Clone, Debug)]
struct Column {
    name: String,
    /// The name in lower-case words: `MonthlyCharges` → `monthly charges`.
    words: String,
    offset: usize,
    kind: ColumnKind,
}

/// Explains churn scores of one model: exact SHAP values per source column plus the wording
/// rules. Build once per model; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Explainer {
    shap: TreeExplainer,
    columns: Vec<Column>,
    predictor: Predictor,
    /// The linear part's terms with the blend weight applied, and the column of each.
    linear_terms: Vec<(crate::linear::LinearTerm, usize)>,
    /// `F₀` (see the module doc).
    base_value: f64,
    /// Grouped columns ([`GROUPS`]): (named column, column counted with it, how the second is
    /// said).
    groups: Vec<(usize, usize, &'static str)>,
    /// Per column, per categorical level: the level's phrase, built once at load so that a
    /// row's summary neither lower-cases nor compares text again (empty for other kinds).
    level_phrases: Vec<Vec<String>>,
    /// Per column: the recommended action for it as top driver, read as non-numeric and as
    /// numeric, when the action does not depend on the value (`None`: built per row).
    actions: Vec<[Option<String>; 2]>,
    /// Per column: months per unit of the tenure column (the new-customer rule), else `None`.
    tenure_unit: Vec<Option<f64>>,
}

impl Explainer {
    /// Builds the explainer of `predictor` over `schema` (assumed consistent, as in a
    /// [`crate::Model`]).
    pub fn new(schema: &FeatureSchema, predictor: &Predictor) -> Explainer {
        let slot_columns = schema.slot_columns();
        let shap = TreeExplainer::new(&predictor.forest, &slot_columns);
        let blend = &predictor.blend;
        let (linear_terms, base_value) = match &predictor.linear {
            Some(l) => (
                l.terms
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t.coef *= blend.linear_weight;
                        let column = slot_columns[t.slot];
                        (t, column)
                    })
                    .collect(),
                blend.combine(shap.base_value(), l.intercept),
            ),
            None => (Vec::new(), predictor.combine(shap.base_value(), &[])),
        };
        let columns = schema
            .columns
            .iter()
            .zip(schema.offsets())
            .map(|(c, offset)| Column {
                name: c.name.clone(),
                words: words(&c.name),
                offset,
                kind: c.kind.clone(),
            })
            .collect();
        let numeric_of = |meaning: &str| {
            schema.columns.iter().position(|c| {
                c.kind == ColumnKind::Numeric
                    && crate::aliases::meaning_of(&c.name) == Some(meaning)
            })
        };
        let groups = GROUPS
            .iter()
            .filter_map(|(a, b, words)| Some((numeric_of(a)?, numeric_of(b)?, *words)))
            .collect();
        let mut x = Explainer {
            shap,
            columns,
            predictor: predictor.clone(),
            linear_terms,
            base_value,
            groups,
            level_phrases: Vec::new(),
            actions: Vec::new(),
            tenure_unit: Vec::new(),
        };
        // The per-row text that depends only on the column (and a category's level), made by
        // the same functions a row would call, so the precomputed text is the same by
        // construction.
        let dummy = |c: usize, value: &'static str| Factor {
            column: c,
            feature: &x.columns[c].name,
            value: Cow::Borrowed(value),
            impact: 0.0,
            with: None,
        };
        let level_phrases = (0..x.columns.len())
            .map(|c| match &x.columns[c].kind {
                ColumnKind::Categorical { levels } => levels
                    .iter()
                    .map(|l| {
                        x.phrase_one(&Factor {
                            value: Cow::Borrowed(l.as_str()),
                            ..dummy(c, "")
                        })
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let actions = (0..x.columns.len())
            .map(|c| {
                [false, true].map(|numeric| {
                    let a = action(&dummy(c, "\u{0}a"), numeric);
                    (a == action(&dummy(c, "\u{0}b"), numeric)).then_some(a)
                })
            })
            .collect();
        let tenure_unit = x
            .columns
            .iter()
            .map(|c| {
                (crate::aliases::meaning_of(&c.name) == Some(GROUPS[0].0))
                    .then(|| crate::aliases::months_per_unit(&c.name).unwrap_or(1.0))
            })
            .collect();
        x.level_phrases = level_phrases;
        x.actions = actions;
        x.tenure_unit = tenure_unit;
        x
    }

    /// The TreeSHAP explainer of the trees alone, one output group per schema column.
    pub fn shap(&self) -> &TreeExplainer {
        &self.shap
    }

    /// The base value `F₀` of the whole model, in log-odds: the expected output, to which the
    /// contributions of [`Explainer::explain`] add.
    pub fn base_value(&self) -> f64 {
        self.base_value
    }

    /// Number of source columns (length of the contribution vector).
    pub fn n_columns(&self) -> usize {
        self.columns.len()
    }

    /// Explains encoded row `features` (NaN = missing). `phi` is scratch space of length
    /// [`Explainer::n_columns`]; on return it holds the log-odds contribution of each column
    /// (`base_value + Σ phi = log_odds`). The trees' output comes from the same pass
    /// ([`TreeExplainer::contributions`]), so the model output equals
    /// [`crate::blend::Predictor::log_odds`] to the bit.
    ///
    /// Date values are shown as day counts only (`"412 days before the reference date"`); use
    /// [`Explainer::explain_at`] to show the dates themselves.
    pub fn explain(&self, features: &[f64], phi: &mut [f64]) -> Explanation<'_> {
        self.explain_at(features, phi, None)
    }

    /// [`Explainer::explain`] for a row whose date columns were counted from `reference` (the
    /// file's reference date), so that a date factor's value reads
    /// `"2024-03-01 (412 days before 2025-04-17)"`.
    pub fn explain_at(
        &self,
        features: &[f64],
        phi: &mut [f64],
        reference: Option<NaiveDate>,
    ) -> Explanation<'_> {
        let t = self.shap.contributions(features, phi);
        let log_odds = self.predictor.combine(t, features);
        let a = self.predictor.blend.tree_weight;
        if a != 1.0 {
            phi.iter_mut().for_each(|v| *v *= a);
        }
        for (term, c) in &self.linear_terms {
            phi[*c] += term.contribution(features);
        }
        let f0 = self.base_value;
        let calibration = &self.predictor.calibration;
        let p = calibration.probability(log_odds);
        let p0 = calibration.probability(f0);
        let delta = log_odds - f0;
        // Secant slope of the calibration map between F₀ and F(x); tangent when they coincide.
        let slope = if delta.abs() > 1e-9 {
            (p - p0) / delta
        } else {
            calibration.slope(log_odds)
        };
        // Grouped columns of this row (both values present): the second is counted with the
        // first, and ranked nowhere on its own.
        let mut with = [None; 2];
        for (g, &(a, b, _)) in self.groups.iter().take(with.len()).enumerate() {
            let present = |c: usize| !features[self.columns[c].offset].is_nan();
            if present(a) && present(b) {
                with[g] = Some((a, b));
            }
        }
        let partner = |c: usize| with.iter().flatten().find(|g| g.0 == c).map(|g| g.1);
        let merged = |c: usize| with.iter().flatten().any(|g| g.1 == c);
        // Each column's ranked value once (the scans below read them many times), on the
        // stack for the usual column counts.
        let mut on_stack = [0.0f64; 64];
        let mut on_heap = Vec::new();
        let ranked_values: &mut [f64] = if phi.len() <= on_stack.len() {
            &mut on_stack[..phi.len()]
        } else {
            on_heap.resize(phi.len(), 0.0);
            &mut on_heap
        };
        for (c, r) in ranked_values.iter_mut().enumerate() {
            *r = if merged(c) {
                0.0
            } else {
                phi[c] + partner(c).map_or(0.0, |b| phi[b])
            };
        }
        let ranked_values = &*ranked_values;
        let ranked = |c: usize| ranked_values[c];
        let factor = |c: usize| Factor {
            column: c,
            feature: &self.columns[c].name,
            value: self.value(c, features, reference),
            impact: 100.0 * ranked(c) * slope,
            with: partner(c).map(|b| (b, self.columns[b].name.as_str())),
        };
        // A flat stretch of an isotonic map gives slope 0: no column moves the probability.
        let min_phi = if slope > 0.0 {
            MIN_IMPACT_POINTS / (100.0 * slope)
        } else {
            f64::INFINITY
        };
        let n = phi.len();
        let risk_factors = top(n, ranked, |v| v >= min_phi, |a, b| a > b)
            .into_iter()
            .map(factor)
            .collect();
        let protective_factors = top(n, ranked, |v| v <= -min_phi, |a, b| a < b)
            .into_iter()
            .map(factor)
            .collect();
        Explanation {
            risk_factors,
            protective_factors,
            base_probability: p0,
            probability: p,
            log_odds,
            base_value: f0,
        }
    }

    /// Column `c`'s value as read from the encoded row.
    fn value<'a>(
        &'a self,
        c: usize,
        features: &[f64],
        reference: Option<NaiveDate>,
    ) -> Cow<'a, str> {
        let col = &self.columns[c];
        let x = features[col.offset];
        match &col.kind {
            ColumnKind::Numeric if x.is_nan() => Cow::Borrowed(MISSING),
            ColumnKind::Numeric => Cow::Owned(readable(x)),
            ColumnKind::Boolean if x.is_nan() => Cow::Borrowed(MISSING),
            ColumnKind::Boolean if x == 1.0 => Cow::Borrowed("Yes"),
            ColumnKind::Boolean => Cow::Borrowed("No"),
            ColumnKind::Date if x.is_nan() => Cow::Borrowed(MISSING),
            ColumnKind::Date => {
                let days = x as i64;
                let when = dates::relative(days);
                let date = reference.and_then(|r| Some((r, dates::date_days_before(r, days)?)));
                Cow::Owned(match date {
                    Some((r, d)) => format!("{} ({when} {})", dates::iso(d), dates::iso(r)),
                    None => format!("{when} {REFERENCE}"),
                })
            }
            ColumnKind::Categorical { levels } => {
                let slots = &features[col.offset..col.offset + levels.len()];
                match slots.iter().position(|&s| s == 1.0) {
                    Some(i) => Cow::Borrowed(levels[i].as_str()),
                    None => Cow::Borrowed(MISSING),
                }
            }
        }
    }

    /// A factor in words: `"month-to-month contract"`, `"tenure of 2"`, `"no partner"`,
    /// `"paperless billing"`, `"missing total charges"`, and for a date column named
    /// `signup_date` `"signup 412 days before the reference date"`.
    pub fn phrase(&self, f: &Factor<'_>) -> String {
        let mut out = String::new();
        self.phrase_into(f, &mut out);
        out
    }

    /// [`Explainer::phrase`], appended to `out` (the per-row path: no allocation for the
    /// usual kinds of value).
    pub fn phrase_into(&self, f: &Factor<'_>, out: &mut String) {
        self.phrase_one_into(f, out);
        if let Some((_, _, words)) = f
            .with
            .and_then(|(b, _)| self.groups.iter().find(|g| g.0 == f.column && g.1 == b))
        {
            out.push_str(" (");
            out.push_str(words);
            out.push(')');
        }
    }

    /// [`Explainer::phrase_one`] appended to `out`: a category level's phrase from the table
    /// built at load, a number or a yes/no written in place, anything else (a missing value,
    /// a date) by `phrase_one` itself.
    fn phrase_one_into(&self, f: &Factor<'_>, out: &mut String) {
        let col = &self.columns[f.column];
        let value: &str = &f.value;
        match &col.kind {
            ColumnKind::Categorical { levels } => {
                if let Some(i) = levels.iter().position(|l| l == value) {
                    out.push_str(&self.level_phrases[f.column][i]);
                    return;
                }
            }
            ColumnKind::Numeric if value != MISSING => {
                match col.words.strip_suffix(" days ago") {
                    Some(what) if !what.is_empty() => {
                        out.push_str(value);
                        out.push_str(" days since ");
                        out.push_str(what);
                    }
                    _ => {
                        out.push_str(&col.words);
                        out.push_str(" of ");
                        out.push_str(value);
                    }
                }
                return;
            }
            ColumnKind::Boolean if value != MISSING => {
                if value == "Yes" {
                    out.push_str(&col.words);
                } else {
                    out.push_str("no ");
                    out.push_str(
                        col.words
                            .strip_prefix("has ")
                            .or_else(|| col.words.strip_prefix("is "))
                            .unwrap_or(&col.words),
                    );
                }
                return;
            }
            _ => {}
        }
        out.push_str(&self.phrase_one(f));
    }

    /// [`Explainer::phrase`] of the factor's own column.
    fn phrase_one(&self, f: &Factor<'_>) -> String {
        let col = &self.columns[f.column];
        let value: &str = &f.value;
        let categorical = matches!(col.kind, ColumnKind::Categorical { .. });
        if value == MISSING && !(categorical && self.has_level(f.column, MISSING)) {
            return format!("missing {}", col.words);
        }
        match &col.kind {
            // "last activity days ago" of 41 reads better as "41 days since last activity".
            ColumnKind::Numeric => match col.words.strip_suffix(" days ago") {
                Some(what) if !what.is_empty() => format!("{value} days since {what}"),
                _ => format!("{} of {value}", col.words),
            },
            ColumnKind::Date => {
                // The value is "2024-03-01 (412 days before 2025-04-17)" or, without the
                // reference date, "412 days before the reference date".
                let when = match value.split_once(" (") {
                    Some((_, rest)) => rest
                        .trim_end_matches(')')
                        .rsplit_once(' ')
                        .map_or(rest, |(w, _)| w),
                    None => value.strip_suffix(REFERENCE).unwrap_or(value).trim_end(),
                };
                let what = ["date", "at", "on", "time"]
                    .iter()
                    .find_map(|w| {
                        col.words
                            .strip_suffix(w)
                            .and_then(|s| s.strip_suffix(' '))
                            .filter(|s| !s.is_empty())
                    })
                    .unwrap_or(&col.words);
                format!("{what} {when} {REFERENCE}")
            }
            ColumnKind::Boolean if value == "Yes" => col.words.clone(),
            // "has integration" = No reads "no integration", not "no has integration".
            ColumnKind::Boolean => match col
                .words
                .strip_prefix("has ")
                .or_else(|| col.words.strip_prefix("is "))
            {
                Some(rest) => format!("no {rest}"),
                None => format!("no {}", col.words),
            },
            ColumnKind::Categorical { .. } => {
                let lower = value.to_lowercase();
                if lower == "yes" {
                    col.words.clone()
                } else if lower == "no" {
                    format!("no {}", col.words)
                } else if lower.starts_with("no ") || lower.contains(&col.words.to_lowercase()) {
                    // "No internet service" says it all; so does "Month-to-month contract".
                    soften(value)
                } else {
                    format!("{} {}", soften(value), col.words)
                }
            }
        }
    }

    fn has_level(&self, c: usize, level: &str) -> bool {
        match &self.columns[c].kind {
            ColumnKind::Categorical { levels } => levels.iter().any(|l| l == level),
            _ => false,
        }
    }

    /// The one-line summary: for a customer above the average risk (`p ≥ p₀`) the two largest
    /// risk drivers ("Month-to-month contract and tenure of 2 raise the risk by 31 points.");
    /// below it the two largest protective factors ("Two year contract and tenure of 60 lower
    /// the risk by 20 points."). The points are the sum of the named factors' impacts.
    pub fn summary(&self, e: &Explanation<'_>) -> String {
        self.summary_flagged(e, &[])
    }

    /// [`Explainer::summary`] for a row with flagged values ([`crate::quality`]): a named
    /// factor whose value is flagged is followed by what is wrong with it ("Missing total
    /// charges (no value in the file) raises the risk by 4 points."), so a substituted or
    /// absurd value is never presented as a plain fact about the customer.
    pub fn summary_flagged(&self, e: &Explanation<'_>, flags: &[Flag]) -> String {
        let mut out = String::new();
        self.summary_into(e, flags, &mut out);
        out
    }

    /// [`Explainer::summary_flagged`], appended to `out` (the per-row path).
    pub fn summary_into(&self, e: &Explanation<'_>, flags: &[Flag], out: &mut String) {
        let below = e.probability < e.base_probability;
        let (factors, verb_one, verb_many) = if below && !e.protective_factors.is_empty() {
            (&e.protective_factors, "lowers", "lower")
        } else if !e.risk_factors.is_empty() {
            (&e.risk_factors, "raises", "raise")
        } else if !e.protective_factors.is_empty() {
            (&e.protective_factors, "lowers", "lower")
        } else {
            out.push_str("No single factor moves the risk by more than a fraction of a point.");
            return;
        };
        let top = &factors[..factors.len().min(2)];
        let total: f64 = top.iter().map(|f| f.impact).sum();
        let start = out.len();
        for (i, f) in top.iter().enumerate() {
            if i > 0 {
                out.push_str(" and ");
            }
            self.phrase_into(f, out);
            if let Some(k) = flag_of(flags, f.column) {
                out.push_str(" (");
                out.push_str(k.note());
                out.push(')');
            }
            self.partner_note_into(f, flags, out);
        }
        capitalise_at(out, start);
        out.push(' ');
        out.push_str(if top.len() == 1 { verb_one } else { verb_many });
        out.push_str(" the risk by ");
        match total.abs().round() as i64 {
            0 => out.push_str("less than 1 point"),
            1 => out.push_str("1 point"),
            n => {
                let _ = write!(out, "{n} points");
            }
        }
        out.push('.');
        let named: Vec<usize> = top
            .iter()
            .flat_map(|f| [Some(f.column), f.with.map(|(b, _)| b)])
            .flatten()
            .collect();
        self.also_rests_on(flags, &named, " It also rests on ", out);
    }

    /// After a grouped factor whose partner column is flagged (tenure counted with total
    /// charges, and total charges missing): ` (total charges: no value in the file)`, so the
    /// factor never reads as resting on clean values.
    fn partner_note_into(&self, f: &Factor<'_>, flags: &[Flag], out: &mut String) {
        if let Some((b, k)) = f.with.and_then(|(b, _)| Some((b, flag_of(flags, b)?))) {
            out.push_str(" (");
            out.push_str(&self.columns[b].words);
            out.push_str(": ");
            out.push_str(k.note());
            out.push(')');
        }
    }

    /// Every flagged value of the row ([`crate::quality`]: substituted, out of range, or a
    /// category read through another spelling) whose column is not among `named`, after
    /// `lead`: `their tenure (no value in the file) and their contract (…).` — so the text of
    /// a row with such a value always says so, naming the column, whether or not the value
    /// made the top factors (a trial found a missing tenure named only in `data_quality`).
    /// Nothing when there is none.
    fn also_rests_on(&self, flags: &[Flag], named: &[usize], lead: &str, out: &mut String) {
        let mut first = true;
        for (i, f) in flags.iter().enumerate() {
            if named.contains(&f.column) || flags[..i].iter().any(|g| g.column == f.column) {
                continue;
            }
            out.push_str(if first { lead } else { " and " });
            first = false;
            out.push_str("their ");
            out.push_str(&self.columns[f.column].words);
            out.push_str(" (");
            out.push_str(f.kind.note());
            out.push(')');
        }
        if !first {
            out.push('.');
        }
    }
}

/// How a missing (or unseen) value is shown.
const MISSING: &str = "missing";

/// What a date's day count is counted from, in words.
const REFERENCE: &str = "the reference date";

/// The indices of up to [`TOP_FACTORS`] of the `n` values `value(c)` passing `keep`, best first
/// by `better`, ties to the lower index (a scan, not a sort: this runs for every row).
fn top(
    n: usize,
    value: impl Fn(usize) -> f64,
    keep: impl Fn(f64) -> bool,
    better: impl Fn(f64, f64) -> bool,
) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::with_capacity(TOP_FACTORS + 1);
    for c in 0..n {
        let v = value(c);
        if !keep(v) {
            continue;
        }
        let at = best
            .iter()
            .position(|&b| better(v, value(b)))
            .unwrap_or(best.len());
        if at < TOP_FACTORS {
            best.insert(at, c);
            best.truncate(TOP_FACTORS);
        }
    }
    best
}

/// A number as written in a CSV: integers without a decimal point, others in their shortest
/// exact form; beyond 10¹⁵ (or below 10⁻⁶) in exponent form (`1e308`), not as 309 digits.
pub(crate) fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x.abs() >= 1e15 || (x != 0.0 && x.abs() < 1e-6) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A feature's value as a factor and its sentences show it: exact as [`number`] writes it
/// when that is short (`70.35`, `0.0625`), rounded by [`shown`] when a unit conversion made it
/// long (`13.141953633544837` months from 400 days → `13.14`). A value read from the file
/// with more than four decimals is rounded too: a sentence is read, not computed with.
pub(crate) fn readable(x: f64) -> String {
    let exact = number(x);
    match exact.split_once('.') {
        Some((_, decimals)) if decimals.len() > 4 && !exact.contains('e') => shown(x),
        _ => exact,
    }
}

/// A computed number rounded for reading in a sentence (a converted value, a mean): two
/// decimals from 1 on (`13.141953633544837` → `13.14`), three significant digits below 1
/// (`0.001234` → `0.00123`), trailing zeros dropped; beyond 10¹⁵ (or below 10⁻⁶) in exponent
/// form with three significant digits (`1e308`). For a value as the file wrote it, use
/// [`number`], which is exact.
pub(crate) fn shown(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a >= 1e15 || (x != 0.0 && a < 1e-6) {
        let s = format!("{x:.2e}");
        // `1.00e308` → `1e308`, `1.50e20` → `1.5e20`.
        return match s.split_once('e') {
            Some((m, e)) => {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{e}")
            }
            None => s,
        };
    }
    let decimals = if a >= 1.0 || x == 0.0 {
        2
    } else {
        // Three significant digits: 0.5 → 3 decimals, 0.05 → 4, …
        (2 - a.log10().floor() as i32).clamp(0, 9) as usize
    };
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s
    }
}

/// `"Month-to-month"` → `"month-to-month"`, but acronyms such as `"DSL"` stay as they are.
fn soften(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => {
            let mut s: String = a.to_lowercase().collect();
            s.push_str(&text[a.len_utf8()..]);
            s
        }
        _ => text.to_string(),
    }
}

/// A column name in lower-case words: `MonthlyCharges` → `monthly charges`, `payment_method` →
/// `payment method`, `StreamingTV` → `streaming TV` (upper-case runs are kept).
pub fn words(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &ch) in chars.iter().enumerate() {
        if ch == '_' || ch == '-' || ch == ' ' || ch == '.' {
            if !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        let next = chars.get(i + 1);
        let boundary = ch.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase() || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if boundary && !cur.is_empty() {
            parts.push(std::mem::take(&mut cur));
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
        .iter()
        .map(|p| {
            if p.len() > 1 && p.chars().all(|c| c.is_uppercase() || c.is_ascii_digit()) {
                p.clone()
            } else {
                p.to_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Points as said in a sentence: `"31 points"`, `"1 point"`, `"less than 1 point"`.
#[cfg(test)]
fn points(x: f64) -> String {
    let n = x.abs().round() as i64;
    match n {
        0 => "less than 1 point".into(),
        1 => "1 point".into(),
        _ => format!("{n} points"),
    }
}

/// Upper-cases the first character of `s[start..]` in place (as [`capitalise`] does).
fn capitalise_at(s: &mut String, start: usize) {
    let Some(first) = s[start..].chars().next() else {
        return;
    };
    if first.is_ascii() {
        s[start..start + 1].make_ascii_uppercase();
    } else {
        let upper: String = first.to_uppercase().collect();
        s.replace_range(start..start + first.len_utf8(), &upper);
    }
}

#[cfg(test)]
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The action suited to the top risk driver's column (matched on words in its name).
fn action(f: &Factor<'_>, kind_is_numeric: bool) -> String {
    let key = f.feature.to_lowercase();
    let has = |w: &str| key.contains(w);
    if has("contract") {
        "offer a discount for moving to a one- or two-year contract".into()
    } else if has("plan") && !kind_is_numeric {
        "offer a discount for moving to an annual plan".into()
    } else if has("tenure") || has("months_subscribed") || has("account_age") {
        "give new-customer onboarding and an early loyalty offer".into()
    } else if has("activity") || has("login") || has("last_seen") {
        "reach out personally, as they have gone quiet, and offer a check-in call".into()
    } else if has("usage") || has("adoption") {
        "run a training session on the features they are not using".into()
    } else if has("ticket") || has("complaint") {
        "review their open support issues with them".into()
    } else if has("integration") {
        "help them connect an integration".into()
    } else if kind_is_numeric
        && (has("charge") || has("price") || has("fee") || has("bill") || has("mrr"))
    {
        "review their plan and price".into()
    } else if has("support") || has("security") || has("backup") || has("protection") {
        format!("offer {} free for three months", words(f.feature))
    } else if has("payment") {
        "suggest automatic payment".into()
    } else if has("internet") || has("fiber") || has("service") {
        "check their service quality and offer a plan review".into()
    } else {
        format!("address their {} ({})", words(f.feature), f.value)
    }
}

impl Explainer {
    /// The recommendation for a customer at risk level `level`: how soon to act, and what to
    /// do about the top risk driver.
    pub fn recommendation(&self, e: &Explanation<'_>, level: RiskLevel) -> String {
        self.recommendation_flagged(e, level, &[])
    }

    /// [`Explainer::recommendation`] for a row with flagged values ([`crate::quality`]): when
    /// the top risk driver's value is flagged, the action is to check that value first (an
    /// action about a value the file did not hold would be advice about nothing).
    pub fn recommendation_flagged(
        &self,
        e: &Explanation<'_>,
        level: RiskLevel,
        flags: &[Flag],
    ) -> String {
        let mut out = String::new();
        self.recommendation_into(e, level, flags, &mut out, &mut String::new());
        out
    }

    /// [`Explainer::recommendation_flagged`], appended to `out` (the per-row path); `scratch`
    /// is reused space for the action.
    pub fn recommendation_into(
        &self,
        e: &Explanation<'_>,
        level: RiskLevel,
        flags: &[Flag],
        out: &mut String,
        scratch: &mut String,
    ) {
        // A new customer's risk is their newness, whatever else adds to it: onboarding first.
        let new_customer = e.risk_factors.iter().find(|f| {
            flag_of(flags, f.column).is_none()
                && self.tenure_unit[f.column].is_some_and(|unit| {
                    f.value
                        .parse::<f64>()
                        .is_ok_and(|x| x * unit < NEW_CUSTOMER_MONTHS)
                })
        });
        scratch.clear();
        let what = e.risk_factors.first().map(|f| {
            match flag_of(flags, f.column).filter(|k| k.substitutes()) {
                Some(k) => {
                    scratch.push_str("first check their ");
                    scratch.push_str(&self.columns[f.column].words);
                    scratch.push_str(" in the file (");
                    scratch.push_str(k.note());
                    scratch.push_str("), as this score leans on it");
                }
                None => {
                    let numeric = matches!(self.columns[f.column].kind, ColumnKind::Numeric);
                    if let Some(n) = new_customer.filter(|n| n.column != f.column) {
                        scratch.push_str(&self.action(n, true));
                        scratch.push_str("; also ");
                    }
                    scratch.push_str(&self.action(f, numeric));
                }
            }
            scratch.as_str()
        });
        // A value the model was never trained on makes any score, low ones included, a guess:
        // the recommendation says so first instead of "no action needed".
        let odd: Vec<&str> = flags
            .iter()
            .filter(|f| f.kind == FlagKind::OutOfRange)
            .map(|f| self.columns[f.column].words.as_str())
            .collect();
        // The columns the text names; any other substituted value is named after it.
        let mut named: Vec<usize> = e
            .risk_factors
            .first()
            .filter(|f| flag_of(flags, f.column).is_some_and(|k| k.substitutes()))
            .map(|f| f.column)
            .into_iter()
            .collect();
        if !odd.is_empty() {
            named.extend(
                flags
                    .iter()
                    .filter(|f| f.kind == FlagKind::OutOfRange)
                    .map(|f| f.column),
            );
            out.push_str("Check the data first: ");
            out.push_str(&odd.join(" and "));
            out.push_str(if odd.len() == 1 { " is" } else { " are" });
            out.push_str(" outside the values the model was trained on; ");
            match (level, what) {
                (RiskLevel::High, Some(a)) => {
                    out.push_str("then contact this week: ");
                    out.push_str(a);
                }
                (RiskLevel::High, None) => out.push_str("then contact this week"),
                (RiskLevel::Medium, Some(a)) => {
                    out.push_str("then check in this month: ");
                    out.push_str(a);
                }
                (RiskLevel::Medium, None) => out.push_str("then check in this month"),
                _ => out.push_str("the low score is not to be relied on until then"),
            }
            out.push('.');
            self.also_rests_on(flags, &named, " Also check in the file: ", out);
            return;
        }
        // A low score of a row with a substituted value (no usable value in the file) is not
        // evidence of a safe customer, whether or not that value made the top factors: never
        // "no action". A substituted driver is named first, else the first substituted value.
        // A category alias is the level the file meant, not a substitute: it is listed, not
        // doubted.
        let substituted = e
            .risk_factors
            .iter()
            .chain(&e.protective_factors)
            .find_map(|f| {
                flag_of(flags, f.column)
                    .filter(|k| k.substitutes())
                    .map(|k| (f.column, k))
            })
            .or_else(|| {
                flags
                    .iter()
                    .find(|f| f.kind.substitutes())
                    .map(|f| (f.column, f.kind))
            });
        match (level, what, substituted) {
            (RiskLevel::High, Some(a), _) => {
                out.push_str("Contact this week: ");
                out.push_str(a);
                out.push('.');
            }
            (RiskLevel::High, None, _) => out.push_str("Contact this week and review the account."),
            (RiskLevel::Medium, Some(a), _) => {
                out.push_str("Check in this month: ");
                out.push_str(a);
                out.push('.');
            }
            (RiskLevel::Medium, None, _) => out.push_str("Check in this month."),
            (_, _, Some((column, kind))) => {
                named.push(column);
                out.push_str("Check the data first: their ");
                out.push_str(&self.columns[column].words);
                out.push_str(" (");
                out.push_str(kind.note());
                out.push_str(
                    ") went into this score; the low score is not to be relied on until then.",
                );
            }
            _ => out.push_str("No action needed; keep the regular service."),
        }
        self.also_rests_on(flags, &named, " Also check in the file: ", out);
    }

    /// [`action`] for `f`, from the table built at load when it does not depend on the value.
    fn action(&self, f: &Factor<'_>, kind_is_numeric: bool) -> Cow<'_, str> {
        match &self.actions[f.column][usize::from(kind_is_numeric)] {
            Some(a) => Cow::Borrowed(a.as_str()),
            None => Cow::Owned(action(f, kind_is_numeric)),
        }
    }
}

/// Writes factors as a JSON array of `{"feature","value","impact"}` objects, impact rounded to
/// 0.1 percentage point; a grouped factor ([`GROUPS`]) also carries `"with"`, the name of the
/// column counted in its impact.
pub fn factors_json(factors: &[Factor<'_>], out: &mut String) {
    factors_json_flagged(factors, &[], out);
}

/// [`factors_json`] for a row with flagged values: a flagged factor also carries
/// `"quality"`, the flag's label ([`crate::quality::FlagKind::label`], e.g. `"missing"`).
pub fn factors_json_flagged(factors: &[Factor<'_>], flags: &[Flag], out: &mut String) {
    out.push('[');
    for (i, f) in factors.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"feature\":");
        json_string(f.feature, out);
        out.push_str(",\"value\":");
        json_string(&f.value, out);
        // In tenths, formatted as integers: float formatting with a fixed precision is slow,
        // and this runs for up to six factors per row.
        let tenths = (f.impact * 10.0).round() as i64;
        let sign = if tenths < 0 { "-" } else { "" };
        let t = tenths.unsigned_abs();
        let _ = write!(out, ",\"impact\":{sign}{}.{}", t / 10, t % 10);
        if let Some((_, name)) = f.with {
            out.push_str(",\"with\":");
            json_string(name, out);
        }
        if let Some(q) = factor_quality(f, flags) {
            out.push_str(",\"quality\":");
            json_string(&q, out);
        }
        out.push('}');
    }
    out.push(']');
}

/// A factor's `"quality"`: the label of its own column's flag, and for a grouped factor whose
/// partner column is flagged, `"<label> in <partner>"` (`"missing in TotalCharges"`), so every
/// factor that involves a flagged column carries the mark; both joined by `"; "`. `None` for
/// a factor whose columns are clean.
pub fn factor_quality<'a>(f: &Factor<'_>, flags: &[Flag]) -> Option<Cow<'a, str>> {
    let own = flag_of(flags, f.column);
    let partner = f
        .with
        .and_then(|(b, name)| Some((flag_of(flags, b)?, name)));
    match (own, partner) {
        (None, None) => None,
        (Some(k), None) => Some(Cow::Borrowed(k.label())),
        (None, Some((k, name))) => Some(Cow::Owned(format!("{} in {name}", k.label()))),
        (Some(a), Some((k, name))) => Some(Cow::Owned(format!(
            "{}; {} in {name}",
            a.label(),
            k.label()
        ))),
    }
}

/// A JSON string literal (RFC 8259 escaping).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The per-row text as it was built before it was written in place: the reference the
/// byte-identity tests compare the fast path against.
#[cfg(test)]
impl Explainer {
    pub(crate) fn summary_reference(&self, e: &Explanation<'_>, flags: &[Flag]) -> String {
        let phrase = |f: &Factor<'_>| {
            let one = self.phrase_one(f);
            match f
                .with
                .and_then(|(b, _)| self.groups.iter().find(|g| g.0 == f.column && g.1 == b))
            {
                Some((_, _, words)) => format!("{one} ({words})"),
                None => one,
            }
        };
        let below = e.probability < e.base_probability;
        let (factors, verb_one, verb_many) = if below && !e.protective_factors.is_empty() {
            (&e.protective_factors, "lowers", "lower")
        } else if !e.risk_factors.is_empty() {
            (&e.risk_factors, "raises", "raise")
        } else if !e.protective_factors.is_empty() {
            (&e.protective_factors, "lowers", "lower")
        } else {
            return "No single factor moves the risk by more than a fraction of a point.".into();
        };
        let top = &factors[..factors.len().min(2)];
        let total: f64 = top.iter().map(|f| f.impact).sum();
        let names: Vec<String> = top
            .iter()
            .map(|f| {
                let mut one = match flag_of(flags, f.column) {
                    Some(k) => format!("{} ({})", phrase(f), k.note()),
                    None => phrase(f),
                };
                if let Some((b, k)) = f.with.and_then(|(b, _)| Some((b, flag_of(flags, b)?))) {
                    one.push_str(&format!(" ({}: {})", self.columns[b].words, k.note()));
                }
                one
            })
            .collect();
        let verb = if top.len() == 1 { verb_one } else { verb_many };
        let named: Vec<usize> = top
            .iter()
            .flat_map(|f| [Some(f.column), f.with.map(|(b, _)| b)])
            .flatten()
            .collect();
        format!(
            "{} {verb} the risk by {}.{}",
            capitalise(&names.join(" and ")),
            points(total),
            self.rests_on_reference(flags, &named, " It also rests on ")
        )
    }

    /// [`Explainer::also_rests_on`] as a string, written independently.
    fn rests_on_reference(&self, flags: &[Flag], named: &[usize], lead: &str) -> String {
        let mut seen: Vec<usize> = named.to_vec();
        let mut parts: Vec<String> = Vec::new();
        for f in flags {
            if seen.contains(&f.column) {
                continue;
            }
            seen.push(f.column);
            parts.push(format!(
                "their {} ({})",
                self.columns[f.column].words,
                f.kind.note()
            ));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("{lead}{}.", parts.join(" and "))
        }
    }

    pub(crate) fn recommendation_reference(
        &self,
        e: &Explanation<'_>,
        level: &str,
        flags: &[Flag],
    ) -> String {
        // A new customer's risk is their newness, whatever else adds to it: onboarding first.
        let new_customer = e.risk_factors.iter().find(|f| {
            flag_of(flags, f.column).is_none()
                && crate::aliases::meaning_of(f.feature) == Some(GROUPS[0].0)
                && f.value.parse::<f64>().is_ok_and(|x| {
                    x * crate::aliases::months_per_unit(f.feature).unwrap_or(1.0)
                        < NEW_CUSTOMER_MONTHS
                })
        });
        let what = e.risk_factors.first().map(|f| {
            match flag_of(flags, f.column).filter(|k| k.substitutes()) {
                Some(k) => format!(
                    "first check their {} in the file ({}), as this score leans on it",
                    self.columns[f.column].words,
                    k.note()
                ),
                None => {
                    let numeric = matches!(self.columns[f.column].kind, ColumnKind::Numeric);
                    match new_customer {
                        Some(n) if n.column != f.column => {
                            format!("{}; also {}", action(n, true), action(f, numeric))
                        }
                        _ => action(f, numeric),
                    }
                }
            }
        });
        // A value the model was never trained on makes any score, low ones included, a guess:
        // the recommendation says so first instead of "no action needed".
        let odd: Vec<&str> = flags
            .iter()
            .filter(|f| f.kind == FlagKind::OutOfRange)
            .map(|f| self.columns[f.column].words.as_str())
            .collect();
        let top_flagged: Vec<usize> = e
            .risk_factors
            .first()
            .filter(|f| flag_of(flags, f.column).is_some_and(|k| k.substitutes()))
            .map(|f| f.column)
            .into_iter()
            .collect();
        if !odd.is_empty() {
            let mut named = top_flagged.clone();
            named.extend(
                flags
                    .iter()
                    .filter(|f| f.kind == FlagKind::OutOfRange)
                    .map(|f| f.column),
            );
            let then = match (level, what) {
                ("high", Some(a)) => format!("then contact this week: {a}"),
                ("high", None) => "then contact this week".into(),
                ("medium", Some(a)) => format!("then check in this month: {a}"),
                ("medium", None) => "then check in this month".into(),
                _ => "the low score is not to be relied on until then".into(),
            };
            return format!(
                "Check the data first: {} {} outside the values the model was trained on; {then}.{}",
                odd.join(" and "),
                if odd.len() == 1 { "is" } else { "are" },
                self.rests_on_reference(flags, &named, " Also check in the file: ")
            );
        }
        // A low score of a row with a substituted value (no usable value in the file) is not
        // evidence of a safe customer, whether or not that value made the top factors: never
        // "no action". A substituted driver is named first, else the first substituted value.
        // A category alias is the level the file meant, not a substitute: it is listed, not
        // doubted.
        let substituted = e
            .risk_factors
            .iter()
            .chain(&e.protective_factors)
            .find_map(|f| {
                flag_of(flags, f.column)
                    .filter(|k| k.substitutes())
                    .map(|k| (f.column, k))
            })
            .or_else(|| {
                flags
                    .iter()
                    .find(|f| f.kind.substitutes())
                    .map(|f| (f.column, f.kind))
            });
        let mut named = top_flagged;
        let text = match (level, what, substituted) {
            ("high", Some(a), _) => format!("Contact this week: {a}."),
            ("high", None, _) => "Contact this week and review the account.".into(),
            ("medium", Some(a), _) => format!("Check in this month: {a}."),
            ("medium", None, _) => "Check in this month.".into(),
            (_, _, Some((column, kind))) => {
                named.push(column);
                format!(
                    "Check the data first: their {} ({}) went into this score; the low score is not \
                     to be relied on until then.",
                    self.columns[column].words,
                    kind.note()
                )
            }
            _ => "No action needed; keep the regular service.".into(),
        };
        text + &self.rests_on_reference(flags, &named, " Also check in the file: ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_largest_in_order() {
        let phi = [0.1, -0.5, 0.7, 0.0, 0.7, -0.2, 0.3];
        let v = |c: usize| phi[c];
        assert_eq!(top(7, v, |v| v > 0.0, |a, b| a > b), vec![2, 4, 6]);
        assert_eq!(top(7, v, |v| v < 0.0, |a, b| a < b), vec![1, 5]);
    }

    #[test]
    fn words_split_names() {
        assert_eq!(words("MonthlyCharges"), "monthly charges");
        assert_eq!(words("tenure"), "tenure");
        assert_eq!(words("StreamingTV"), "streaming TV");
        assert_eq!(words("payment_method"), "payment method");
        assert_eq!(words("SeniorCitizen"), "senior citizen");
        assert_eq!(words("HTTPRequests"), "HTTP requests");
    }

    #[test]
    fn json_is_valid_and_rounded() {
        let f = Factor {
            column: 0,
            feature: "Contract",
            value: Cow::Borrowed("Month \"to\" month"),
            impact: 12.345,
            with: None,
        };
        let mut s = String::new();
        factors_json(&[f.clone(), f], &mut s);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v[1]["value"], "Month \"to\" month");
        assert_eq!(v[0]["impact"], 12.3);
        let mut e = String::new();
        factors_json(&[], &mut e);
        assert_eq!(e, "[]");
    }

    fn explainer() -> Explainer {
        use crate::forest::{Forest, Tree};
        use crate::schema::SourceColumn;
        let schema = FeatureSchema {
            label: "Churn".into(),
            id_column: None,
            columns: vec![
                SourceColumn {
                    name: "Contract".into(),
                    kind: ColumnKind::Categorical {
                        levels: vec!["Month-to-month".into(), "Two year".into()],
                    },
                },
                SourceColumn {
                    name: "tenure".into(),
                    kind: ColumnKind::Numeric,
                },
                SourceColumn {
                    name: "MultipleLines".into(),
                    kind: ColumnKind::Categorical {
                        levels: vec!["No phone service".into(), "Yes".into()],
                    },
                },
                SourceColumn {
                    name: "PaperlessBilling".into(),
                    kind: ColumnKind::Boolean,
                },
            ],
        };
        let leaf = Tree {
            feature: vec![-1],
            threshold: vec![0.0],
            left: vec![0],
            right: vec![0],
            missing_left: vec![false],
            value: vec![0.0],
            cover: vec![1.0],
        };
        let forest = Forest {
            n_features: 6,
            base_score: 0.0,
            trees: vec![leaf],
        };
        Explainer::new(&schema, &Predictor::forest_only(forest))
    }

    /// The blended model's SHAP values add up to its log-odds, with the linear part's log terms
    /// and missing values, under both calibrations; the points add up to `p − p₀`.
    #[test]
    fn blended_contributions_add_up_under_both_calibrations() {
        use crate::blend::Blend;
        use crate::calibration::Calibration;
        use crate::forest::Tree;
        use crate::linear::{LinearModel, LinearTerm, Transform};
        let plain = explainer();
        let schema_columns = plain.columns.len();
        // Slots: Contract 0–1, tenure 2, MultipleLines 3–4, PaperlessBilling 5.
        let tree = Tree {
            feature: vec![2, -1, 5, -1, -1],
            threshold: vec![10.0, 0.0, 0.5, 0.0, 0.0],
            left: vec![1, 0, 3, 0, 0],
            right: vec![2, 0, 4, 0, 0],
            missing_left: vec![true, false, false, false, false],
            value: vec![0.0, 0.8, 0.0, -0.4, 0.1],
            cover: vec![10.0, 3.0, 7.0, 4.0, 3.0],
        };
        let term = |slot, transform, coef, center| LinearTerm {
            slot,
            transform,
            coef,
            center,
        };
        let linear = LinearModel {
            intercept: -0.2,
            terms: vec![
                term(0, Transform::Identity, 0.5, 0.4),
                term(2, Transform::Identity, -0.01, 30.0),
                term(2, Transform::Log1p, -0.3, 2.0),
                term(5, Transform::Identity, 0.2, 0.5),
            ],
        };
        let schema = FeatureSchema {
            label: "Churn".into(),
            id_column: None,
            columns: plain
                .columns
                .iter()
                .map(|c| crate::schema::SourceColumn {
                    name: c.name.clone(),
                    kind: c.kind.clone(),
                })
                .collect(),
        };
        let rows = [
            [1.0, 0.0, 2.0, 0.0, 1.0, 1.0],
            [0.0, 1.0, 60.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, f64::NAN, 0.0, 0.0, f64::NAN],
            [1.0, 0.0, 12.0, 0.0, 0.0, 1.0],
        ];
        let isotonic = Calibration::Isotonic {
            score: vec![-1.0, 0.0, 0.5, 1.5],
            probability: vec![0.05, 0.2, 0.2, 0.7],
        };
        for calibration in [Calibration::Sigmoid, isotonic] {
            let predictor = Predictor {
                forest: crate::forest::Forest {
                    n_features: 6,
                    base_score: -0.9,
                    trees: vec![tree.clone()],
                },
                linear: Some(linear.clone()),
                blend: Blend {
                    intercept: 0.1,
                    tree_weight: 0.7,
                    linear_weight: 1.2,
                },
                calibration,
            };
            let x = Explainer::new(&schema, &predictor);
            let mut phi = vec![0.0; schema_columns];
            for row in &rows {
                let e = x.explain(row, &mut phi);
                let f = predictor.log_odds(row);
                assert_eq!(e.log_odds.to_bits(), f.to_bits());
                assert_eq!(e.probability, predictor.probability(row));
                let total = x.base_value() + phi.iter().sum::<f64>();
                assert!((total - f).abs() < 1e-12, "{total} vs {f}");
                let slope = if (f - e.base_value).abs() > 1e-9 {
                    (e.probability - e.base_probability) / (f - e.base_value)
                } else {
                    predictor.calibration.slope(f)
                };
                let points: f64 = phi.iter().map(|v| 100.0 * v * slope).sum();
                assert!((points - 100.0 * (e.probability - e.base_probability)).abs() < 1e-9);
                for f in e.risk_factors.iter().chain(&e.protective_factors) {
                    let both = phi[f.column] + f.with.map_or(0.0, |(b, _)| phi[b]);
                    assert!((f.impact - 100.0 * both * slope).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn phrases_summary_and_recommendation() {
        let x = explainer();
        let f = |column: usize, feature: &'static str, value: &'static str, impact: f64| Factor {
            column,
            feature,
            value: Cow::Borrowed(value),
            impact,
            with: None,
        };
        let e = Explanation {
            risk_factors: vec![
                f(0, "Contract", "Month-to-month", 20.4),
                f(1, "tenure", "2", 10.9),
                f(3, "PaperlessBilling", "Yes", 1.0),
            ],
            protective_factors: vec![f(2, "MultipleLines", "No phone service", -0.4)],
            base_probability: 0.26,
            probability: 0.8,
            log_odds: 1.4,
            base_value: -1.0,
        };
        assert_eq!(
            x.summary(&e),
            "Month-to-month contract and tenure of 2 raise the risk by 31 points."
        );
        assert_eq!(x.phrase(&e.risk_factors[2]), "paperless billing");
        assert_eq!(x.phrase(&f(1, "tenure", "missing", 1.0)), "missing tenure");
        // A customer of 2 months is new: onboarding first, then the top driver's action.
        assert_eq!(
            x.recommendation(&e, RiskLevel::High),
            "Contact this week: give new-customer onboarding and an early loyalty offer; also offer a discount for moving to a one- or two-year contract."
        );
        assert_eq!(
            x.recommendation(&e, RiskLevel::Low),
            "No action needed; keep the regular service."
        );
        let below = Explanation {
            probability: 0.1,
            ..e
        };
        assert_eq!(
            x.summary(&below),
            "No phone service lowers the risk by less than 1 point."
        );
        assert_eq!(soften("DSL"), "DSL");
        assert_eq!(soften("Two year"), "two year");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(70.35), "70.35");
        assert_eq!(number(1e308), "1e308");
        assert_eq!(number(-2.5e20), "-2.5e20");
        assert_eq!(shown(13.141953633544837), "13.14");
        assert_eq!(readable(13.141953633544837), "13.14");
        assert_eq!(readable(70.35), "70.35");
        assert_eq!(readable(0.0625), "0.0625");
        assert_eq!(readable(1e308), "1e308");
        assert_eq!(shown(408.0), "408");
        assert_eq!(shown(0.001234), "0.00123");
        assert_eq!(shown(0.5), "0.5");
        assert_eq!(shown(1e308), "1e308");
        assert_eq!(shown(-1.2345e20), "-1.23e20");
        assert_eq!(shown(-0.001), "-0.001");
        assert_eq!(shown(-0.0001), "-0.0001");
    }

    #[test]
    fn date_columns_read_as_dates_and_days_before_the_reference() {
        use crate::forest::{Forest, Tree};
        use crate::schema::SourceColumn;
        let schema = FeatureSchema {
            label: "churned".into(),
            id_column: None,
            columns: vec![
                SourceColumn {
                    name: "signup_date".into(),
                    kind: ColumnKind::Date,
                },
                SourceColumn {
                    name: "LastLoginAt".into(),
                    kind: ColumnKind::Date,
                },
            ],
        };
        // One split on the last login: more than 30 days before the reference raises the risk.
        let tree = Tree {
            feature: vec![1, -1, -1],
            threshold: vec![30.0, 0.0, 0.0],
            left: vec![1, 0, 0],
            right: vec![2, 0, 0],
            missing_left: vec![true, false, false],
            value: vec![0.0, -0.5, 1.5],
            cover: vec![10.0, 5.0, 5.0],
        };
        let x = Explainer::new(
            &schema,
            &Predictor::forest_only(Forest {
                n_features: 2,
                base_score: 0.0,
                trees: vec![tree],
            }),
        );
        let reference = NaiveDate::from_ymd_opt(2025, 4, 17);
        let mut phi = vec![0.0; 2];
        let e = x.explain_at(&[412.0, 90.0], &mut phi, reference);
        let top = &e.risk_factors[0];
        assert_eq!(top.feature, "LastLoginAt");
        assert_eq!(top.value, "2025-01-17 (90 days before 2025-04-17)");
        assert_eq!(
            x.phrase(top),
            "last login 90 days before the reference date"
        );
        assert_eq!(
            x.summary(&e),
            "Last login 90 days before the reference date raises the risk by 20 points."
        );
        assert_eq!(
            x.recommendation(&e, RiskLevel::High),
            "Contact this week: reach out personally, as they have gone quiet, and offer a check-in call."
        );
        let signup = Factor {
            column: 0,
            feature: "signup_date",
            value: x.value(0, &[412.0, 1.0], reference),
            impact: 1.0,
            with: None,
        };
        assert_eq!(signup.value, "2024-03-01 (412 days before 2025-04-17)");
        assert_eq!(
            x.phrase(&signup),
            "signup 412 days before the reference date"
        );
        // Without the reference date the day count alone; a future date counts after it.
        let later = Factor {
            value: x.value(0, &[-3.0, 1.0], None),
            ..signup.clone()
        };
        assert_eq!(later.value, "3 days after the reference date");
        assert_eq!(x.phrase(&later), "signup 3 days after the reference date");
        let missing = Factor {
            value: x.value(0, &[f64::NAN, 1.0], reference),
            ..signup
        };
        assert_eq!(x.phrase(&missing), "missing signup date");
    }
}
