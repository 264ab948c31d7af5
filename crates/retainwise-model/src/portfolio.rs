//! Figures across all the customers of a scored file, for a dashboard: a churn-probability
//! histogram, revenue at risk, and the columns that most often drive risk.
//!
//! They are gathered while scoring (one [`PortfolioAcc`] per parallel chunk, merged in input
//! order, so the figures do not depend on the number of threads) and land in
//! [`crate::score::ScoreReport::portfolio`], so a dashboard never rereads the scored file.

use serde::Serialize;

use crate::explain::Explanation;
use crate::fixed_sum::FixedSum;
use crate::mapping::ColumnMapping;
use crate::schema::{ColumnKind, FeatureSchema};
use crate::values::column_key;

/// Bins of [`Portfolio::probability_histogram`]: 20 bins of 0.05.
pub const HISTOGRAM_BINS: usize = 20;

/// Driver columns listed in [`Portfolio::top_drivers`] (the most frequent first).
pub const TOP_DRIVERS: usize = 10;

/// Normalised names of a column that holds *annual* recurring revenue per customer (ARR); its
/// value is divided by 12 for monthly revenue. Used only when the model has no monthly column:
/// ARR/12 is monthly revenue for an annual contract billed evenly, and the usual SaaS
/// definition of MRR from ARR.
const ANNUAL_REVENUE_COLUMNS: &[&str] = &[
    "arr",
    "annualrecurringrevenue",
    "annualrevenue",
    "yearlyrevenue",
];

/// Aggregate figures over the scored customers of one file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Portfolio {
    /// Customers per churn-probability bin: bin `i` counts probabilities (as written, 6
    /// decimals) in `[i/20, (i+1)/20)`, the last bin also holds 1.0. Length [`HISTOGRAM_BINS`].
    pub probability_histogram: Vec<u64>,
    /// The model column read as monthly revenue (e.g. `MonthlyCharges`, or any name the alias
    /// table gives monthly charges: `mrr`, `monthly_recurring_revenue`, `monthly_revenue`,
    /// `monthly_spend`, …; else an annual one such as `arr`, divided by 12), or `None` when the
    /// model has no such numeric column.
    pub revenue_column: Option<String>,
    /// Scored customers whose revenue value is in both sums: those without a value and those
    /// whose value is flagged are left out ([`Portfolio::revenue_missing`],
    /// [`Portfolio::revenue_flagged`]; `revenue_note` names them).
    pub revenue_customers: u64,
    /// Scored customers with no revenue value (a blank, a missing-value marker, an Excel error
    /// value such as `#N/A`, a number that reads two ways), left out of both sums.
    #[serde(default)]
    pub revenue_missing: u64,
    /// Scored customers whose revenue value is flagged (outside the values the model was
    /// trained on, e.g. a `MonthlyCharges` of 1e9), left out of both sums: one absurd value
    /// would otherwise make the whole figure (the policy is the README's, "Revenue at risk").
    #[serde(default)]
    pub revenue_flagged: u64,
    /// Σ monthly revenue over those customers, in the file's currency per month; `None`
    /// (JSON `null`) when no scored customer has a revenue value (`revenue_note` says why).
    pub monthly_revenue: Option<f64>,
    /// Revenue at risk: Σ monthly revenue × churn probability, in the file's currency per
    /// month — the revenue expected to leave if nothing is done; `None` (JSON `null`, never a
    /// made-up 0) when no scored customer has a revenue value (`revenue_note` says why).
    pub revenue_at_risk: Option<f64>,
    /// How revenue was read when it was not read as is (`"monthly revenue read from the
    /// file's annual column \"ARR\" ÷ 12"`), which customers were left out and why (how many,
    /// the first few by customer id or row), or why there is no figure; sentences joined by
    /// `"; "`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue_note: Option<String>,
    /// The columns most often among a customer's top risk drivers, most frequent first (at
    /// most [`TOP_DRIVERS`]; ties by larger mean impact, then name).
    pub top_drivers: Vec<DriverShare>,
}

impl Portfolio {
    /// True for the figures of a summary stored before portfolios existed (no histogram): a
    /// page then says so instead of showing zeros.
    pub fn is_empty(&self) -> bool {
        self.probability_histogram.is_empty()
    }
}

