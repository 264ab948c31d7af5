//! The built-in model search: tree settings, number of rounds, the logistic regression's
//! penalty, the blend weights and the calibration method, all chosen on inner folds, and the
//! whole procedure cross-validated (nested cross-validation, Varma & Simon 2006, "Bias in error
//! estimation when using cross-validation for model selection", BMC Bioinformatics 7:91), so the
//! reported figures are those of what `retainwise train` does, not of settings tuned on them.
//!
//! # The procedure, for a set `S` of folds
//! 1. For every tree candidate (depth, learning rate, most rounds) and every fold `j ∈ S`, fit
//!    on `S ∖ {j}` and follow the held-out log loss on fold `j` tree by tree; the candidate and
//!    round count with the lowest total is chosen (early stopping on inner folds).
//! 2. The logistic regression's L2 penalty: the firmest within one standard error of the best.
//! 3. The chosen parts' out-of-fold log-odds on `S` are blended by a logistic regression
//!    ([`crate::blend`]); Platt scaling (that fit itself) or isotonic regression on top is
//!    chosen by cross-validated log loss over the same inner folds ([`crate::calibration`]).
//! 4. Trees and logistic regression are refitted on all of `S` with the chosen settings.
//!
//! Run with `S` = all folds but `o`, it gives the model that predicts fold `o` (the outer
//! cross-validation); with `S` = all folds, the final model. The inner fits are shared: fitting
//! on all folds but `{o, j}` serves both outer fold `o` (inner fold `j`) and outer fold `j`
//! (inner fold `o`), so `k` folds cost `k(k+1)/2` fits per tree candidate, run on every core.
//! Boosting is sequential and seeded, so a fit's first `r` trees are exactly an `r`-round fit:
//! one fit per candidate gives every round count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::blend::Blend;
use crate::calibration::{self, Calibration, CalibrationChoice};
use crate::forest::{sigmoid, Forest};
use crate::gbdt::{self, GbdtSettings};
use crate::linear::{fit_stacking, LinearModel};
use crate::metrics::LOG_LOSS_EPS;
use crate::progress::{FitCounter, ProgressFn, SearchError};

/// One tree setting tried by the search; early stopping picks the rounds up to `max_rounds`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeCandidate {
    /// Tree depth.
    pub max_depth: usize,
    /// Shrinkage.
    pub learning_rate: f32,
    /// Most boosting rounds fitted.
    pub max_rounds: usize,
}

/// What the search tries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Tree settings tried (the other boosting settings come from the base [`GbdtSettings`]).
    pub trees: Vec<TreeCandidate>,
    /// L2 penalties tried for the logistic regression (on standardised features, summed
    /// log-likelihood); empty = no linear part, the trees alone.
    pub linear_l2: Vec<f64>,
    /// L2 penalty of the blending regression (a little, so that it is always defined).
    pub blend_l2: f64,
}

impl Default for SearchSpace {
    /// A small grid that trains on the 7,043-row Telco file in about 15 s on 2 cores: depth 2
    /// and 3 at learning rate 0.05 (rounds by early stopping), and three penalties from light
    /// to firm. On Telco, depth 2–3 with shrinkage did best (churn effects are mostly additive;
    /// depth 4 and learning rates 0.02–0.1 were tried and never chosen, and lower rates only
    /// cost time), and the logistic regression carries most of the blend.
    fn default() -> Self {
        SearchSpace {
            trees: vec![
                TreeCandidate {
                    max_depth: 2,
                    learning_rate: 0.05,
                    max_rounds: 600,
                },
                TreeCandidate {
                    max_depth: 3,
                    learning_rate: 0.05,
                    max_rounds: 400,
                },
            ],
            linear_l2: vec![1.0, 10.0, 100.0],
            blend_l2: 1e-3,
        }
    }
}

impl SearchSpace {
    /// Checks the ranges.
    ///
    /// # Errors
    /// A sentence naming the bad setting.
    pub fn validate(&self, base: &GbdtSettings) -> Result<(), String> {
        if self.trees.is_empty() {
            return Err("the search needs at least one tree candidate".into());
        }
        for t in &self.trees {
            self.candidate(base, t, t.max_rounds).validate()?;
        }
        if self.linear_l2.iter().any(|l| !(l.is_finite() && *l > 0.0)) {
            return Err("every linear_l2 must be a number > 0".into());
        }
        if !(self.blend_l2.is_finite() && self.blend_l2 > 0.0) {
            return Err(format!("blend_l2 must be > 0, got {}", self.blend_l2));
        }
        Ok(())
    }

