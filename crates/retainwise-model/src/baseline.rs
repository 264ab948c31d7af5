//! A transparent rule-based baseline for subscription (SaaS) customers, for businesses that have
//! not trained a model on their own history yet.
//!
//! Each rule gives a column's value band a number of log-odds points; a customer's score is the
//! base plus the points of every rule. The rules are hand-set judgement (the signs follow what
//! subscription businesses commonly report: inactivity, low product usage, short tenure, monthly
//! billing and many support tickets go with churn; integrations and annual plans with staying),
//! not fitted to data, and the card says so. They are written as small trees so the baseline is
//! an ordinary [`Model`]: the same intake, mapping, report and output as a trained model, and its
//! explanations are exact TreeSHAP values like any model's. A missing value earns no points.
//!
//! `cover` gives each band its share of an assumed reference population; TreeSHAP measures every
//! factor against that average customer, whose churn probability is [`BASE_RATE`].

use std::sync::OnceLock;

use crate::card::{
    CardFeature, CvMetrics, MetricSummary, ModelCard, Software, TrainSettings, TrainingData,
};
use crate::forest::{Forest, Tree};
use crate::schema::{ColumnKind, FeatureSchema, SourceColumn};
use crate::{GbdtSettings, Model};

/// Name of the baseline (the first part of its model id, `saas-baseline-rules-v2-…`).
pub const NAME: &str = "saas-baseline";
/// Churn probability of the reference (average) customer.
pub const BASE_RATE: f64 = 0.15;

/// A split far below any value: every present value goes right, a missing one left.
const PRESENT: f64 = -1e300;
/// Share of the reference population with the value missing (small but non-zero so every
/// node has weight).
const MISSING_SHARE: f32 = 0.02;

/// The plausible values of each numeric input, recorded on the card as its range
/// ([`crate::card::FeatureRange`]), so a value far outside one is flagged and kept out of
/// revenue at risk like a trained model's ([`crate::card::FeatureRange::judge`]: below zero, or
/// more than the range's width beyond it). The rules learnt nothing, so these are the scale the
/// rules were written for, not data seen: no count, duration or spend is negative; 120 months
/// (10 years) of subscription; an MRR of 10,000 (twenty times the top band's 500 cut, so
/// values above 20,000 a month are flagged); a usage score out of 100; 50 support tickets in the
/// period (ten times the 5-ticket cut); a last activity within a year.
const RANGES: &[(&str, f64, f64)] = &[
    ("months_subscribed", 0.0, 120.0),
    ("mrr", 0.0, 10_000.0),
    ("feature_usage_score", 0.0, 100.0),
    ("support_tickets", 0.0, 50.0),
    ("last_activity_days_ago", 0.0, 365.0),
];

/// How one column earns points.
enum Rule {
    /// Bands of a number: `points[0]` below `cuts[0]`, `points[i]` in `[cuts[i-1], cuts[i])`,
    /// the last at or above the last cut; `shares` as `points`.
    Bands {
        column: &'static str,
        cuts: &'static [f64],
        points: &'static [f32],
        shares: &'static [f32],
    },
    /// A yes/no column.
    YesNo {
        column: &'static str,
        no: (f32, f32),
        yes: (f32, f32),
    },
    /// A categorical column: (level, points, share) per level.
    Levels {
        column: &'static str,
        levels: &'static [(&'static str, f32, f32)],
    },
}