/// How one column drives risk across a file.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DriverShare {
    /// The column's name in the model's schema.
    pub feature: String,
    /// Customers for whom it is among the top risk drivers.
    pub customers: u64,
    /// Mean effect on churn probability over those customers, in percentage points (> 0).
    pub mean_impact: f64,
}

/// Running sums behind a [`Portfolio`]; add rows, merge chunks in order, then [`finish`](Self::finish).
/// The sums are [`FixedSum`]s, so batches and pieces of a file merge to the same figures
/// however they were cut. Serialisable: a piece of a file stores its sums for the merge.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct PortfolioAcc {
    histogram: [u64; HISTOGRAM_BINS],
    revenue_customers: u64,
    monthly_revenue: FixedSum,
    revenue_at_risk: FixedSum,
    /// Per schema column: (customers, Σ impact) as a risk driver.
    drivers: Vec<(u64, FixedSum)>,
    /// Customers without a revenue value, and the first [`NAMED`] of them.
    missing: (u64, Vec<String>),
    /// Customers whose revenue value is flagged, and the first [`NAMED`] of them with it.
    flagged: (u64, Vec<String>),
}

/// Customers named per reason in [`Portfolio::revenue_note`]; the rest are counted.
pub const NAMED: usize = 5;

/// Why a customer's revenue was left out of the sums ([`PortfolioAcc::leave_out`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LeftOut {
    /// No value (read as missing).
    Missing,
    /// A value flagged by the scorer ([`crate::quality::FlagKind::OutOfRange`]): the value.
    Flagged(f64),
}

/// The [`Portfolio::probability_histogram`] bin of probability `p` (in [0, 1]; 1.0 falls in
/// the last bin).
pub fn probability_bin(p: f64) -> usize {
    ((p * HISTOGRAM_BINS as f64) as usize).min(HISTOGRAM_BINS - 1)
}

/// Where a model keeps monthly revenue: the column name, its slot in the encoded row, and the
/// factor that makes its value monthly (1, or 1/12 for an annual column).
pub fn revenue_slot(schema: &FeatureSchema) -> Option<(&str, usize, f64)> {
    let numeric = || {
        schema
            .columns
            .iter()
            .zip(schema.offsets())
            .filter(|(c, _)| matches!(c.kind, ColumnKind::Numeric))
    };
    numeric()
        .find(|(c, _)| {
            crate::aliases::meaning_of(&c.name) == Some(MONTHLY)
                && !crate::aliases::is_per_year(&c.name)
        })
        .map(|(c, offset)| (c.name.as_str(), offset, 1.0))
        .or_else(|| {
            numeric()
                .find(|(c, _)| {
                    ANNUAL_REVENUE_COLUMNS.contains(&column_key(&c.name).as_str())
                        || crate::aliases::is_per_year(&c.name)
                })
                .map(|(c, offset)| (c.name.as_str(), offset, 1.0 / 12.0))
        })
}

/// How one scored row's revenue enters a [`PortfolioAcc`]: the revenue of a model whose
/// revenue input is schema column `column` at encoded slot `slot` (monthly after × `scale`),
/// as [`revenue_slot`] finds it.
#[derive(Clone, Copy, Debug)]
pub struct RevenueInput {
    column: usize,
    slot: usize,
    scale: f64,
}

impl RevenueInput {
    /// The revenue input of `schema`, if it has one ([`revenue_slot`]).
    pub fn of(schema: &FeatureSchema) -> Option<RevenueInput> {
        let (name, slot, scale) = revenue_slot(schema)?;
        let column = schema.columns.iter().position(|c| c.name == name)?;
        Some(RevenueInput {
            column,
            slot,
            scale,
        })
    }

    /// The monthly revenue to add for one row of encoded `features` with data-quality
    /// `flags`, or `None` after counting it as left out in `acc`: a value flagged as
    /// substituted or out of range never enters the sums; no value is counted as missing
    /// (unless the file has no such column at all, which the note says once). `who` names the
    /// customer.
    pub fn read(
        &self,
        features: &[f64],
        flags: &[crate::quality::Flag],
        acc: &mut PortfolioAcc,
        who: impl FnOnce() -> String,
    ) -> Option<f64> {
        use crate::quality::FlagKind;
        let value = features[self.slot];
        match crate::quality::flag_of(flags, self.column) {
            Some(FlagKind::Absent) => None,
            Some(kind) if kind.substitutes() && value.is_finite() => {
                acc.leave_out(LeftOut::Flagged(value), who);
                None
            }
            _ if !value.is_finite() => {
                acc.leave_out(LeftOut::Missing, who);
                None
            }
            _ => Some(value * self.scale),
        }
    }
}