    fn candidate(&self, base: &GbdtSettings, t: &TreeCandidate, rounds: usize) -> GbdtSettings {
        GbdtSettings {
            rounds,
            learning_rate: t.learning_rate,
            max_depth: t.max_depth,
            ..base.clone()
        }
    }
}

/// How one tree candidate did on the inner folds of the final model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateResult {
    /// Tree depth.
    pub max_depth: usize,
    /// Shrinkage.
    pub learning_rate: f32,
    /// Rounds with the lowest inner-fold log loss.
    pub best_rounds: usize,
    /// That log loss.
    pub log_loss: f64,
}

/// How one logistic-regression penalty did on the inner folds of the final model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PenaltyResult {
    /// L2 penalty.
    pub l2: f64,
    /// Inner-fold log loss.
    pub log_loss: f64,
}

/// What the search chose for one set of folds, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The boosting settings chosen (rounds = the early-stopped count).
    pub gbdt: GbdtSettings,
    /// The logistic regression's chosen penalty (`None` without a linear part).
    pub linear_l2: Option<f64>,
    /// The blend weights.
    pub blend: Blend,
    /// Platt or isotonic, with both candidates' cross-validated log loss.
    pub calibration: CalibrationChoice,
    /// Every tree candidate's inner-fold result.
    pub candidates: Vec<CandidateResult>,
    /// Every penalty's inner-fold result.
    pub penalties: Vec<PenaltyResult>,
}

/// A fitted model's predicting parts.
pub(crate) struct Parts {
    pub forest: Forest,
    pub linear: Option<LinearModel>,
    pub blend: Blend,
    pub calibration: Calibration,
    pub selection: Selection,
}

impl Parts {
    fn log_odds(&self, row: &[f64]) -> f64 {
        let l = self.linear.as_ref().map_or(0.0, |m| m.log_odds(row));
        self.blend.combine(self.forest.log_odds(row), l)
    }
}

/// The result of [`run`]: the outer folds' held-out probabilities and choices, and the final
/// model's parts.
pub(crate) struct Outcome {
    /// `(fold, rows of the fold, their probabilities)` for each outer fold.
    pub outer: Vec<(usize, Vec<usize>, Vec<f64>)>,
    /// What the search chose on each outer fold's training folds.
    pub outer_selections: Vec<Selection>,
    /// The model fitted on all rows.
    pub final_parts: Parts,
}

/// Folds left out of a fit, as a bit set.
type Mask = u32;

struct TreeFit {
    forest: Forest,
    /// Per fold in the mask: summed log loss over that fold's rows after 1, 2, … trees.
    curves: Vec<(usize, Vec<f64>)>,
}

/// The encoded training table and its folds, as [`run`] reads them.
pub(crate) struct Data<'a> {
    /// Column-major features (`data[j * rows + i]`, NaN = missing).
    pub data: &'a [f64],
    /// Rows.
    pub rows: usize,
    /// Churned or not, per row.
    pub labels: &'a [bool],
    /// Each row's fold, `0..folds`.
    pub fold_of: &'a [usize],
    /// Number of folds (at most 10 here, so a set of folds fits a bit mask).
    pub folds: usize,
}

impl Data<'_> {
    fn row(&self, i: usize, buf: &mut [f64]) {
        for (j, r) in buf.iter_mut().enumerate() {
            *r = self.data[j * self.rows + i];
        }
    }

    fn rows_outside(&self, mask: Mask) -> Vec<usize> {
        (0..self.rows)
            .filter(|&i| mask & (1 << self.fold_of[i]) == 0)
            .collect()
    }

    fn rows_in(&self, fold: usize) -> Vec<usize> {
        (0..self.rows)
            .filter(|&i| self.fold_of[i] == fold)
            .collect()
    }
}

fn point_loss(y: bool, s: f64) -> f64 {
    let p = sigmoid(s).clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
    if y {
        -p.ln()
    } else {
        -(1.0 - p).ln()
    }
}

fn fit_trees(
    d: &Data<'_>,
    settings: &GbdtSettings,
    seed: u64,
    mask: Mask,
    folds: usize,
) -> Result<TreeFit, String> {
    let train = d.rows_outside(mask);
    let forest = if train.len() == d.rows {
        let y: Vec<f64> = d.labels.iter().map(|&l| l as u8 as f64).collect();
        gbdt::fit(settings, seed, d.data, d.rows, &y)?
    } else {
        let sub = select_rows(d.data, d.rows, &train);
        let y: Vec<f64> = train.iter().map(|&i| d.labels[i] as u8 as f64).collect();
        gbdt::fit(settings, seed, &sub, train.len(), &y)?
    };
    let n = forest.n_features;
    let mut buf = vec![0.0; n];
    let mut curves = Vec::new();
    for f in (0..folds).filter(|f| mask & (1 << f) != 0) {
        let mut curve = vec![0.0; forest.trees.len()];
        for i in d.rows_in(f) {
            d.row(i, &mut buf);
            let mut s = forest.base_score;
            for (t, tree) in forest.trees.iter().enumerate() {
                s += tree.value[tree.leaf(&buf)] as f64;
                curve[t] += point_loss(d.labels[i], s);
            }
        }
        curves.push((f, curve));
    }
    Ok(TreeFit { forest, curves })
}

