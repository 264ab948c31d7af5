//! Measured accuracy: the figures of [`crate::metrics`] on forecasts whose outcomes are known,
//! each with a 95 % confidence interval, so "trained at 0.85, live at 0.78" can be told apart
//! from noise.
//!
//! - ROC AUC: DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more
//!   correlated receiver operating characteristic curves: a nonparametric approach",
//!   Biometrics 44(3), computed with the fast midrank algorithm of Sun & Xu (2014), "Fast
//!   implementation of DeLong's algorithm for comparing the areas under correlated receiver
//!   operating characteristic curves", IEEE Signal Processing Letters 21(11): O(n log n). The
//!   interval is AUC ± 1.96 √var, clipped to [0, 1] (as R's pROC `ci.auc(method = "delong")`).
//!   [`delong_difference`] gives the paired difference of two models on the same rows.
//! - Every other figure: the percentile bootstrap (Efron & Tibshirani 1993, "An Introduction to
//!   the Bootstrap", ch. 13) over [`BOOTSTRAP_RESAMPLES`] resamples of the rows drawn with
//!   SplitMix64 from [`BOOTSTRAP_SEED`], so the same rows always give the same interval. Rows
//!   are sorted by score once; a resample is a multiplicity per row, and each figure is one
//!   pass over the sorted rows (O(n) per resample).
//!
//! Pure functions: no I/O. Inputs are `labels[i]` (true = churned) and `probs[i]`, the churn
//! probability forecast for the same row; slices of different lengths are a programming error
//! (panic).

use serde::{Deserialize, Serialize};

use crate::metrics::{self, ReliabilityBin, LOG_LOSS_EPS};
use crate::train::SplitMix64;

/// Resamples of the percentile bootstrap.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// The bootstrap's fixed seed: the same rows give the same interval on every run.
pub const BOOTSTRAP_SEED: u64 = 0x0C7C_0E5E_ED17;

/// The standard normal quantile of 0.975: a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Equal-width bins of the calibration error and the reliability table (the card's too).
pub const CALIBRATION_BINS: usize = 10;

/// A figure and its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The figure on the rows as they are.
    pub value: f64,
    /// Lower end of the 95 % interval.
    pub lower: f64,
    /// Upper end of the 95 % interval.
    pub upper: f64,
}

/// The measured accuracy of forecasts against outcomes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Forecasts with a known outcome: what every figure rests on.
    pub n: u64,
    /// Of them, customers who churned.
    pub positives: u64,
    /// Area under the ROC curve, DeLong interval; `None` without both classes (or with fewer
    /// than two rows of either, where DeLong's variance is undefined).
    pub roc_auc: Option<Estimate>,
    /// Average precision (the PR curve's summary), bootstrap interval; `None` without positives.
    pub pr_auc: Option<Estimate>,
    /// Mean log loss (natural log), bootstrap interval.
    pub log_loss: Estimate,
    /// Brier score, bootstrap interval.
    pub brier: Estimate,
    /// Expected calibration error over [`CALIBRATION_BINS`] bins, bootstrap interval.
    pub calibration_error: Estimate,
    /// The reliability table of those bins.
    pub reliability: Vec<ReliabilityBin>,
    /// Churn rate in the riskiest tenth over the overall rate; `None` without positives.
    pub top_decile_lift: Option<Estimate>,
    /// Churn rate in the riskiest tenth (precision at the top decile); `None` without rows.
    pub top_decile_precision: Option<Estimate>,
    /// How the intervals were made, in words.
    pub intervals: String,
}

/// DeLong's estimate of a ROC AUC and its variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeLong {
    /// The AUC (the Mann–Whitney statistic, ties counting one half).
    pub auc: f64,
    /// DeLong's variance of it.
    pub variance: f64,
}

impl DeLong {
    /// The 95 % interval: AUC ± [`Z_95`] √variance, clipped to [0, 1].
    pub fn interval(&self) -> Estimate {
        let half = Z_95 * self.variance.max(0.0).sqrt();
        Estimate {
            value: self.auc,
            lower: (self.auc - half).max(0.0),
            upper: (self.auc + half).min(1.0),
        }
    }
}

