//! Drift: how far a scored file lies from the data the model was trained on.
//!
//! At training time the card stores a compact profile of each feature ([`FeatureProfile`]):
//! decile bins of a numeric or date column, the level shares of a categorical or boolean one,
//! each with the share missing; and the distribution of the out-of-fold churn probabilities
//! ([`ScoreProfile`]). While a file is scored, a [`DriftAcc`] per parallel chunk counts its
//! rows into the same bins (constant memory, merged like [`crate::portfolio::PortfolioAcc`]),
//! and [`DriftAcc::finish`] compares the two with the population stability index:
//!
//! `PSI = Σ_bins (a − e) · ln(a / e)`, `a` the file's share and `e` the training share of a bin,
//! each floored at [`PSI_FLOOR`] so an empty bin counts instead of dividing by zero.
//!
//! The index and its usual thresholds ([`PSI_WATCH`] 0.1, [`PSI_ACT`] 0.25) are those of
//! N. Siddiqi, *Credit Risk Scorecards* (Wiley, 2006), ch. 8, and B. Yurdakul, *Statistical
//! Properties of Population Stability Index* (Western Michigan University, 2018).

use serde::{Deserialize, Serialize};

use crate::card::CardFeature;
use crate::quality::{Flag, FlagKind};
use crate::schema::{ColumnKind, FeatureSchema};

/// Above this PSI a distribution has moved enough to watch (Siddiqi 2006).
pub const PSI_WATCH: f64 = 0.1;

/// Above this PSI a distribution has moved enough to act on: investigate, consider retraining
/// (Siddiqi 2006).
pub const PSI_ACT: f64 = 0.25;

/// The share an empty bin counts as in [`psi`] (0.01 %): without a floor one empty bin makes
/// the index infinite; Yurdakul (2018) discusses the same small-constant correction.
pub const PSI_FLOOR: f64 = 1e-4;

/// Quantile bins of a numeric or date profile: deciles.
pub const DECILES: usize = 10;