/// The alias table's meaning of a monthly revenue column ([`crate::aliases::GROUPS`]).
const MONTHLY: &str = "monthly charges";

impl PortfolioAcc {
    /// Empty sums for a model of `n_columns` schema columns.
    pub fn new(n_columns: usize) -> PortfolioAcc {
        PortfolioAcc {
            histogram: [0; HISTOGRAM_BINS],
            revenue_customers: 0,
            monthly_revenue: FixedSum::default(),
            revenue_at_risk: FixedSum::default(),
            drivers: vec![(0, FixedSum::default()); n_columns],
            missing: (0, Vec::new()),
            flagged: (0, Vec::new()),
        }
    }

    /// Counts one customer's revenue as left out of the sums (call it with the row's
    /// [`add`](Self::add) or [`add_score`](Self::add_score) given `None`): `who` names the
    /// customer (its id, else `row N`), called only while fewer than [`NAMED`] are named.
    pub fn leave_out(&mut self, why: LeftOut, who: impl FnOnce() -> String) {
        let (count, named) = match why {
            LeftOut::Missing => &mut self.missing,
            LeftOut::Flagged(_) => &mut self.flagged,
        };
        *count += 1;
        if named.len() < NAMED {
            named.push(match why {
                LeftOut::Missing => who(),
                LeftOut::Flagged(v) => format!("{} ({})", who(), short_number(v)),
            });
        }
    }

    /// Counts one scored customer: churn probability `p` (as written), monthly revenue
    /// (`None` or NaN when unknown), and its explanation.
    pub fn add(&mut self, p: f64, revenue: Option<f64>, e: &Explanation<'_>) {
        self.add_score(p, revenue);
        for f in &e.risk_factors {
            let d = &mut self.drivers[f.column];
            d.0 += 1;
            d.1.add(f.impact);
        }
    }

    /// [`PortfolioAcc::add`] for a customer scored without an explanation
    /// ([`crate::score::Explain::None`]): histogram and revenue only, no drivers.
    pub fn add_score(&mut self, p: f64, revenue: Option<f64>) {
        self.histogram[probability_bin(p)] += 1;
        if let Some(r) = revenue.filter(|r| r.is_finite()) {
            self.revenue_customers += 1;
            self.monthly_revenue.add(r);
            self.revenue_at_risk.add(r * p);
        }
    }

    /// Adds `other`'s sums (the next chunk in input order).
    pub fn merge(&mut self, other: &PortfolioAcc) {
        for (a, b) in self.histogram.iter_mut().zip(other.histogram) {
            *a += b;
        }
        self.revenue_customers += other.revenue_customers;
        self.monthly_revenue.merge(other.monthly_revenue);
        self.revenue_at_risk.merge(other.revenue_at_risk);
        for (a, b) in self.drivers.iter_mut().zip(&other.drivers) {
            a.0 += b.0;
            a.1.merge(b.1);
        }
        for (a, b) in [
            (&mut self.missing, &other.missing),
            (&mut self.flagged, &other.flagged),
        ] {
            a.0 += b.0;
            let room = NAMED.saturating_sub(a.1.len());
            a.1.extend(b.1.iter().take(room).cloned());
        }
    }

