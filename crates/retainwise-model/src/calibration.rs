//! Probability calibration: how the blended log-odds become the churn probability.
//!
//! Two candidates, chosen per training run by cross-validated log loss with the
//! one-standard-error rule ([`choose`]):
//! - **Platt scaling** (Platt 1999, "Probabilistic outputs for support vector machines and
//!   comparisons to regularized likelihood methods"): `p = σ(α s + γ)`. Here it is fitted
//!   jointly with the blend weights — the stacker that combines the trees' and the logistic
//!   regression's out-of-fold log-odds *is* a Platt fit with two scores — and, being affine in
//!   log-odds, it is folded into the model's log-odds, so explanations stay exactly additive.
//! - **Isotonic regression** (Zadrozny & Elkan 2002, "Transforming classifier scores into
//!   accurate multiclass probability estimates", KDD): a non-decreasing step function of the
//!   score fitted by pool-adjacent-violators (Ayer et al. 1955), interpolated linearly between
//!   block centres. It is not affine, so when chosen the explanations are given on the
//!   pre-calibration log-odds scale and converted to probability points with the secant of the
//!   *calibrated* map (see [`crate::explain`]); they then add up to `p − p₀` exactly.

use serde::{Deserialize, Serialize};

use crate::forest::sigmoid;
use crate::metrics;

/// Isotonic probabilities are kept inside `[ISOTONIC_FLOOR, 1 − ISOTONIC_FLOOR]`: a block of
/// training rows that all stayed (or all left) is evidence of a small rate, not of certainty.
pub const ISOTONIC_FLOOR: f64 = 1e-3;

/// How the model's log-odds map to the churn probability.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibration {
    /// `p = σ(log-odds)`: the log-odds are already Platt-calibrated (the blend weights were
    /// fitted by logistic regression on out-of-fold scores), or the model predates calibration.
    #[default]
    Sigmoid,
    /// `p` = the isotonic map of the log-odds: piecewise-linear through `(score[k],
    /// probability[k])`, flat beyond the ends. `score` strictly increasing, `probability`
    /// non-decreasing, both the same length ≥ 1.
    Isotonic {
        /// Block centres, in log-odds.
        score: Vec<f64>,
        /// Calibrated probability at each centre.
        probability: Vec<f64>,
    },
}

impl Calibration {
    /// The churn probability for log-odds `s`.
    #[inline]
    pub fn probability(&self, s: f64) -> f64 {
        match self {
            Calibration::Sigmoid => sigmoid(s),
            Calibration::Isotonic { score, probability } => interpolate(score, probability, s),
        }
    }

    /// The map's derivative at `s`: `σ(s)(1 − σ(s))`, or the isotonic segment's slope (0 on
    /// a flat stretch or beyond the ends).
    pub fn slope(&self, s: f64) -> f64 {
        match self {
            Calibration::Sigmoid => {
                let p = sigmoid(s);
                p * (1.0 - p)
            }
            Calibration::Isotonic { score, probability } => {
                let k = score.partition_point(|&x| x <= s);
                if k == 0 || k == score.len() {
                    0.0
                } else {
                    (probability[k] - probability[k - 1]) / (score[k] - score[k - 1])
                }
            }
        }
    }