/// The population stability index of `actual` against `expected` shares (same bins, each
/// list summing to about 1): `Σ (a − e) · ln(a / e)`, both shares floored at [`PSI_FLOOR`].
/// 0 for identical distributions; never negative.
///
/// # Panics
/// When the lists differ in length (a bug: both come from the same profile).
pub fn psi(actual: &[f64], expected: &[f64]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "PSI over the same bins");
    actual
        .iter()
        .zip(expected)
        .map(|(&a, &e)| {
            let (a, e) = (a.max(PSI_FLOOR), e.max(PSI_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// The training distribution of one feature, stored on the card ([`CardFeature::profile`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    /// For a numeric or date column: the upper edges of its bins, ascending (the training
    /// deciles, repeated values merged), so there are `edges.len() + 1` bins: bin `i` holds
    /// values `≤ edges[i]` and above the edge before; the last bin holds values above the last
    /// edge. Empty for a categorical or boolean column, whose bins are its levels in slot
    /// order (a boolean: no, yes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
    /// Training share of the rows in each bin (rounded to 6 decimals).
    pub shares: Vec<f64>,
    /// Training share of the rows missing (rounded to 6 decimals); with `shares` it sums to 1.
    pub missing: f64,
}

/// The training distribution of the model's churn probability, stored on the card
/// ([`crate::ModelCard::score_profile`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreProfile {
    /// What the shares are of: the out-of-fold predictions of cross-validation (each row
    /// scored by a model that did not see it), so they are what the model gives unseen
    /// customers like the training ones.
    pub source: String,
    /// Share of rows per probability bin of 0.05 (the bins of
    /// [`crate::portfolio::Portfolio::probability_histogram`]), rounded to 6 decimals.
    pub shares: Vec<f64>,
}

impl ScoreProfile {
    /// The profile of out-of-fold probabilities `oof` (each in [0, 1]).
    pub fn of_out_of_fold(oof: &[f64]) -> ScoreProfile {
        let mut counts = [0u64; crate::portfolio::HISTOGRAM_BINS];
        for &p in oof {
            counts[crate::portfolio::probability_bin((p * 1e6).round() / 1e6)] += 1;
        }
        ScoreProfile {
            source: "out-of-fold predictions of cross-validation on the training file".into(),
            shares: shares_of(&counts, oof.len() as u64),
        }
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn shares_of(counts: &[u64], n: u64) -> Vec<f64> {
    counts
        .iter()
        .map(|&c| round6(c as f64 / n.max(1) as f64))
        .collect()
}

/// How one schema column's encoded slots fall into its profile's bins.
#[derive(Clone, Debug)]
enum Binner {
    /// One slot; NaN is missing.
    Edges(Vec<f64>),
    /// `width` one-hot slots; all zeros is missing (or unseen).
    OneHot(usize),
    /// One slot: 0 no, 1 yes, NaN missing.
    Boolean,
}

impl Binner {
    fn bins(&self) -> usize {
        match self {
            Binner::Edges(e) => e.len() + 1,
            Binner::OneHot(w) => *w,
            Binner::Boolean => 2,
        }
    }

    /// The bin of a row's slots, `None` when the value is missing.
    fn bin(&self, slots: &[f64]) -> Option<usize> {
        match self {
            Binner::Edges(edges) => {
                let x = slots[0];
                (!x.is_nan()).then(|| edges.partition_point(|e| *e < x))
            }
            Binner::OneHot(w) => slots[..*w].iter().position(|v| *v == 1.0),
            Binner::Boolean => {
                let x = slots[0];
                (!x.is_nan()).then_some(usize::from(x != 0.0))
            }
        }
    }
}

/// The deciles of the present values of one column, repeated values merged.
fn decile_edges(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..DECILES)
        .map(|k| v[(k * v.len()).div_ceil(DECILES).max(1) - 1])
        .collect();
    edges.dedup();
    edges
}

/// The binner of a column from its kind and, for numbers, its profile's edges.
fn binner(kind: &ColumnKind, profile: &FeatureProfile) -> Binner {
    match kind {
        ColumnKind::Numeric | ColumnKind::Date => Binner::Edges(profile.edges.clone()),
        ColumnKind::Categorical { levels } => Binner::OneHot(levels.len()),
        ColumnKind::Boolean => Binner::Boolean,
    }
}

/// The training profile of every column of `schema`, read from the encoded training matrix
/// `data` (column-major, `rows` rows, NaN = missing), in schema order.
pub fn profiles(schema: &FeatureSchema, data: &[f64], rows: usize) -> Vec<FeatureProfile> {
    schema
        .columns
        .iter()
        .zip(schema.offsets())
        .map(|(c, at)| {
            let edges = match c.kind {
                ColumnKind::Numeric | ColumnKind::Date => {
                    decile_edges(&data[at * rows..(at + 1) * rows])
                }
                _ => Vec::new(),
            };
            let empty = FeatureProfile {
                edges,
                shares: Vec::new(),
                missing: 0.0,
            };
            let b = binner(&c.kind, &empty);
            let mut counts = vec![0u64; b.bins() + 1];
            let mut slots = vec![0.0; c.kind.width()];
            for r in 0..rows {
                for (k, s) in slots.iter_mut().enumerate() {
                    *s = data[(at + k) * rows + r];
                }
                counts[b.bin(&slots).unwrap_or(b.bins())] += 1;
            }
            let mut shares = shares_of(&counts, rows as u64);
            let missing = shares.pop().unwrap_or(0.0);
            FeatureProfile {
                shares,
                missing,
                ..empty
            }
        })
        .collect()
}

/// How far a feature (or the score) has moved: below [`PSI_WATCH`], above it, above
/// [`PSI_ACT`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftLevel {
    /// PSI ≤ 0.1: no significant change.
    #[default]
    Stable,
    /// 0.1 < PSI ≤ 0.25: a moderate change, to watch.
    Watch,
    /// PSI > 0.25: a significant change, to act on.
    Act,
}

impl DriftLevel {
    /// The level of a PSI value.
    pub fn of(psi: f64) -> DriftLevel {
        if psi > PSI_ACT {
            DriftLevel::Act
        } else if psi > PSI_WATCH {
            DriftLevel::Watch
        } else {
            DriftLevel::Stable
        }
    }

    /// `"stable"`, `"watch"` or `"act"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftLevel::Stable => "stable",
            DriftLevel::Watch => "watch",
            DriftLevel::Act => "act",
        }
    }
}