/// The index of the largest penalty whose held-out log loss is within one standard error of
/// the best penalty's (`per_row[c]` = per-row losses of penalty `c`, rows in the same order;
/// the standard error is that of the mean per-row difference from the best). This is the
/// one-standard-error rule (Breiman et al. 1984, "Classification and Regression Trees",
/// §3.4.3; Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", §7.10): among
/// penalties the data cannot tell apart, the firmest — which also shares an effect more evenly
/// between correlated columns (tenure and total charges), so explanations credit both.
/// `None` when there are no penalties.
fn firmest_within_one_se(penalties: &[f64], per_row: &[Vec<f64>]) -> Option<usize> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let best = (0..penalties.len()).fold(None, |acc: Option<usize>, c| match acc {
        Some(b) if mean(&per_row[b]) <= mean(&per_row[c]) => Some(b),
        _ => Some(c),
    })?;
    let mut chosen = best;
    for c in 0..penalties.len() {
        if penalties[c] <= penalties[chosen] {
            continue;
        }
        let diffs: Vec<f64> = per_row[c]
            .iter()
            .zip(&per_row[best])
            .map(|(a, b)| a - b)
            .collect();
        let (m, sd) = crate::metrics::mean_std(&diffs);
        if m <= sd / (diffs.len() as f64).sqrt() {
            chosen = c;
        }
    }
    Some(chosen)
}

/// The rows `pick` of a column-major matrix with `rows` rows, still column-major.
pub(crate) fn select_rows(data: &[f64], rows: usize, pick: &[usize]) -> Vec<f64> {
    let cols = data.len() / rows;
    let mut out = Vec::with_capacity(cols * pick.len());
    for j in 0..cols {
        let col = &data[j * rows..(j + 1) * rows];
        out.extend(pick.iter().map(|&i| col[i]));
    }
    out
}

fn truncated(forest: &Forest, rounds: usize) -> Forest {
    Forest {
        n_features: forest.n_features,
        base_score: forest.base_score,
        trees: forest.trees[..rounds].to_vec(),
    }
}