/// The paired comparison of two models' ROC AUCs on the same rows (DeLong et al. 1988).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AucDifference {
    /// AUC of the first model minus the second's, with its 95 % interval (not clipped).
    pub difference: Estimate,
    /// Two-sided p-value of "no difference" (normal approximation).
    pub p_value: f64,
}

/// Midranks (1-based, ties averaged) of `xs` (Sun & Xu 2014, Algorithm "compute midrank").
fn midranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = mid;
        }
        i = j + 1;
    }
    out
}

/// The structural components of one model's scores: `v10[i]` for each positive, `v01[j]` for
/// each negative, and the AUC (their mean).
fn components(labels: &[bool], scores: &[f64]) -> Option<(Vec<f64>, Vec<f64>, f64)> {
    assert_eq!(
        labels.len(),
        scores.len(),
        "labels and scores differ in length"
    );
    let pos: Vec<f64> = (0..labels.len())
        .filter(|&i| labels[i])
        .map(|i| scores[i])
        .collect();
    let neg: Vec<f64> = (0..labels.len())
        .filter(|&i| !labels[i])
        .map(|i| scores[i])
        .collect();
    let (m, n) = (pos.len(), neg.len());
    if m < 2 || n < 2 {
        return None;
    }
    let tx = midranks(&pos);
    let ty = midranks(&neg);
    let z: Vec<f64> = pos.iter().chain(&neg).copied().collect();
    let tz = midranks(&z);
    let (mf, nf) = (m as f64, n as f64);
    let auc = (tz[..m].iter().sum::<f64>() - mf * (mf + 1.0) / 2.0) / (mf * nf);
    let v10: Vec<f64> = (0..m).map(|i| (tz[i] - tx[i]) / nf).collect();
    let v01: Vec<f64> = (0..n).map(|j| 1.0 - (tz[m + j] - ty[j]) / mf).collect();
    Some((v10, v01, auc))
}

/// Sample covariance (n − 1 denominator) of two equally long series.
fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0)
}

/// DeLong's AUC and variance, by Sun & Xu's midrank algorithm. `None` with fewer than two
/// positives or two negatives (the variance needs two of each).
pub fn delong(labels: &[bool], scores: &[f64]) -> Option<DeLong> {
    let (v10, v01, auc) = components(labels, scores)?;
    let variance =
        covariance(&v10, &v10) / v10.len() as f64 + covariance(&v01, &v01) / v01.len() as f64;
    Some(DeLong { auc, variance })
}

/// DeLong's paired test of two models' AUCs on the same rows: `a` minus `b`, its 95 %
/// interval from the variance `S_aa + S_bb − 2 S_ab` of the difference, and the two-sided
/// p-value. `None` with fewer than two rows of either class.
pub fn delong_difference(labels: &[bool], a: &[f64], b: &[f64]) -> Option<AucDifference> {
    let (a10, a01, auc_a) = components(labels, a)?;
    let (b10, b01, auc_b) = components(labels, b)?;
    let (m, n) = (a10.len() as f64, a01.len() as f64);
    let var = (covariance(&a10, &a10) + covariance(&b10, &b10) - 2.0 * covariance(&a10, &b10)) / m
        + (covariance(&a01, &a01) + covariance(&b01, &b01) - 2.0 * covariance(&a01, &b01)) / n;
    let d = auc_a - auc_b;
    let se = var.max(0.0).sqrt();
    let p_value = if se > 0.0 {
        2.0 * (1.0 - standard_normal_cdf((d / se).abs()))
    } else if d == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(AucDifference {
        difference: Estimate {
            value: d,
            lower: d - Z_95 * se,
            upper: d + Z_95 * se,
        },
        p_value,
    })
}