/// One feature of a scored file compared with training.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeatureDrift {
    /// The feature's name in the model.
    pub feature: String,
    /// PSI of the file's bins (missing as a bin of its own) against training's, rounded to 4
    /// decimals.
    pub psi: f64,
    /// Its [`DriftLevel`].
    pub level: DriftLevel,
    /// Share of scored rows missing this value (unseen categories not included).
    pub missing_share: f64,
    /// Share of training rows missing it.
    pub training_missing_share: f64,
    /// Share of scored rows with a category the model never saw (read as missing, so also in
    /// the PSI's missing bin); 0 for other kinds (training, by definition, has none).
    pub unseen_share: f64,
}

/// A scored file compared with the model's training data; part of [`crate::ScoreReport`].
/// Every field defaulted when absent, so a summary stored before drift was measured reads
/// (with `measured` false).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftReport {
    /// Whether the model's card has training profiles to compare with (a rule-based model, or
    /// one trained before profiles were recorded, has none: `note` says so).
    pub measured: bool,
    /// Scored rows compared.
    pub rows: u64,
    /// Per feature with a profile, in schema order.
    pub features: Vec<FeatureDrift>,
    /// PSI of the file's churn-probability histogram (20 bins of 0.05) against the card's
    /// [`ScoreProfile`] (training's out-of-fold predictions); `None` when the card has none.
    pub score_psi: Option<f64>,
    /// Its [`DriftLevel`] (stable when not measured).
    pub score_level: DriftLevel,
    /// Features above [`PSI_ACT`], highest PSI first.
    pub act: Vec<String>,
    /// Features above [`PSI_WATCH`] and at most [`PSI_ACT`], highest PSI first.
    pub watch: Vec<String>,
    /// Why something was not measured, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DriftReport {
    /// The worst level among the features and the score.
    pub fn level(&self) -> DriftLevel {
        if !self.act.is_empty() || self.score_level == DriftLevel::Act {
            DriftLevel::Act
        } else if !self.watch.is_empty() || self.score_level == DriftLevel::Watch {
            DriftLevel::Watch
        } else {
            DriftLevel::Stable
        }
    }

    /// One line for a person: `"drift: act on Contract (PSI 1.23); watch tenure (PSI 0.12);
    /// churn probability PSI 0.31 (act)"`, or `"drift: none above PSI 0.1"`.
    pub fn summary(&self) -> String {
        if !self.measured {
            return format!(
                "drift: not measured ({})",
                self.note.as_deref().unwrap_or("no training profile")
            );
        }
        let psi_of = |name: &str| {
            self.features
                .iter()
                .find(|f| f.feature == name)
                .map(|f| format!("{name} (PSI {:.2})", f.psi))
                .unwrap_or_else(|| name.to_owned())
        };
        let mut parts = Vec::new();
        if !self.act.is_empty() {
            let names: Vec<String> = self.act.iter().map(|n| psi_of(n)).collect();
            parts.push(format!("act on {}", names.join(", ")));
        }
        if !self.watch.is_empty() {
            let names: Vec<String> = self.watch.iter().map(|n| psi_of(n)).collect();
            parts.push(format!("watch {}", names.join(", ")));
        }
        if let Some(p) = self.score_psi {
            if self.score_level != DriftLevel::Stable {
                parts.push(format!(
                    "churn probability PSI {p:.2} ({})",
                    self.score_level.as_str()
                ));
            }
        }
        if parts.is_empty() {
            format!("drift: none above PSI {PSI_WATCH}")
        } else {
            format!("drift: {}", parts.join("; "))
        }
    }
}

/// Running bin counts of a scored file; add rows, merge chunks, then [`finish`](Self::finish).
/// Serialisable (its counts only: a piece of a file stores them for the merge, which merges
/// them into an accumulator made by [`DriftAcc::new`] for the same model).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct DriftAcc {
    /// Per profiled column: (schema index, slot offset, binner).
    #[serde(skip)]
    columns: Vec<(usize, usize, Binner)>,
    /// Per profiled column: counts per bin, the last one missing.
    counts: Vec<Vec<u64>>,
    /// Per profiled column: unseen categories.
    unseen: Vec<u64>,
    rows: u64,
}