/// Runs the search with nested cross-validation over `d`'s folds and fits the final model.
/// Deterministic for `seed`: every fit is single-threaded and seeded, results are collected in
/// a fixed order.
///
/// # Errors
/// A sentence when a learner fails.
pub(crate) fn run(
    d: &Data<'_>,
    base: &GbdtSettings,
    space: &SearchSpace,
    seed: u64,
    progress: ProgressFn<'_>,
) -> Result<Outcome, SearchError> {
    let Data {
        data,
        rows,
        labels,
        fold_of,
        folds,
    } = *d;
    let singles: Vec<Mask> = (0..folds).map(|j| 1 << j).collect();
    let mut masks = singles.clone();
    for a in 0..folds {
        for b in a + 1..folds {
            masks.push((1 << a) | (1 << b));
        }
    }
    // Every inner fit, in parallel: (candidate, mask) for the trees, (penalty, mask) for the
    // logistic regression (the linear fits also on all rows: the final model's).
    let tree_jobs: Vec<(usize, Mask)> = (0..space.trees.len())
        .flat_map(|c| masks.iter().map(move |&m| (c, m)))
        .collect();
    let mut linear_masks = masks.clone();
    linear_masks.push(0);
    let linear_jobs: Vec<(usize, Mask)> = (0..space.linear_l2.len())
        .flat_map(|c| linear_masks.iter().map(move |&m| (c, m)))
        .collect();
    // + 1: the final fit on all rows.
    let counter = FitCounter::new(tree_jobs.len() + linear_jobs.len() + 1, progress)?;
    let tree_fits: Vec<TreeFit> = tree_jobs
        .par_iter()
        .map(|&(c, m)| {
            let t = &space.trees[c];
            let fit = fit_trees(d, &space.candidate(base, t, t.max_rounds), seed, m, folds)?;
            counter.tick()?;
            Ok::<_, SearchError>(fit)
        })
        .collect::<Result<_, _>>()?;
    let linear_fits: Vec<LinearModel> = linear_jobs
        .par_iter()
        .map(|&(c, m)| {
            let fit = LinearModel::fit(data, rows, &d.rows_outside(m), labels, space.linear_l2[c])?;
            counter.tick()?;
            Ok::<_, SearchError>(fit)
        })
        .collect::<Result<_, _>>()?;
    let tree_fit = |c: usize, m: Mask| {
        &tree_fits[c * masks.len()
            + masks
                .iter()
                .position(|&x| x == m)
                .expect("every mask was fitted")]
    };
    let linear_fit = |c: usize, m: Mask| {
        &linear_fits[c * linear_masks.len()
            + linear_masks
                .iter()
                .position(|&x| x == m)
                .expect("every mask was fitted")]
    };

    // Scenario `outer`: the folds S = all but `outer` (none for the final model).
    let select =
        |outer: Option<usize>| -> Result<(Selection, Calibration, usize, Option<usize>), String> {
            let out: Mask = outer.map_or(0, |o| 1 << o);
            let inner: Vec<usize> = (0..folds).filter(|f| out & (1 << f) == 0).collect();
            let n_s = (0..rows).filter(|&i| out & (1 << fold_of[i]) == 0).count() as f64;
            // 1. Trees: the candidate and round count with the lowest summed inner log loss.
            let mut candidates = Vec::new();
            let mut best: Option<(f64, usize, usize)> = None;
            for (c, t) in space.trees.iter().enumerate() {
                let mut total = vec![0.0; t.max_rounds];
                for &j in &inner {
                    let fit = tree_fit(c, out | (1 << j));
                    let curve = &fit
                        .curves
                        .iter()
                        .find(|(f, _)| *f == j)
                        .expect("curve of a held-out fold")
                        .1;
                    for (a, b) in total.iter_mut().zip(curve) {
                        *a += b;
                    }
                }
                let (r, loss) =
                    total
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f64::INFINITY),
                            |acc, (r, &l)| if l < acc.1 { (r, l) } else { acc },
                        );
                let loss = loss / n_s;
                candidates.push(CandidateResult {
                    max_depth: t.max_depth,
                    learning_rate: t.learning_rate,
                    best_rounds: r + 1,
                    log_loss: crate::card::round6(loss),
                });
                if best.is_none_or(|b| loss < b.0) {
                    best = Some((loss, c, r + 1));
                }
            }
            let (_, c_best, rounds) = best.expect("at least one candidate");
            // 2. The logistic regression's penalty: the firmest within one standard error of
            //    the best (see `firmest_within_one_se`).
            let mut penalties = Vec::new();
            let mut per_row: Vec<Vec<f64>> = Vec::new();
            let mut buf = vec![0.0; data.len() / rows];
            for (c, &l2) in space.linear_l2.iter().enumerate() {
                let mut losses = Vec::new();
                for &j in &inner {
                    let m = linear_fit(c, out | (1 << j));
                    for i in d.rows_in(j) {
                        d.row(i, &mut buf);
                        losses.push(point_loss(labels[i], m.log_odds(&buf)));
                    }
                }
                penalties.push(PenaltyResult {
                    l2,
                    log_loss: crate::card::round6(losses.iter().sum::<f64>() / n_s),
                });
                per_row.push(losses);
            }
            let l_best = firmest_within_one_se(&space.linear_l2, &per_row);
            // 3. Out-of-fold scores of the chosen parts, the blend and the calibration choice.
            let width = 1 + l_best.is_some() as usize;
            let mut scores = Vec::new();
            let mut s_labels = Vec::new();
            let mut s_fold = Vec::new();
            for &j in &inner {
                let forest = &tree_fit(c_best, out | (1 << j)).forest;
                let forest = truncated(forest, rounds);
                for i in d.rows_in(j) {
                    d.row(i, &mut buf);
                    scores.push(forest.log_odds(&buf));
                    if let Some(c) = l_best {
                        scores.push(linear_fit(c, out | (1 << j)).log_odds(&buf));
                    }
                    s_labels.push(labels[i]);
                    s_fold.push(j);
                }
            }
            let choice =
                calibration::choose(&scores, width, &s_labels, &s_fold, &inner, space.blend_l2)?;
            let beta = fit_stacking(&scores, width, &s_labels, space.blend_l2)?;
            let blend = Blend {
                intercept: beta[0],
                tree_weight: beta[1],
                linear_weight: beta.get(2).copied().unwrap_or(0.0),
            };
            let calib = if choice.chosen == "isotonic" {
                let stacked: Vec<f64> = scores
                    .chunks(width)
                    .map(|s| calibration::stacked(&beta, s))
                    .collect();
                calibration::fit_isotonic(&stacked, &s_labels)
            } else {
                Calibration::Sigmoid
            };
            let t = &space.trees[c_best];
            let selection = Selection {
                gbdt: space.candidate(base, t, rounds),
                linear_l2: l_best.map(|c| space.linear_l2[c]),
                blend,
                calibration: choice,
                candidates,
                penalties,
            };
            Ok((selection, calib, c_best, l_best))
        };

    // 4. Outer folds: refit = the inner fit that left out only the outer fold, truncated.
    let outer_runs: Vec<(Selection, Calibration, usize, Option<usize>)> = (0..folds)
        .into_par_iter()
        .map(|o| select(Some(o)))
        .collect::<Result<_, _>>()?;
    let mut outer = Vec::with_capacity(folds);
    let mut outer_selections = Vec::with_capacity(folds);
    for (o, (selection, calib, c, l)) in outer_runs.into_iter().enumerate() {
        let parts = Parts {
            forest: truncated(&tree_fit(c, 1 << o).forest, selection.gbdt.rounds),
            linear: l.map(|l| linear_fit(l, 1 << o).clone()),
            blend: selection.blend.clone(),
            calibration: calib,
            selection,
        };
        let held = d.rows_in(o);
        let mut buf = vec![0.0; data.len() / rows];
        let probs = held
            .iter()
            .map(|&i| {
                d.row(i, &mut buf);
                parts.calibration.probability(parts.log_odds(&buf))
            })
            .collect();
        outer.push((o, held, probs));
        outer_selections.push(parts.selection);
    }

    // The final model: the same choice on all folds, refitted on all rows.
    let (selection, calibration, _, l) = select(None)?;
    let y: Vec<f64> = labels.iter().map(|&l| l as u8 as f64).collect();
    let forest = gbdt::fit(&selection.gbdt, seed, data, rows, &y)?;
    counter.tick()?;
    Ok(Outcome {
        outer,
        outer_selections,
        final_parts: Parts {
            forest,
            linear: l.map(|l| linear_fit(l, 0).clone()),
            blend: selection.blend.clone(),
            calibration,
            selection,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Boosting is sequential and seeded: the first `r` trees of a longer fit are an `r`-round
    /// fit, which is what lets one fit per candidate serve every round count.
    #[test]
    fn the_firmest_penalty_within_one_standard_error_wins() {
        let noise = |k: usize| ((k * 7919) % 13) as f64 * 0.01;
        let best: Vec<f64> = (0..400).map(|k| 0.40 + noise(k)).collect();
        // Within rounding of the best: per-row differences of ±0.001 around zero.
        let close: Vec<f64> = best
            .iter()
            .enumerate()
            .map(|(k, v)| v + if k % 2 == 0 { 0.001 } else { -0.001 })
            .collect();
        let worse: Vec<f64> = best.iter().map(|v| v + 0.05).collect();
        // Penalty 10 is indistinguishable from the best (1): chosen; 100 is clearly worse.
        let per_row = vec![best.clone(), close, worse.clone()];
        assert_eq!(
            firmest_within_one_se(&[1.0, 10.0, 100.0], &per_row),
            Some(1)
        );
        // A clearly worse firmer penalty is not chosen; a lighter one never replaces the best.
        let per_row = vec![best.clone(), worse.clone()];
        assert_eq!(firmest_within_one_se(&[1.0, 10.0], &per_row), Some(0));
        let per_row = vec![worse, best];
        assert_eq!(firmest_within_one_se(&[1.0, 10.0], &per_row), Some(1));
        assert_eq!(firmest_within_one_se(&[], &[]), None);
    }

    #[test]
    fn a_shorter_fit_is_a_prefix_of_a_longer_one() {
        let rows = 800;
        let mut s: u64 = 3;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut data = vec![0.0; rows * 3];
        let mut y = vec![0.0; rows];
        for i in 0..rows {
            for j in 0..3 {
                data[j * rows + i] = next();
            }
            y[i] = (next() < sigmoid(3.0 * data[i] - 2.0 * data[rows + i])) as u8 as f64;
        }
        let long = GbdtSettings {
            rounds: 40,
            ..GbdtSettings::default()
        };
        let short = GbdtSettings {
            rounds: 15,
            ..long.clone()
        };
        let a = gbdt::fit(&long, 9, &data, rows, &y).unwrap();
        let b = gbdt::fit(&short, 9, &data, rows, &y).unwrap();
        assert_eq!(truncated(&a, 15), b);
    }
}