/// The difference of two ROC AUCs measured on separate rows (an A/B split: `b` scored rows
/// `labels_b`, `a` scored rows `labels_a`): `b` minus `a`, with the 95 % interval from the sum
/// of their DeLong variances (independent samples), and the two-sided p-value. `None` when
/// either side has fewer than two rows of a class.
pub fn delong_unpaired_difference(
    labels_a: &[bool],
    a: &[f64],
    labels_b: &[bool],
    b: &[f64],
) -> Option<AucDifference> {
    let (da, db) = (delong(labels_a, a)?, delong(labels_b, b)?);
    let d = db.auc - da.auc;
    let se = (da.variance + db.variance).max(0.0).sqrt();
    let p_value = if se > 0.0 {
        2.0 * (1.0 - standard_normal_cdf((d / se).abs()))
    } else if d == 0.0 {
        1.0
    } else {
        0.0
    };
    Some(AucDifference {
        difference: Estimate {
            value: d,
            lower: d - Z_95 * se,
            upper: d + Z_95 * se,
        },
        p_value,
    })
}

/// Φ(x) through the complementary error function (W. J. Cody's rational approximation as in
/// Numerical Recipes' `erfc`, fractional error below 1.2e-7: ample for a p-value).
fn standard_normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let erfc = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - erfc / 2.0
    } else {
        erfc / 2.0
    }
}

/// The bootstrap's figures of one weighting of the rows (weights are multiplicities; all ones
/// is the sample itself). `sorted` is the rows by score, highest first, ties by row.
struct Figures {
    ap: Option<f64>,
    log_loss: f64,
    brier: f64,
    ece: f64,
    lift: Option<f64>,
    precision: Option<f64>,
}