impl DriftAcc {
    /// An empty accumulator for the profiled columns of `features` (the card's, in schema
    /// order).
    pub fn new(schema: &FeatureSchema, features: &[CardFeature]) -> DriftAcc {
        let columns: Vec<(usize, usize, Binner)> = schema
            .columns
            .iter()
            .zip(schema.offsets())
            .zip(features)
            .enumerate()
            .filter_map(|(i, ((c, at), f))| {
                let p = f.profile.as_ref()?;
                let b = binner(&c.kind, p);
                (b.bins() == p.shares.len()).then_some((i, at, b))
            })
            .collect();
        let counts = columns
            .iter()
            .map(|(_, _, b)| vec![0; b.bins() + 1])
            .collect();
        let unseen = vec![0; columns.len()];
        DriftAcc {
            columns,
            counts,
            unseen,
            rows: 0,
        }
    }

    /// Counts one scored row: its encoded `features` and flagged values.
    pub fn add(&mut self, features: &[f64], flags: &[Flag]) {
        self.rows += 1;
        for (k, (_, at, b)) in self.columns.iter().enumerate() {
            let bin = b.bin(&features[*at..]).unwrap_or(b.bins());
            self.counts[k][bin] += 1;
        }
        for f in flags.iter().filter(|f| f.kind == FlagKind::Unseen) {
            if let Some(k) = self.columns.iter().position(|(i, _, _)| *i == f.column) {
                self.unseen[k] += 1;
            }
        }
    }

    /// Adds `other`'s counts (a later chunk of the same file).
    pub fn merge(&mut self, other: &DriftAcc) {
        self.rows += other.rows;
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.unseen.iter_mut().zip(&other.unseen) {
            *a += b;
        }
    }

