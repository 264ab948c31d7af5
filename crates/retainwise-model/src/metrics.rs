//! Evaluation metrics for binary probability forecasts.
//!
//! All functions take `labels[i]` (true = positive, i.e. churned) and the forecast for the same
//! row, and panic if the two slices differ in length (a programming error, not bad input).

/// Area under the ROC curve, computed as the Mann–Whitney U statistic normalised by
/// `n_pos * n_neg`: the probability that a random positive scores above a random negative,
/// ties counting one half (tied scores get their average rank).
///
/// Sources: Mann & Whitney (1947), "On a test of whether one of two random variables is
/// stochastically larger than the other"; Hanley & McNeil (1982), "The meaning and use of the
/// area under a receiver operating characteristic (ROC) curve", Radiology 143.
///
/// Returns `None` when either class is absent (the AUC is undefined). O(n log n).
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    assert_eq!(
        labels.len(),
        scores.len(),
        "labels and scores differ in length"
    );
    let n_pos = labels.iter().filter(|l| **l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_group = order[i..=j].iter().filter(|&&k| labels[k]).count();
        rank_sum += avg_rank * pos_in_group as f64;
        i = j + 1;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Probabilities are clipped to `[EPS, 1 - EPS]` before taking logs, the convention of
/// scikit-learn's `log_loss`, so one confident mistake costs about 34.5 instead of infinity.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Mean negative log-likelihood (cross-entropy, natural log) of the forecasts `probs`:
/// `-(1/n) Σ [y ln p + (1-y) ln(1-p)]`. Lower is better; 0.693 is a coin flip.
///
/// Source: Good (1952), "Rational decisions", J. R. Stat. Soc. B 14 (the logarithmic score).
/// Returns NaN for empty input.
pub fn log_loss(labels: &[bool], probs: &[f64]) -> f64 {
    assert_eq!(
        labels.len(),
        probs.len(),
        "labels and probabilities differ in length"
    );
    let total: f64 = labels
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum();
    total / labels.len() as f64
}

/// Brier score: mean squared difference between the forecast probability and the 0/1 outcome.
/// Lower is better; always forecasting the base rate `r` scores `r(1-r)`.
///
/// Source: Brier (1950), "Verification of forecasts expressed in terms of probability",
/// Monthly Weather Review 78(1). Returns NaN for empty input.
pub fn brier(labels: &[bool], probs: &[f64]) -> f64 {
    assert_eq!(
        labels.len(),
        probs.len(),
        "labels and probabilities differ in length"
    );
    let total: f64 = labels
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let d = p - if y { 1.0 } else { 0.0 };
            d * d
        })
        .sum();
    total / labels.len() as f64
}

/// Lift in the top decile: the churn rate among the 10 % of rows with the highest scores (at
/// least one row; ties at the cut broken by row order) over the churn rate of all rows. 1 for an
/// uninformative forecast, up to `1 / base rate` for a perfect one: how many times more
/// churners a retention team reaches by calling the riskiest tenth than by calling at random.
/// Source: the cumulative gains / lift chart of direct marketing (e.g. Provost & Fawcett, "Data
/// Science for Business", 2013, ch. 8). Returns `None` without positives or rows.
pub fn top_decile_lift(labels: &[bool], scores: &[f64]) -> Option<f64> {
    let n = labels.len().min(scores.len());
    let positives = labels[..n].iter().filter(|l| **l).count();
    if n == 0 || positives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let top = n.div_ceil(10);
    let hits = order[..top].iter().filter(|&&i| labels[i]).count();
    Some((hits as f64 / top as f64) / (positives as f64 / n as f64))
}

/// Average precision, the usual summary of the precision–recall curve:
/// `Σ_k (R_k − R_{k−1}) P_k` over the distinct score thresholds from high to low (tied scores
/// enter together). Equals the positive rate for an uninformative forecast, 1 for a perfect one.
///
/// Source: Zhu (2004), "Recall, precision and average precision", U. Waterloo; the definition
/// used by scikit-learn's `average_precision_score`. Returns `None` without positives.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Option<f64> {
    assert_eq!(
        labels.len(),
        scores.len(),
        "labels and scores differ in length"
    );
    let n_pos = labels.iter().filter(|l| **l).count();
    if n_pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut prev_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        tp += order[i..=j].iter().filter(|&&k| labels[k]).count();
        seen += j - i + 1;
        let recall = tp as f64 / n_pos as f64;
        ap += (recall - prev_recall) * tp as f64 / seen as f64;
        prev_recall = recall;
        i = j + 1;
    }
    Some(ap)
}