fn figures(labels: &[bool], probs: &[f64], sorted: &[usize], w: &[u32]) -> Figures {
    let total: u64 = w.iter().map(|&x| u64::from(x)).sum();
    let positives: u64 = (0..labels.len())
        .filter(|&i| labels[i])
        .map(|i| u64::from(w[i]))
        .sum();
    let nf = total as f64;
    // Linear sums: log loss, Brier, calibration bins.
    let (mut ll, mut br) = (0.0, 0.0);
    let mut count = [0.0f64; CALIBRATION_BINS];
    let mut sum_p = [0.0f64; CALIBRATION_BINS];
    let mut sum_y = [0.0f64; CALIBRATION_BINS];
    for i in 0..labels.len() {
        if w[i] == 0 {
            continue;
        }
        let (wi, p, y) = (f64::from(w[i]), probs[i], labels[i]);
        let pc = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
        ll += wi * if y { -pc.ln() } else { -(1.0 - pc).ln() };
        let d = p - if y { 1.0 } else { 0.0 };
        br += wi * d * d;
        let b = ((p.clamp(0.0, 1.0) * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        count[b] += wi;
        sum_p[b] += wi * p;
        sum_y[b] += if y { wi } else { 0.0 };
    }
    let ece = (0..CALIBRATION_BINS)
        .map(|b| (sum_y[b] - sum_p[b]).abs())
        .sum::<f64>()
        / nf;
    // Ranked figures: one pass over the rows by score, highest first.
    let top = total.div_ceil(10);
    let (mut taken, mut hits) = (0u64, 0u64);
    let (mut tp, mut seen, mut ap, mut prev_recall) = (0u64, 0u64, 0.0, 0.0);
    let mut g = 0;
    while g < sorted.len() {
        let mut h = g;
        while h + 1 < sorted.len() && probs[sorted[h + 1]] == probs[sorted[g]] {
            h += 1;
        }
        for &i in &sorted[g..=h] {
            let wi = u64::from(w[i]);
            let take = wi.min(top - taken);
            taken += take;
            if labels[i] {
                hits += take;
                tp += wi;
            }
            seen += wi;
        }
        if positives > 0 && seen > 0 {
            let recall = tp as f64 / positives as f64;
            ap += (recall - prev_recall) * tp as f64 / seen as f64;
            prev_recall = recall;
        }
        g = h + 1;
    }
    let precision = (top > 0).then(|| hits as f64 / top as f64);
    Figures {
        ap: (positives > 0).then_some(ap),
        log_loss: ll / nf,
        brier: br / nf,
        ece,
        lift: precision
            .filter(|_| positives > 0)
            .map(|p| p / (positives as f64 / nf)),
        precision,
    }
}

/// The 2.5th and 97.5th percentiles of `xs` (sorted in place; linear interpolation between
/// order statistics, numpy's default).
fn percentile_interval(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (xs.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
    };
    (at(0.025), at(0.975))
}

/// Measures forecasts `probs` against outcomes `labels`: every figure with its 95 % interval
/// (see the module doc). `None` for no rows. Deterministic: the bootstrap's seed is fixed.
pub fn measure(labels: &[bool], probs: &[f64]) -> Option<Measured> {
    assert_eq!(
        labels.len(),
        probs.len(),
        "labels and probabilities differ in length"
    );
    let n = labels.len();
    if n == 0 {
        return None;
    }
    let mut sorted: Vec<usize> = (0..n).collect();
    sorted.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let ones = vec![1u32; n];
    let point = figures(labels, probs, &sorted, &ones);
    let mut rng = SplitMix64(BOOTSTRAP_SEED);
    let mut w = vec![0u32; n];
    let mut series: [Vec<f64>; 6] = Default::default();
    for _ in 0..BOOTSTRAP_RESAMPLES {
        w.iter_mut().for_each(|x| *x = 0);
        for _ in 0..n {
            w[rng.below(n)] += 1;
        }
        let f = figures(labels, probs, &sorted, &w);
        for (k, v) in [
            f.ap,
            Some(f.log_loss),
            Some(f.brier),
            Some(f.ece),
            f.lift,
            f.precision,
        ]
        .into_iter()
        .enumerate()
        {
            // A resample without positives has no AP or lift: left out of their series.
            if let Some(v) = v {
                series[k].push(v);
            }
        }
    }
    let [ap_s, ll_s, br_s, ece_s, lift_s, prec_s] = &mut series;
    let estimate = |value: f64, xs: &mut Vec<f64>| {
        let (lower, upper) = if xs.is_empty() {
            (value, value)
        } else {
            percentile_interval(xs)
        };
        Estimate {
            value,
            lower,
            upper,
        }
    };
    let positives = labels.iter().filter(|l| **l).count() as u64;
    Some(Measured {
        n: n as u64,
        positives,
        roc_auc: delong(labels, probs).map(|d| d.interval()),
        pr_auc: point.ap.map(|v| estimate(v, ap_s)),
        log_loss: estimate(point.log_loss, ll_s),
        brier: estimate(point.brier, br_s),
        calibration_error: estimate(point.ece, ece_s),
        reliability: metrics::reliability_table(labels, probs, CALIBRATION_BINS),
        top_decile_lift: point.lift.map(|v| estimate(v, lift_s)),
        top_decile_precision: point.precision.map(|v| estimate(v, prec_s)),
        intervals: format!(
            "95%: DeLong (Sun & Xu 2014) for ROC AUC; percentile bootstrap of {BOOTSTRAP_RESAMPLES} resamples (fixed seed) for the others"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// A reproducible set of forecasts with some signal and some ties.
    fn sample(n: usize, seed: u64) -> (Vec<bool>, Vec<f64>) {
        let mut rng = SplitMix64(seed);
        let mut y = Vec::with_capacity(n);
        let mut p = Vec::with_capacity(n);
        for _ in 0..n {
            let u = (rng.below(1000) as f64 + 0.5) / 1000.0;
            let churned = rng.below(1000) as f64 / 1000.0 < u;
            y.push(churned);
            // Rounded to 2 decimals: plenty of ties.
            p.push((u * 100.0).round() / 100.0);
        }
        (y, p)
    }

    /// The textbook O(m·n) DeLong: the placement values ψ(x, y) over every pair.
    fn delong_by_pairs(labels: &[bool], scores: &[f64]) -> (f64, f64) {
        let pos: Vec<f64> = (0..labels.len())
            .filter(|&i| labels[i])
            .map(|i| scores[i])
            .collect();
        let neg: Vec<f64> = (0..labels.len())
            .filter(|&i| !labels[i])
            .map(|i| scores[i])
            .collect();
        let psi = |x: f64, y: f64| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        };
        let v10: Vec<f64> = pos
            .iter()
            .map(|&x| neg.iter().map(|&y| psi(x, y)).sum::<f64>() / neg.len() as f64)
            .collect();
        let v01: Vec<f64> = neg
            .iter()
            .map(|&y| pos.iter().map(|&x| psi(x, y)).sum::<f64>() / pos.len() as f64)
            .collect();
        let auc = v10.iter().sum::<f64>() / v10.len() as f64;
        let var =
            covariance(&v10, &v10) / v10.len() as f64 + covariance(&v01, &v01) / v01.len() as f64;
        (auc, var)
    }

    #[test]
    fn delong_fast_equals_the_pairwise_definition() {
        for seed in [1, 2, 3] {
            let (y, p) = sample(400, seed);
            let fast = delong(&y, &p).unwrap();
            let (auc, var) = delong_by_pairs(&y, &p);
            assert!(close(fast.auc, auc, 1e-12), "{} vs {auc}", fast.auc);
            assert!(
                close(fast.variance, var, 1e-15),
                "{} vs {var}",
                fast.variance
            );
            assert!(close(fast.auc, metrics::roc_auc(&y, &p).unwrap(), 1e-12));
        }
    }

    #[test]
    fn delong_hand_computed() {
        // Positives 0.8, 0.4; negatives 0.6, 0.2. v10 (share of negatives below each
        // positive) = [1, 0.5]; v01 (share of positives above each negative) = [0.5, 1].
        let y = [true, false, true, false];
        let d = delong(&y, &[0.8, 0.6, 0.4, 0.2]).unwrap();
        assert!(close(d.auc, 0.75, 1e-15));
        // var(v10) = 0.125, var(v01) = 0.125: 0.125/2 + 0.125/2.
        assert!(close(d.variance, 0.125, 1e-15), "{}", d.variance);
        assert_eq!(delong(&[true, false, false], &[0.1, 0.2, 0.3]), None);
    }

    #[test]
    fn delong_difference_of_a_model_with_itself_is_zero_and_a_worse_one_is_found() {
        let (y, p) = sample(2000, 7);
        let same = delong_difference(&y, &p, &p).unwrap();
        assert_eq!(same.difference.value, 0.0);
        assert_eq!(same.p_value, 1.0);
        // The second model forecasts with half of the signal replaced by noise.
        let mut rng = SplitMix64(99);
        let worse: Vec<f64> = p
            .iter()
            .map(|&q| 0.5 * q + 0.5 * rng.below(1000) as f64 / 1000.0)
            .collect();
        let d = delong_difference(&y, &p, &worse).unwrap();
        assert!(d.difference.lower > 0.0, "{d:?}");
        assert!(d.p_value < 0.001, "{d:?}");
    }

    #[test]
    fn a_split_measures_each_model_on_half_with_a_wider_interval() {
        let (y, p) = sample(4000, 13);
        let mut rng = SplitMix64(5);
        let worse: Vec<f64> = p
            .iter()
            .map(|&q| 0.5 * q + 0.5 * rng.below(1000) as f64 / 1000.0)
            .collect();
        let paired = delong_difference(&y, &worse, &p).unwrap();
        let (ya, pa): (Vec<bool>, Vec<f64>) = (0..4000).step_by(2).map(|i| (y[i], p[i])).unzip();
        let (yb, wb): (Vec<bool>, Vec<f64>) =
            (1..4000).step_by(2).map(|i| (y[i], worse[i])).unzip();
        let split = delong_unpaired_difference(&ya, &pa, &yb, &wb).unwrap();
        let width = |d: &AucDifference| d.difference.upper - d.difference.lower;
        assert!(width(&split) > width(&paired), "{split:?} vs {paired:?}");
        // Equal to the two halves' own DeLong figures.
        let (a, b) = (delong(&ya, &pa).unwrap(), delong(&yb, &wb).unwrap());
        assert!(close(split.difference.value, b.auc - a.auc, 1e-15));
    }

    #[test]
    fn normal_cdf_known_values() {
        assert!(close(standard_normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(standard_normal_cdf(Z_95), 0.975, 1e-6));
        assert!(close(standard_normal_cdf(-1.0), 0.158_655_253_9, 1e-6));
    }

    #[test]
    fn point_figures_equal_the_plain_metrics() {
        let (y, p) = sample(1500, 11);
        let m = measure(&y, &p).unwrap();
        assert_eq!(m.n, 1500);
        assert_eq!(m.positives, y.iter().filter(|v| **v).count() as u64);
        assert!(close(
            m.roc_auc.unwrap().value,
            metrics::roc_auc(&y, &p).unwrap(),
            1e-12
        ));
        assert!(close(
            m.pr_auc.unwrap().value,
            metrics::average_precision(&y, &p).unwrap(),
            1e-12
        ));
        assert!(close(m.log_loss.value, metrics::log_loss(&y, &p), 1e-12));
        assert!(close(m.brier.value, metrics::brier(&y, &p), 1e-12));
        assert!(close(
            m.calibration_error.value,
            metrics::expected_calibration_error(&y, &p, CALIBRATION_BINS),
            1e-12
        ));
        assert!(close(
            m.top_decile_lift.unwrap().value,
            metrics::top_decile_lift(&y, &p).unwrap(),
            1e-12
        ));
        for e in [
            m.roc_auc.unwrap(),
            m.pr_auc.unwrap(),
            m.log_loss,
            m.brier,
            m.calibration_error,
            m.top_decile_lift.unwrap(),
            m.top_decile_precision.unwrap(),
        ] {
            assert!(e.lower <= e.value && e.value <= e.upper, "{e:?}");
            assert!(
                e.lower < e.upper,
                "a sample of 1500 has a real interval: {e:?}"
            );
        }
        // Fixed seed: the same rows give the same intervals.
        assert_eq!(measure(&y, &p).unwrap(), m);
    }

    #[test]
    fn precision_at_the_top_decile_counts_the_riskiest_tenth() {
        // 20 rows, scores descending with row number; churned: rows 0 and 2 (of the top 2) and 10.
        let p: Vec<f64> = (0..20).map(|i| 1.0 - i as f64 / 20.0).collect();
        let mut y = vec![false; 20];
        y[0] = true;
        y[10] = true;
        let m = measure(&y, &p).unwrap();
        // Top tenth = 2 rows, one churned: precision 0.5; base rate 0.1 → lift 5.
        assert!(close(m.top_decile_precision.unwrap().value, 0.5, 1e-15));
        assert!(close(m.top_decile_lift.unwrap().value, 5.0, 1e-12));
    }

    #[test]
    fn intervals_narrow_with_more_rows() {
        let (y, p) = sample(200, 5);
        let small = measure(&y, &p).unwrap();
        let (y, p) = sample(5000, 5);
        let large = measure(&y, &p).unwrap();
        let width = |e: Estimate| e.upper - e.lower;
        assert!(width(large.roc_auc.unwrap()) < width(small.roc_auc.unwrap()));
        assert!(width(large.brier) < width(small.brier));
    }

    #[test]
    fn one_class_has_no_auc_but_still_a_brier_score() {
        let m = measure(&[false, false, false], &[0.1, 0.2, 0.3]).unwrap();
        assert_eq!(m.roc_auc, None);
        assert_eq!(m.pr_auc, None);
        assert_eq!(m.top_decile_lift, None);
        assert!(close(m.brier.value, (0.01 + 0.04 + 0.09) / 3.0, 1e-15));
        assert_eq!(measure(&[], &[]), None);
    }
}