    /// The file's drift against the card's profiles: `schema` and `features` as given to
    /// [`DriftAcc::new`], `score` the card's score profile and `histogram` the file's
    /// churn-probability histogram ([`crate::portfolio::Portfolio::probability_histogram`]).
    pub fn finish(
        &self,
        schema: &FeatureSchema,
        features: &[CardFeature],
        score: Option<&ScoreProfile>,
        histogram: &[u64],
    ) -> DriftReport {
        if self.columns.is_empty() {
            return DriftReport {
                note: Some(
                    "the model card has no training profiles (a rule-based model, or one trained \
                     before they were recorded): drift is not measured"
                        .into(),
                ),
                rows: self.rows,
                ..DriftReport::default()
            };
        }
        let n = self.rows.max(1) as f64;
        let mut out: Vec<FeatureDrift> = Vec::new();
        for (k, (i, _, _)) in self.columns.iter().enumerate() {
            let p = features[*i].profile.as_ref().expect("profiled column");
            let counts = &self.counts[k];
            let actual: Vec<f64> = counts.iter().map(|&c| c as f64 / n).collect();
            let mut expected = p.shares.clone();
            expected.push(p.missing);
            let value = psi(&actual, &expected);
            let missing = counts[counts.len() - 1] - self.unseen[k];
            out.push(FeatureDrift {
                feature: schema.columns[*i].name.clone(),
                psi: (value * 1e4).round() / 1e4,
                level: DriftLevel::of(value),
                missing_share: round6(missing as f64 / n),
                training_missing_share: p.missing,
                unseen_share: round6(self.unseen[k] as f64 / n),
            });
        }
        let mut ranked: Vec<&FeatureDrift> = out.iter().collect();
        ranked.sort_by(|a, b| b.psi.total_cmp(&a.psi).then(a.feature.cmp(&b.feature)));
        let named = |level| {
            ranked
                .iter()
                .filter(|f| f.level == level)
                .map(|f| f.feature.clone())
                .collect()
        };
        let total: u64 = histogram.iter().sum();
        let score_psi = score
            .filter(|s| s.shares.len() == histogram.len() && total > 0)
            .map(|s| {
                let actual: Vec<f64> = histogram.iter().map(|&c| c as f64 / total as f64).collect();
                (psi(&actual, &s.shares) * 1e4).round() / 1e4
            });
        DriftReport {
            measured: true,
            rows: self.rows,
            act: named(DriftLevel::Act),
            watch: named(DriftLevel::Watch),
            features: out,
            score_level: score_psi.map(DriftLevel::of).unwrap_or_default(),
            note: score_psi.is_none().then(|| {
                "the model card has no distribution of training predictions: the churn \
                 probability's shift is not measured"
                    .to_owned()
            }),
            score_psi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_matches_a_hand_computed_value() {
        // (0.5−0.25)·ln(0.5/0.25) + (0.3−0.25)·ln(0.3/0.25) + (0.2−0.5)·ln(0.2/0.5)
        // = 0.25·0.693147 + 0.05·0.182322 + (−0.3)·(−0.916291) = 0.173287 + 0.009116 + 0.274887
        let v = psi(&[0.5, 0.3, 0.2], &[0.25, 0.25, 0.5]);
        assert!((v - 0.457290).abs() < 1e-6, "{v}");
        assert_eq!(psi(&[0.2, 0.8], &[0.2, 0.8]), 0.0);
        // An empty bin counts as the floor: (0.5 − 1e-4)·ln(0.5 / 1e-4) + (0.5−1)·ln(0.5).
        let v = psi(&[0.5, 0.5], &[0.0, 1.0]);
        let hand = (0.5 - 1e-4) * (0.5f64 / 1e-4).ln() + (-0.5) * 0.5f64.ln();
        assert!((v - hand).abs() < 1e-12 && (v - 4.6043).abs() < 1e-3, "{v}");
        assert_eq!(DriftLevel::of(0.1), DriftLevel::Stable);
        assert_eq!(DriftLevel::of(0.1001), DriftLevel::Watch);
        assert_eq!(DriftLevel::of(0.25), DriftLevel::Watch);
        assert_eq!(DriftLevel::of(0.2501), DriftLevel::Act);
    }

    #[test]
    fn deciles_bin_values_as_training_did() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            decile_edges(&v),
            vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
        let b = Binner::Edges(decile_edges(&v));
        assert_eq!(b.bin(&[10.0]), Some(0), "an edge belongs to the bin below");
        assert_eq!(b.bin(&[10.5]), Some(1));
        assert_eq!(b.bin(&[1000.0]), Some(9));
        assert_eq!(b.bin(&[f64::NAN]), None);
        // Repeated values merge edges: a 0/1 column with few ones has two bins.
        let mut flags = vec![0.0; 85];
        flags.extend([1.0; 15]);
        assert_eq!(decile_edges(&flags), vec![0.0, 1.0]);
    }

    #[test]
    fn a_file_like_training_is_stable_and_a_shifted_one_is_flagged() {
        let model = crate::Model::embedded_default();
        let (schema, card) = (model.schema(), model.card());
        let contract = schema
            .columns
            .iter()
            .position(|c| c.name == "Contract")
            .unwrap();
        let profile = card.features[contract].profile.as_ref().unwrap();
        let at = schema.offsets()[contract];
        let mut like = DriftAcc::new(schema, &card.features);
        let mut shifted = DriftAcc::new(schema, &card.features);
        let mut row = vec![0.0; schema.n_features()];
        // Rows whose Contract follows the training shares (others all missing → same
        // for both), and rows that are all month-to-month (level 0 in the Telco schema).
        for k in 0..1000 {
            row[at..at + 3].fill(0.0);
            let u = k as f64 / 1000.0;
            let level = if u < profile.shares[0] {
                0
            } else if u < profile.shares[0] + profile.shares[1] {
                1
            } else {
                2
            };
            row[at + level] = 1.0;
            like.add(&row, &[]);
            row[at..at + 3].fill(0.0);
            row[at] = 1.0;
            shifted.add(&row, &[]);
        }
        let hist = vec![50; crate::portfolio::HISTOGRAM_BINS];
        let like = like.finish(schema, &card.features, card.score_profile.as_ref(), &hist);
        let c = like
            .features
            .iter()
            .find(|f| f.feature == "Contract")
            .unwrap();
        assert!(c.psi < 0.01, "{c:?}");
        let shifted = shifted.finish(schema, &card.features, card.score_profile.as_ref(), &hist);
        assert!(shifted.act.contains(&"Contract".to_owned()), "{shifted:?}");
        assert!(
            shifted.summary().contains("act on"),
            "{}",
            shifted.summary()
        );
    }
}