const RULES: &[Rule] = &[
    Rule::Bands {
        column: "months_subscribed",
        cuts: &[6.0, 24.0],
        points: &[0.5, 0.0, -0.5],
        shares: &[0.20, 0.35, 0.45],
    },
    Rule::Bands {
        column: "mrr",
        cuts: &[50.0, 500.0],
        points: &[0.2, 0.0, -0.3],
        shares: &[0.30, 0.50, 0.20],
    },
    Rule::Levels {
        column: "plan_type",
        levels: &[("monthly", 0.4, 0.6), ("annual", -0.6, 0.4)],
    },
    Rule::Bands {
        column: "feature_usage_score",
        cuts: &[30.0, 70.0],
        points: &[0.8, 0.0, -0.6],
        shares: &[0.25, 0.45, 0.30],
    },
    Rule::Bands {
        column: "support_tickets",
        cuts: &[5.0],
        points: &[0.0, 0.5],
        shares: &[0.85, 0.15],
    },
    Rule::Bands {
        column: "last_activity_days_ago",
        cuts: &[7.0, 30.0],
        points: &[-0.6, 0.0, 1.2],
        shares: &[0.55, 0.27, 0.18],
    },
    Rule::YesNo {
        column: "has_integration",
        no: (0.2, 0.55),
        yes: (-0.7, 0.45),
    },
];

/// The baseline model, built once. Its id is `saas-baseline-rules-v{FORMAT_VERSION}-{content hash}`.
pub fn saas_baseline() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| build().expect("the baseline's hand-written trees are valid"))
}

/// True when a file whose first bytes are `head` should go to the baseline rather than to
/// `active`: `active` cannot read it (its columns do not map) and the baseline either can, or
/// lacks fewer of its inputs while matching at least half of them — a subscription file one
/// column short of the template then fails naming that column, not the active model's dozen.
/// Files that are plainly for `active` (or unreadable) stay with it.
pub fn prefers_baseline(active: &Model, head: &[u8]) -> bool {
    prefers_baseline_with(active, head, &crate::ManualMapping::new())
}

/// [`prefers_baseline`] for a file sent with a person's column choices
/// ([`crate::ManualMapping`]): they were made for one model's inputs, so they pick that model
/// (`active` when it has every chosen input, else the baseline when it has them all); without
/// choices, [`prefers_baseline`]'s rule.
pub fn prefers_baseline_with(active: &Model, head: &[u8], manual: &crate::ManualMapping) -> bool {
    let base = saas_baseline();
    if active.id() == base.id() {
        return false;
    }
    if !manual.is_empty() {
        let has_all = |m: &Model| {
            manual.keys().all(|k| {
                m.schema().columns.iter().any(|c| c.name == *k)
                    || m.schema().id_column.as_deref() == Some(k.as_str())
            })
        };
        return !has_all(active) && has_all(base);
    }
    let missing = |m: &Model| {
        crate::preview(m, head, 0)
            .ok()
            .map(|p| p.mapping.missing.len())
    };
    match (missing(active), missing(base)) {
        (Some(0), _) | (_, None) => false,
        (_, Some(0)) => true,
        (Some(a), Some(b)) => b < a && 2 * b <= base.schema().columns.len(),
        (None, Some(_)) => false,
    }
}