/// Expected calibration error over `bins` equal-width probability bins:
/// `Σ_b (|B_b| / n) · |mean(y in B_b) − mean(p in B_b)|`. 0 is perfectly calibrated.
///
/// Sources: Naeini, Cooper & Hauskrecht (2015), "Obtaining well calibrated probabilities using
/// Bayesian binning", AAAI; Guo et al. (2017), "On calibration of modern neural networks", ICML.
/// Returns NaN for empty input; `bins` is at least 1.
pub fn expected_calibration_error(labels: &[bool], probs: &[f64], bins: usize) -> f64 {
    assert_eq!(
        labels.len(),
        probs.len(),
        "labels and probabilities differ in length"
    );
    if labels.is_empty() {
        return f64::NAN;
    }
    let bins = bins.max(1);
    let mut count = vec![0usize; bins];
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    for (&y, &p) in labels.iter().zip(probs) {
        let b = ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        sum_p[b] += p;
        sum_y[b] += if y { 1.0 } else { 0.0 };
    }
    let n = labels.len() as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (sum_y[b] - sum_p[b]).abs() / n)
        .sum()
}

/// One bin of a reliability table (DeGroot & Fienberg 1983, "The comparison and evaluation of
/// forecasters", J. R. Stat. Soc. D 32): the forecasts in `[lower, upper)` (the last bin
/// includes 1), their mean and the observed churn rate among them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReliabilityBin {
    /// Lower edge of the bin.
    pub lower: f64,
    /// Upper edge of the bin.
    pub upper: f64,
    /// Forecasts in the bin.
    pub rows: u64,
    /// Mean forecast probability in the bin (NaN-free: empty bins report 0).
    pub mean_predicted: f64,
    /// Share of the bin's rows that churned (0 for an empty bin).
    pub observed_rate: f64,
}

/// The reliability table over `bins` equal-width bins, the bins of
/// [`expected_calibration_error`], values rounded to 4 decimals.
pub fn reliability_table(labels: &[bool], probs: &[f64], bins: usize) -> Vec<ReliabilityBin> {
    assert_eq!(
        labels.len(),
        probs.len(),
        "labels and probabilities differ in length"
    );
    let bins = bins.max(1);
    let mut count = vec![0u64; bins];
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    for (&y, &p) in labels.iter().zip(probs) {
        let b = ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        sum_p[b] += p;
        sum_y[b] += if y { 1.0 } else { 0.0 };
    }
    let r4 = |x: f64| (x * 1e4).round() / 1e4;
    (0..bins)
        .map(|b| {
            let n = count[b].max(1) as f64;
            ReliabilityBin {
                lower: r4(b as f64 / bins as f64),
                upper: r4((b + 1) as f64 / bins as f64),
                rows: count[b],
                mean_predicted: r4(sum_p[b] / n),
                observed_rate: r4(sum_y[b] / n),
            }
        })
        .collect()
}

/// Mean and sample standard deviation (n − 1 denominator; 0 for a single value).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn roc_auc_hand_computed() {
        // Positives at 0.8 and 0.4, negatives at 0.6 and 0.2: pairs won 3 of 4.
        let y = [true, false, true, false];
        assert!(close(roc_auc(&y, &[0.8, 0.6, 0.4, 0.2]).unwrap(), 0.75));
        // A tie between a positive and a negative counts one half: (1 + 0.5 + 1 + 1) / 4.
        assert!(close(roc_auc(&y, &[0.8, 0.4, 0.4, 0.2]).unwrap(), 0.875));
        assert!(close(roc_auc(&y, &[1.0, 0.0, 1.0, 0.0]).unwrap(), 1.0));
        assert!(close(roc_auc(&y, &[0.5; 4]).unwrap(), 0.5));
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
    }

    #[test]
    fn log_loss_hand_computed() {
        // -(ln 0.8 + ln 0.6) / 2
        let v = log_loss(&[true, false], &[0.8, 0.4]);
        assert!(close(v, -(0.8f64.ln() + 0.6f64.ln()) / 2.0));
        assert!(close(log_loss(&[true], &[0.5]), std::f64::consts::LN_2));
        assert!(log_loss(&[true], &[0.0]).is_finite());
    }

    #[test]
    fn brier_hand_computed() {
        // ((1-0.8)^2 + (0-0.4)^2) / 2 = (0.04 + 0.16) / 2
        assert!(close(brier(&[true, false], &[0.8, 0.4]), 0.1));
    }

    #[test]
    fn average_precision_hand_computed() {
        // Ranked: + (P=1, R=.5), - , + (P=2/3, R=1): AP = .5*1 + .5*2/3.
        let ap = average_precision(&[true, false, true], &[0.9, 0.8, 0.7]).unwrap();
        assert!(close(ap, 0.5 + 1.0 / 3.0));
        assert_eq!(average_precision(&[false], &[0.3]), None);
    }

    #[test]
    fn calibration_error_hand_computed() {
        // Bin [0.2,0.3): p .2 .2, y 0 1 → |0.5-0.2| * 2/4; bin [0.9,1]: p .9 .9, y 1 1 → .1 * 2/4.
        let e = expected_calibration_error(&[false, true, true, true], &[0.2, 0.2, 0.9, 0.9], 10);
        assert!(close(e, 0.15 + 0.05));
    }

    #[test]
    fn mean_and_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!(close(m, 2.5));
        assert!(close(s, (5.0f64 / 3.0).sqrt()));
        assert_eq!(mean_std(&[2.0]), (2.0, 0.0));
    }
}