    /// The figures, with column names from `schema` (the same schema the sums were built on)
    /// and, when given, the file's `mapping` to say how revenue was read or why it was not.
    pub fn finish(&self, schema: &FeatureSchema, mapping: Option<&ColumnMapping>) -> Portfolio {
        let mut top: Vec<DriverShare> = self
            .drivers
            .iter()
            .zip(&schema.columns)
            .filter(|((n, _), _)| *n > 0)
            .map(|((n, sum), c)| DriverShare {
                feature: c.name.clone(),
                customers: *n,
                mean_impact: round1(sum.value() / *n as f64),
            })
            .collect();
        top.sort_by(|a, b| {
            b.customers
                .cmp(&a.customers)
                .then(b.mean_impact.total_cmp(&a.mean_impact))
                .then(a.feature.cmp(&b.feature))
        });
        top.truncate(TOP_DRIVERS);
        let revenue_column = revenue_slot(schema).map(|(name, _, _)| name.to_owned());
        let read_from = revenue_column
            .as_deref()
            .and_then(|name| mapping?.features.iter().find(|f| f.feature == name));
        let known = self.revenue_customers > 0;
        let revenue_note = match (&revenue_column, read_from) {
            (None, _) => Some(
                "the model has no revenue input (monthly charges, MRR or ARR): revenue at risk is not computed"
                    .to_owned(),
            ),
            (Some(name), Some(f)) if f.column.is_none() => Some(format!(
                "the file has no revenue column for {name} (also accepted: mrr, monthly_revenue, arr ÷ 12, …): revenue at risk is not computed"
            )),
            (Some(name), _) if !known => Some(format!(
                "no scored customer has a value for {name} that can be counted: revenue at risk is not computed"
            )),
            (Some(_), Some(f)) if f.scale != 1.0 => Some(format!(
                "monthly revenue read from the file's column {:?}: {}",
                f.column.as_deref().unwrap_or_default(),
                f.note.as_deref().unwrap_or("converted")
            )),
            _ => None,
        };
        let mut notes: Vec<String> = revenue_note.into_iter().collect();
        if let Some(name) = &revenue_column {
            if self.flagged.0 > 0 {
                notes.push(format!(
                    "{} left out of revenue at risk because {} {name} is outside the values the model was trained on (so that one absurd value cannot make the figure): {}",
                    customers(self.flagged.0),
                    if self.flagged.0 == 1 { "its" } else { "their" },
                    named(&self.flagged)
                ));
            }
            if self.missing.0 > 0 && read_from.is_none_or(|f| f.column.is_some()) {
                notes.push(format!(
                    "{} left out of revenue at risk because {} no {name} value (blank, or an error value such as #N/A): {}",
                    customers(self.missing.0),
                    if self.missing.0 == 1 { "it has" } else { "they have" },
                    named(&self.missing)
                ));
            }
        }
        let revenue_note = (!notes.is_empty()).then(|| notes.join("; "));
        Portfolio {
            probability_histogram: self.histogram.to_vec(),
            revenue_column,
            revenue_customers: self.revenue_customers,
            revenue_missing: self.missing.0,
            revenue_flagged: self.flagged.0,
            monthly_revenue: known.then(|| round2(self.monthly_revenue.value())),
            revenue_at_risk: known.then(|| round2(self.revenue_at_risk.value())),
            revenue_note,
            top_drivers: top,
        }
    }
}

impl Portfolio {
    /// Says in `revenue_note` that `repeats` scored rows repeat an earlier row's customer id
    /// ([`crate::report::ValidationReport::duplicate_ids`]), when revenue at risk is computed:
    /// the sums count each row, so such a customer's revenue is counted once per row. Said,
    /// not undone: which of two rows holds the customer's true figures cannot be known.
    pub fn note_repeated_ids(&mut self, repeats: u64) {
        if repeats == 0 || self.revenue_at_risk.is_none() {
            return;
        }
        let note = format!(
            "{repeats} scored {} an earlier row's customer id: revenue at risk and monthly revenue count each row, so {} counted more than once (the validation report lists the rows)",
            if repeats == 1 { "row repeats" } else { "rows repeat" },
            if repeats == 1 { "that customer's revenue is" } else { "those customers' revenue is" }
        );
        self.revenue_note = Some(match self.revenue_note.take() {
            Some(n) => format!("{n}; {note}"),
            None => note,
        });
    }
}