/// The rules in words, as on the card.
pub fn describe() -> Vec<String> {
    let mut out = vec![format!(
        "rule-based baseline, not trained on data: an average customer has a {:.0}% churn probability; each rule adds log-odds points; a missing value adds none",
        BASE_RATE * 100.0
    )];
    for rule in RULES {
        out.push(match rule {
            Rule::Bands {
                column,
                cuts,
                points,
                ..
            } => {
                let mut parts = Vec::new();
                for (i, p) in points.iter().enumerate() {
                    let band = match i {
                        0 => format!("< {}", cuts[0]),
                        i if i == cuts.len() => format!(">= {}", cuts[i - 1]),
                        i => format!("{} to {}", cuts[i - 1], cuts[i]),
                    };
                    parts.push(format!("{band}: {p:+}"));
                }
                format!("{column}: {}", parts.join(", "))
            }
            Rule::YesNo { column, no, yes } => {
                format!("{column}: yes {:+}, no {:+}", yes.0, no.0)
            }
            Rule::Levels { column, levels } => format!(
                "{column}: {}",
                levels
                    .iter()
                    .map(|(l, p, _)| format!("{l} {p:+}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    out.push(
        "train a model on your own history (POST /api/models) for accuracy you can measure".into(),
    );
    out
}

/// Trees under construction: parallel arrays, nodes appended parent first.
struct Builder {
    tree: Tree,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            tree: Tree {
                feature: Vec::new(),
                threshold: Vec::new(),
                left: Vec::new(),
                right: Vec::new(),
                missing_left: Vec::new(),
                value: Vec::new(),
                cover: Vec::new(),
            },
        }
    }
}

impl Builder {
    fn node(&mut self) -> usize {
        let t = &mut self.tree;
        t.feature.push(-1);
        t.threshold.push(0.0);
        t.left.push(0);
        t.right.push(0);
        t.missing_left.push(false);
        t.value.push(0.0);
        t.cover.push(0.0);
        t.feature.len() - 1
    }

    fn leaf(&mut self, value: f32, cover: f32) -> usize {
        let i = self.node();
        self.tree.value[i] = value;
        self.tree.cover[i] = cover;
        i
    }

    /// A split node on `feature` at `threshold` over two subtrees built by `left` and `right`.
    fn split(
        &mut self,
        feature: usize,
        threshold: f64,
        missing_left: bool,
        left: impl FnOnce(&mut Self) -> usize,
        right: impl FnOnce(&mut Self) -> usize,
    ) -> usize {
        let i = self.node();
        let l = left(self);
        let r = right(self);
        let t = &mut self.tree;
        t.feature[i] = feature as i32;
        t.threshold[i] = threshold;
        t.missing_left[i] = missing_left;
        t.left[i] = l as u32;
        t.right[i] = r as u32;
        t.cover[i] = t.cover[l] + t.cover[r];
        t.value[i] = (t.value[l] * t.cover[l] + t.value[r] * t.cover[r]) / t.cover[i];
        i
    }

    /// Bands from `k` on: below `cuts[k]` → band `k`, else the rest.
    fn bands(
        &mut self,
        feature: usize,
        cuts: &[f64],
        points: &[f32],
        shares: &[f32],
        k: usize,
    ) -> usize {
        if k == cuts.len() {
            return self.leaf(points[k], shares[k]);
        }
        self.split(
            feature,
            cuts[k],
            false,
            |b| b.leaf(points[k], shares[k]),
            |b| b.bands(feature, cuts, points, shares, k + 1),
        )
    }

    /// The tree's expected value under its covers.
    fn mean(&self) -> f64 {
        f64::from(self.tree.value[0])
    }
}

fn build() -> Result<Model, crate::ModelError> {
    let mut columns = Vec::new();
    let mut trees = Vec::new();
    let mut slot = 0;
    for rule in RULES {
        match rule {
            Rule::Bands {
                column,
                cuts,
                points,
                shares,
            } => {
                columns.push(SourceColumn {
                    name: (*column).into(),
                    kind: ColumnKind::Numeric,
                });
                let mut b = Builder::default();
                b.split(
                    slot,
                    PRESENT,
                    true,
                    |b| b.leaf(0.0, MISSING_SHARE),
                    |b| b.bands(slot, cuts, points, shares, 0),
                );
                trees.push(b);
                slot += 1;
            }
            Rule::YesNo { column, no, yes } => {
                columns.push(SourceColumn {
                    name: (*column).into(),
                    kind: ColumnKind::Boolean,
                });
                let mut b = Builder::default();
                b.split(
                    slot,
                    PRESENT,
                    true,
                    |b| b.leaf(0.0, MISSING_SHARE),
                    |b| {
                        b.split(
                            slot,
                            0.5,
                            false,
                            |b| b.leaf(no.0, no.1),
                            |b| b.leaf(yes.0, yes.1),
                        )
                    },
                );
                trees.push(b);
                slot += 1;
            }
            Rule::Levels { column, levels } => {
                columns.push(SourceColumn {
                    name: (*column).into(),
                    kind: ColumnKind::Categorical {
                        levels: levels.iter().map(|(l, _, _)| (*l).to_owned()).collect(),
                    },
                });
                // One tree per level on its one-hot slot; a missing or unseen level is all
                // zeros and earns nothing.
                for (i, (_, points, share)) in levels.iter().enumerate() {
                    let mut b = Builder::default();
                    b.split(
                        slot + i,
                        0.5,
                        true,
                        |b| b.leaf(0.0, 1.0 - share),
                        |b| b.leaf(*points, *share),
                    );
                    trees.push(b);
                }
                slot += levels.len();
            }
        }
    }
    let expected: f64 = trees.iter().map(Builder::mean).sum();
    let base = BASE_RATE.ln() - (1.0 - BASE_RATE).ln();
    let forest = Forest {
        n_features: slot,
        base_score: base - expected,
        trees: trees.into_iter().map(|b| b.tree).collect(),
    };
    let schema = FeatureSchema {
        label: "churned".into(),
        id_column: Some("user_id".into()),
        columns,
    };
    let none = MetricSummary {
        mean: f64::NAN,
        std: f64::NAN,
        folds: Vec::new(),
    };
    let mut features = CardFeature::from_schema(&schema);
    for f in &mut features {
        if let Some((_, min, max)) = RANGES.iter().find(|(c, _, _)| *c == f.name) {
            f.range = Some(crate::card::FeatureRange {
                min: *min,
                max: *max,
                negatives: false,
            });
        }
    }
    let card = ModelCard {
        name: NAME.into(),
        label: "churned".into(),
        id_column: Some("user_id".into()),
        features,
        dropped_columns: Vec::new(),
        training_data: TrainingData {
            sha256: String::new(),
            rows: 0,
            positives: 0,
        },
        cross_validation: CvMetrics {
            folds: 0,
            roc_auc: none.clone(),
            pr_auc: none.clone(),
            log_loss: none.clone(),
            brier: none,
            calibration_error: f64::NAN,
            reliability: Vec::new(),
            top_decile_lift: None,
            grouping: None,
        },
        settings: TrainSettings {
            gbdt: GbdtSettings::default(),
            search: None,
            folds: 0,
            seed: 0,
        },
        trained_at: String::new(),
        software: Software {
            retainwise_model: env!("CARGO_PKG_VERSION").into(),
            trainer: "hand-set rules (no trainer)".into(),
        },
        notes: describe(),
        reference_date: None,
        reference_date_source: None,
        observation_date: None,
        namespace: None,
        score_profile: None,
    };
    Model::rule_based(NAME, schema, forest, card)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_and_hand_choices_pick_the_model() {
        let telco = Model::embedded_default();
        let synonyms = b"customer_id,days_subscribed,monthly_spend,usage_score,tickets,days_since_last_login\nS1,30,40,10,8,60\n";
        assert!(prefers_baseline(telco, synonyms));
        // Choices made for one model's inputs pick that model.
        let mut manual = crate::ManualMapping::new();
        manual.insert("feature_usage_score".into(), Some("usage_score".into()));
        assert!(prefers_baseline_with(telco, b"a,b\n1,2\n", &manual));
        let mut manual = crate::ManualMapping::new();
        manual.insert("tenure".into(), Some("days_subscribed".into()));
        assert!(!prefers_baseline_with(telco, synonyms, &manual));
    }

    #[test]
    fn builds_and_scores_the_reference_customer_at_the_base_rate() {
        let model = saas_baseline();
        assert!(
            model.id().starts_with("saas-baseline-rules-v"),
            "{}",
            model.id()
        );
        // All missing: no rule adds points, so the score sits near the reference customer's.
        let n = model.schema().n_features();
        let all_missing = vec![f64::NAN; n];
        let p = model.predict_probability(&all_missing);
        assert!(p > 0.05 && p < 0.4, "{p}");
    }

    #[test]
    fn risky_and_safe_customers_land_on_the_right_sides() {
        let model = saas_baseline();
        // months, mrr, monthly, annual, usage, tickets, inactive days, integration
        let risky = [2.0, 30.0, 1.0, 0.0, 10.0, 8.0, 45.0, 0.0];
        let safe = [40.0, 900.0, 0.0, 1.0, 90.0, 0.0, 1.0, 1.0];
        let (pr, ps) = (
            model.predict_probability(&risky),
            model.predict_probability(&safe),
        );
        assert!(pr > 0.7, "risky {pr}");
        assert!(ps < 0.05, "safe {ps}");
    }

    #[test]
    fn subscription_files_prefer_the_baseline_only_when_the_active_model_cannot_read_them() {
        let telco = Model::embedded_default();
        let saas = b"user_id,months_subscribed,mrr,plan_type,feature_usage_score,support_tickets,last_activity_days_ago,has_integration\nu1,3,40,monthly,12,6,40,No\n";
        assert!(prefers_baseline(telco, saas));
        assert!(!prefers_baseline(saas_baseline(), saas));
        let telco_file = b"customerID,tenure\n1,2\n";
        assert!(
            !prefers_baseline(telco, telco_file),
            "neither reads it: the active model's error wins"
        );
        assert!(!prefers_baseline(telco, b"\x00\x01binary"));
        // One column short of the template: the baseline's error (naming it) beats Telco's.
        let short = b"user_id,months_subscribed,mrr,plan_type,feature_usage_score,support_tickets,last_activity_days_ago\nu1,3,40,monthly,12,6,40\n";
        assert!(prefers_baseline(telco, short));
    }

    #[test]
    fn explanations_add_up_and_name_the_rules_that_fired() {
        let model = saas_baseline();
        let explainer = model.explainer();
        let mut phi = vec![0.0; explainer.n_columns()];
        let values = [
            f64::NAN,
            0.0,
            1.0,
            3.0,
            6.0,
            10.0,
            29.0,
            30.0,
            45.0,
            80.0,
            600.0,
        ];
        let mut worst: f64 = 0.0;
        for (i, a) in values.iter().enumerate() {
            for b in &values {
                // Spread the two values over the eight slots in a few patterns.
                let x: Vec<f64> = (0..8)
                    .map(|j| {
                        let v = if (i + j) % 2 == 0 { *a } else { *b };
                        if (2..4).contains(&j) || j == 7 {
                            if v.is_nan() {
                                v
                            } else {
                                f64::from(v > 5.0)
                            }
                        } else {
                            v
                        }
                    })
                    .collect();
                let f = model.forest().log_odds(&x);
                explainer.explain(&x, &mut phi);
                let total = explainer.shap().base_value() + phi.iter().sum::<f64>();
                worst = worst.max((total - f).abs());
            }
        }
        assert!(worst < 1e-6, "{worst}");
        // An inactive, low-usage monthly customer: inactivity is the first risk driver.
        let risky = [2.0, 30.0, 1.0, 0.0, 10.0, 8.0, 45.0, 0.0];
        let e = explainer.explain(&risky, &mut phi);
        assert_eq!(e.risk_factors[0].feature, "last_activity_days_ago");
        // Words for subscription columns: days since, no integration, a check-in call.
        let summary = explainer.summary(&e);
        assert!(
            summary.starts_with("45 days since last activity and"),
            "{summary}"
        );
        let no_integration = e
            .risk_factors
            .iter()
            .chain(&e.protective_factors)
            .find(|f| f.feature == "has_integration");
        if let Some(f) = no_integration {
            assert_eq!(explainer.phrase(f), "no integration");
        }
        assert!(explainer
            .recommendation(&e, crate::RiskLevel::High)
            .contains("as they have gone quiet"));
    }

    #[test]
    fn the_card_says_it_is_not_trained() {
        let card = saas_baseline().card();
        assert!(card.notes[0].contains("not trained"));
        assert_eq!(card.training_data.rows, 0);
        assert!(
            card.notes
                .iter()
                .any(|n| n.starts_with("last_activity_days_ago: < 7: -0.6")),
            "{:?}",
            card.notes
        );
    }
}