    /// `"platt"` or `"isotonic"`.
    pub fn name(&self) -> &'static str {
        match self {
            Calibration::Sigmoid => "platt",
            Calibration::Isotonic { .. } => "isotonic",
        }
    }

    /// Checks the isotonic points (see [`Calibration::Isotonic`]).
    ///
    /// # Errors
    /// A sentence naming the problem.
    pub fn validate(&self) -> Result<(), String> {
        if let Calibration::Isotonic { score, probability } = self {
            if score.is_empty() || score.len() != probability.len() {
                return Err(
                    "the isotonic calibration needs as many probabilities as scores, at least one"
                        .into(),
                );
            }
            if score.windows(2).any(|w| w[0] >= w[1]) || score.iter().any(|s| !s.is_finite()) {
                return Err("the isotonic calibration's scores are not strictly increasing".into());
            }
            if probability.windows(2).any(|w| w[0] > w[1])
                || probability.iter().any(|p| !(0.0..=1.0).contains(p))
            {
                return Err(
                    "the isotonic calibration's probabilities are not non-decreasing in [0, 1]"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

fn interpolate(xs: &[f64], ys: &[f64], s: f64) -> f64 {
    let k = xs.partition_point(|&x| x <= s);
    if k == 0 {
        return ys[0];
    }
    if k == xs.len() {
        return ys[xs.len() - 1];
    }
    let (x0, x1, y0, y1) = (xs[k - 1], xs[k], ys[k - 1], ys[k]);
    y0 + (y1 - y0) * (s - x0) / (x1 - x0)
}

/// Fits the isotonic map of `scores` to `labels` by pool-adjacent-violators over the rows
/// sorted by score (ties pooled first, so equal scores get one probability).
pub fn fit_isotonic(scores: &[f64], labels: &[bool]) -> Calibration {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    // Blocks: (sum of scores, sum of labels, count).
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    let mut last: Option<f64> = None;
    for &i in &order {
        let y = if labels[i] { 1.0 } else { 0.0 };
        match (blocks.last_mut(), last) {
            (Some(b), Some(l)) if l == scores[i] => {
                b.0 += scores[i];
                b.1 += y;
                b.2 += 1.0;
            }
            _ => blocks.push((scores[i], y, 1.0)),
        }
        last = Some(scores[i]);
        while blocks.len() >= 2 {
            let n = blocks.len();
            let (a, b) = (blocks[n - 2], blocks[n - 1]);
            if a.1 / a.2 < b.1 / b.2 {
                break;
            }
            blocks[n - 2] = (a.0 + b.0, a.1 + b.1, a.2 + b.2);
            blocks.pop();
        }
    }
    let score = blocks.iter().map(|b| b.0 / b.2).collect();
    let probability = blocks
        .iter()
        .map(|b| (b.1 / b.2).clamp(ISOTONIC_FLOOR, 1.0 - ISOTONIC_FLOOR))
        .collect();
    Calibration::Isotonic { score, probability }
}

/// Cross-validated log loss of each candidate and the one chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationChoice {
    /// `"platt"` or `"isotonic"`: isotonic only when its log loss is lower than Platt's by more
    /// than one standard error of the per-row difference (the one-standard-error rule, Breiman
    /// et al. 1984, "Classification and Regression Trees", §3.4.3: the simpler of two models
    /// unless the data clearly favour the other; Platt has 2–3 parameters, isotonic one per
    /// block).
    pub chosen: String,
    /// Log loss of Platt scaling on held-out folds.
    pub platt_log_loss: f64,
    /// Log loss of isotonic regression on held-out folds.
    pub isotonic_log_loss: f64,
    /// Standard error of the mean per-row difference of the two.
    pub difference_se: f64,
}

/// Chooses between Platt scaling and isotonic regression for out-of-fold scores.
///
/// `features` holds, per row, the scores the stacker combines (row-major, `width` per row);
/// `fold` the row's fold. For each fold, both candidates are fitted on the other folds' rows —
/// Platt: a logistic regression of the labels on the scores; isotonic: that same regression's
/// score, then pool-adjacent-violators — and scored by log loss on the fold's rows.
///
/// # Errors
/// As [`crate::linear::fit_logistic`].
pub fn choose(
    features: &[f64],
    width: usize,
    labels: &[bool],
    fold: &[usize],
    folds: &[usize],
    stack_l2: f64,
) -> Result<CalibrationChoice, String> {
    let mut platt = Vec::with_capacity(labels.len());
    let mut iso = Vec::with_capacity(labels.len());
    let mut held_labels = Vec::with_capacity(labels.len());
    for &f in folds {
        let train: Vec<usize> = (0..labels.len()).filter(|&i| fold[i] != f).collect();
        let held: Vec<usize> = (0..labels.len()).filter(|&i| fold[i] == f).collect();
        let (x, y) = gather(features, width, labels, &train);
        let beta = crate::linear::fit_stacking(&x, width, &y, stack_l2)?;
        let score = |i: usize| stacked(&beta, &features[i * width..(i + 1) * width]);
        let train_scores: Vec<f64> = train.iter().map(|&i| score(i)).collect();
        let map = fit_isotonic(&train_scores, &y);
        for &i in &held {
            let s = score(i);
            platt.push(sigmoid(s));
            iso.push(map.probability(s));
            held_labels.push(labels[i]);
        }
    }
    let platt_log_loss = metrics::log_loss(&held_labels, &platt);
    let isotonic_log_loss = metrics::log_loss(&held_labels, &iso);
    let diffs: Vec<f64> = held_labels
        .iter()
        .zip(platt.iter().zip(&iso))
        .map(|(&y, (&p, &q))| {
            metrics::log_loss(std::slice::from_ref(&y), &[q])
                - metrics::log_loss(std::slice::from_ref(&y), &[p])
        })
        .collect();
    let (mean_diff, sd) = metrics::mean_std(&diffs);
    let se = sd / (diffs.len() as f64).sqrt();
    Ok(CalibrationChoice {
        chosen: if mean_diff < -se { "isotonic" } else { "platt" }.into(),
        platt_log_loss: crate::card::round6(platt_log_loss),
        isotonic_log_loss: crate::card::round6(isotonic_log_loss),
        difference_se: crate::card::round6(se),
    })
}

/// The rows `pick` of a row-major matrix, and their labels.
pub(crate) fn gather(
    features: &[f64],
    width: usize,
    labels: &[bool],
    pick: &[usize],
) -> (Vec<f64>, Vec<bool>) {
    let mut x = Vec::with_capacity(pick.len() * width);
    for &i in pick {
        x.extend_from_slice(&features[i * width..(i + 1) * width]);
    }
    (x, pick.iter().map(|&i| labels[i]).collect())
}

/// `β₀ + Σ β_k s_k`.
pub(crate) fn stacked(beta: &[f64], scores: &[f64]) -> f64 {
    beta[0]
        + beta[1..]
            .iter()
            .zip(scores)
            .map(|(b, s)| b * s)
            .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_pools_violators_and_interpolates() {
        let scores = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let labels = [false, true, false, false, true, true];
        let c = fit_isotonic(&scores, &labels);
        let Calibration::Isotonic { score, probability } = &c else {
            panic!()
        };
        // Blocks {0}, {1,2,3} (1/3), {4,5}.
        assert_eq!(score, &vec![0.0, 2.0, 4.5]);
        assert_eq!(probability[0], ISOTONIC_FLOOR);
        assert!((probability[1] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(probability[2], 1.0 - ISOTONIC_FLOOR);
        assert!(c.validate().is_ok());
        assert_eq!(c.probability(-9.0), ISOTONIC_FLOOR);
        assert!((c.probability(1.0) - (ISOTONIC_FLOOR + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(c.probability(9.0), 1.0 - ISOTONIC_FLOOR);
        assert_eq!(Calibration::Sigmoid.probability(0.0), 0.5);
    }

    #[test]
    fn choice_prefers_platt_for_a_logistic_truth_and_isotonic_for_a_step() {
        let rows = 4_000;
        let mut s: u64 = 17;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let x: Vec<f64> = (0..rows).map(|_| next() * 8.0 - 4.0).collect();
        let fold: Vec<usize> = (0..rows).map(|i| i % 4).collect();
        let logistic: Vec<bool> = x.iter().map(|&v| next() < sigmoid(1.3 * v)).collect();
        let c = choose(&x, 1, &logistic, &fold, &[0, 1, 2, 3], 1e-6).unwrap();
        assert_eq!(c.chosen, "platt", "{c:?}");
        // Churn rate 0.1 below 0, 0.9 above: a step no sigmoid of x fits well.
        let step: Vec<bool> = x
            .iter()
            .map(|&v| next() < if v < 0.0 { 0.1 } else { 0.9 })
            .collect();
        let c = choose(&x, 1, &step, &fold, &[0, 1, 2, 3], 1e-6).unwrap();
        assert_eq!(c.chosen, "isotonic", "{c:?}");
    }
}