/// A value as the pages show one, short whatever its size: `1e308` for a huge or tiny one (a
/// 309-digit number would overflow the dashboard and the API's note), else at most 2 decimals
/// (`83333333.33`, `-500`).
fn short_number(v: f64) -> String {
    if !v.is_finite() || (v != 0.0 && !(1e-2..1e12).contains(&v.abs())) {
        format!("{v:e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `1 customer is` / `3 customers are`.
fn customers(n: u64) -> String {
    if n == 1 {
        "1 customer is".to_owned()
    } else {
        format!("{n} customers are")
    }
}

/// The named customers of a left-out count, and how many more there are.
fn named((count, names): &(u64, Vec<String>)) -> String {
    let more = count.saturating_sub(names.len() as u64);
    if more > 0 {
        format!("{} and {more} more", names.join(", "))
    } else {
        names.join(", ")
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Left-out values are written short (never 309 digits, never 8 decimals).
    #[test]
    fn left_out_values_are_written_short() {
        assert_eq!(short_number(1e308), "1e308");
        assert_eq!(short_number(83333333.33333333), "83333333.33");
        assert_eq!(short_number(-500.0), "-500");
        assert_eq!(short_number(0.0), "0");
    }
    use crate::explain::Factor;
    use std::borrow::Cow;

    fn explanation(drivers: &[(usize, f64)]) -> Explanation<'static> {
        Explanation {
            risk_factors: drivers
                .iter()
                .map(|&(column, impact)| Factor {
                    column,
                    feature: "",
                    value: Cow::Borrowed(""),
                    impact,
                    with: None,
                })
                .collect(),
            protective_factors: Vec::new(),
            base_probability: 0.25,
            probability: 0.5,
            log_odds: 0.0,
            base_value: -1.1,
        }
    }

    #[test]
    fn sums_bins_revenue_and_drivers() {
        let model = crate::Model::embedded_default();
        let schema = model.schema();
        let (name, _, scale) = revenue_slot(schema).expect("the Telco model has MonthlyCharges");
        assert_eq!((name, scale), ("MonthlyCharges", 1.0));
        let n = schema.columns.len();
        let mut a = PortfolioAcc::new(n);
        a.add(0.0, Some(100.0), &explanation(&[(0, 10.0), (1, 2.0)]));
        a.add(0.049999, None, &explanation(&[(0, 20.0)]));
        let mut b = PortfolioAcc::new(n);
        b.add(0.05, Some(f64::NAN), &explanation(&[(1, 4.0)]));
        b.add(1.0, Some(50.0), &explanation(&[]));
        a.merge(&b);
        let p = a.finish(schema, None);
        assert_eq!(p.probability_histogram.len(), HISTOGRAM_BINS);
        assert_eq!(p.probability_histogram[0], 2);
        assert_eq!(p.probability_histogram[1], 1);
        assert_eq!(p.probability_histogram[19], 1, "1.0 falls in the last bin");
        assert_eq!(p.revenue_customers, 2);
        assert_eq!(p.monthly_revenue, Some(150.0));
        assert_eq!(p.revenue_at_risk, Some(50.0), "100 × 0 + 50 × 1");
        assert_eq!(p.revenue_note, None);
        let none = PortfolioAcc::new(n).finish(schema, None);
        assert_eq!((none.revenue_at_risk, none.monthly_revenue), (None, None));
        assert!(none.revenue_note.unwrap().contains("no scored customer"));
        assert_eq!(p.revenue_column.as_deref(), Some("MonthlyCharges"));
        // Column 0 twice (mean 15), column 1 twice (mean 3): ties broken by larger impact.
        assert_eq!(p.top_drivers.len(), 2);
        assert_eq!(p.top_drivers[0].feature, schema.columns[0].name);
        assert_eq!(p.top_drivers[0].customers, 2);
        assert_eq!(p.top_drivers[0].mean_impact, 15.0);
        assert_eq!(p.top_drivers[1].mean_impact, 3.0);
    }

    #[test]
    fn revenue_is_found_under_mrr_aliases_and_arr_is_divided_by_12() {
        use crate::schema::{ColumnKind, FeatureSchema, SourceColumn};
        let schema = |names: &[&str]| FeatureSchema {
            label: "churned".into(),
            id_column: None,
            columns: names
                .iter()
                .map(|n| SourceColumn {
                    name: (*n).into(),
                    kind: ColumnKind::Numeric,
                })
                .collect(),
        };
        for name in [
            "mrr",
            "monthly_recurring_revenue",
            "Monthly Revenue",
            "monthly_spend",
        ] {
            let s = schema(&["seats", name]);
            let (found, slot, scale) = revenue_slot(&s).unwrap();
            assert_eq!((found, slot, scale), (name, 1, 1.0));
        }
        let s = schema(&["arr", "seats"]);
        assert_eq!(revenue_slot(&s), Some(("arr", 0, 1.0 / 12.0)));
        // A monthly column wins over an annual one; no revenue column, no figure.
        let s = schema(&["arr", "mrr"]);
        assert_eq!(revenue_slot(&s).unwrap().0, "mrr");
        assert_eq!(revenue_slot(&schema(&["seats", "total_revenue"])), None);
    }
}
