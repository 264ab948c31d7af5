//! L2-regularised logistic regression, fitted by Newton's method (iteratively reweighted least
//! squares), for the linear half of the blended model and for the stacker that blends it with
//! the trees.
//!
//! The objective is the penalised negative log-likelihood
//! `Σ_i [−y_i ln p_i − (1−y_i) ln(1−p_i)] + (λ/2) Σ_{j≥1} β_j²`, `p_i = σ(β_0 + Σ_j β_j x_ij)`
//! (the intercept is not penalised). It is strictly convex for λ > 0, and Newton's method
//! converges in a handful of steps (Hastie, Tibshirani & Friedman, "The Elements of Statistical
//! Learning", 2nd ed., §4.4.1). With a few dozen columns the `p × p` Newton system is solved by
//! Cholesky in microseconds. No randomness: the fit is a pure function of the data.
//!
//! [`LinearModel`] is the model over encoded feature vectors: each term is standardised with
//! the training mean and standard deviation, a missing value (NaN) counts as the mean (a
//! standardised 0), so its exact SHAP value is `β_j z_j` — the training mean of `z_j` is 0.

use serde::{Deserialize, Serialize};

use crate::forest::sigmoid;

/// Newton iterations at most; the fits here converge in under 10.
const MAX_ITER: usize = 50;
/// Stop when no coefficient moves more than this.
const TOL: f64 = 1e-10;

/// Stacking weights for the blend: [`fit_logistic`] on the parts' out-of-fold log-odds (`x`,
/// row-major, `width` parts per row), with every part's weight kept non-negative, as in
/// Breiman (1996), "Stacked regressions", Machine Learning 24(1). A part whose weight comes out
/// negative is dropped (weight 0) and the others refitted: with few rows and two strongly
/// correlated parts, an unconstrained fit can give one a negative weight that the full-data refit,
/// whose trees are more extreme than their out-of-fold versions, turns into an inverted ranking.
/// Returns `[intercept, w_1, …, w_width]`.
///
/// # Errors
/// As [`fit_logistic`].
pub fn fit_stacking(x: &[f64], width: usize, y: &[bool], lambda: f64) -> Result<Vec<f64>, String> {
    let rows = y.len();
    let mut active: Vec<usize> = (0..width).collect();
    loop {
        let sub: Vec<f64> = (0..rows)
            .flat_map(|i| active.iter().map(move |&c| (i, c)))
            .map(|(i, c)| x[i * width + c])
            .collect();
        let beta = if active.is_empty() {
            // No part left: the base rate alone.
            let rate = (y.iter().filter(|v| **v).count() as f64 + 0.5) / (rows as f64 + 1.0);
            vec![(rate / (1.0 - rate)).ln()]
        } else {
            fit_logistic(&sub, rows, y, lambda)?
        };
        let worst = active
            .iter()
            .enumerate()
            .filter(|(k, _)| beta[k + 1] < 0.0)
            .min_by(|a, b| beta[a.0 + 1].total_cmp(&beta[b.0 + 1]))
            .map(|(k, _)| k);
        match worst {
            Some(k) => {
                active.remove(k);
            }
            None => {
                let mut out = vec![0.0; width + 1];
                out[0] = beta[0];
                for (k, &c) in active.iter().enumerate() {
                    out[c + 1] = beta[k + 1];
                }
                return Ok(out);
            }
        }
    }
}

/// Fits `β` (intercept first) for the row-major design `x` (`rows × cols`, no intercept
/// column), 0/1 labels `y` and penalty `lambda` on every coefficient but the intercept.
/// Returns `cols + 1` coefficients.
///
/// # Errors
/// A sentence when the Newton system is singular (only possible with `lambda == 0` and
/// collinear columns) or the iteration does not settle.
pub fn fit_logistic(x: &[f64], rows: usize, y: &[bool], lambda: f64) -> Result<Vec<f64>, String> {
    let cols = x.len().checked_div(rows).unwrap_or(0);
    let p = cols + 1;
    let mut beta = vec![0.0; p];
    // Start the intercept at the base rate's log-odds: fewer steps, and no overshoot.
    let rate = (y.iter().filter(|v| **v).count() as f64 + 0.5) / (rows as f64 + 1.0);
    beta[0] = (rate / (1.0 - rate)).ln();
    let mut hess = vec![0.0; p * p];
    let mut grad = vec![0.0; p];
    let mut row = vec![0.0; p];
    for _ in 0..MAX_ITER {
        hess.fill(0.0);
        grad.fill(0.0);
        for i in 0..rows {
            row[0] = 1.0;
            row[1..].copy_from_slice(&x[i * cols..(i + 1) * cols]);
            let eta: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let q = sigmoid(eta);
            let w = (q * (1.0 - q)).max(1e-12);
            let r = q - if y[i] { 1.0 } else { 0.0 };
            for a in 0..p {
                grad[a] += r * row[a];
                let wa = w * row[a];
                if wa != 0.0 {
                    // Lower triangle only; mirrored before solving.
                    for b in 0..=a {
                        hess[a * p + b] += wa * row[b];
                    }
                }
            }
        }
        for a in 1..p {
            grad[a] += lambda * beta[a];
            hess[a * p + a] += lambda;
        }
        for a in 0..p {
            for b in 0..a {
                hess[b * p + a] = hess[a * p + b];
            }
        }
        let step = cholesky_solve(&mut hess, &grad, p)
            .ok_or_else(|| "the logistic regression's Newton system is singular".to_string())?;
        let mut moved: f64 = 0.0;
        for (b, s) in beta.iter_mut().zip(&step) {
            *b -= s;
            moved = moved.max(s.abs());
        }
        if !moved.is_finite() {
            return Err("the logistic regression diverged".into());
        }
        if moved < TOL {
            return Ok(beta);
        }
    }
    // Newton on a strictly convex objective only gets here when it is crawling within
    // rounding of the optimum; the coefficients are as good as they get.
    Ok(beta)
}

/// Solves `A s = g` for symmetric positive definite `A` (`p × p`, row-major, overwritten by
/// its Cholesky factor). `None` when `A` is not positive definite.
fn cholesky_solve(a: &mut [f64], g: &[f64], p: usize) -> Option<Vec<f64>> {
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        if d.is_nan() || d <= 1e-300 {
            return None;
        }
        let d = d.sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    let mut z = g.to_vec();
    for i in 0..p {
        for k in 0..i {
            z[i] -= a[i * p + k] * z[k];
        }
        z[i] /= a[i * p + i];
    }
    for i in (0..p).rev() {
        for k in i + 1..p {
            z[i] -= a[k * p + i] * z[k];
        }
        z[i] /= a[i * p + i];
    }
    Some(z)
}

/// How a term reads its slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// The value itself.
    #[default]
    Identity,
    /// `ln(1 + max(x, 0))`: for a count or amount (never negative in training), so that the
    /// regression can bend where the trees would otherwise carry all of a diminishing effect
    /// (tenure: the first months matter most).
    Log1p,
}

impl Transform {
    #[inline]
    fn apply(self, x: f64) -> f64 {
        match self {
            Transform::Identity => x,
            Transform::Log1p => x.max(0.0).ln_1p(),
        }
    }

    fn is_identity(&self) -> bool {
        *self == Transform::Identity
    }
}

/// One term of a [`LinearModel`]: `coef · (f(x_slot) − center)`, 0 when `x_slot` is missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearTerm {
    /// Encoded slot read.
    pub slot: usize,
    /// How the slot is read (identity when absent).
    #[serde(default, skip_serializing_if = "Transform::is_identity")]
    pub transform: Transform,
    /// Log-odds per unit of `f(x)`.
    pub coef: f64,
    /// The training mean of `f(x)` over non-missing values.
    pub center: f64,
}

impl LinearTerm {
    /// The term's value for `row` in log-odds: its exact SHAP value (see [`LinearModel`]).
    #[inline]
    pub fn contribution(&self, row: &[f64]) -> f64 {
        let x = row[self.slot];
        if x.is_nan() {
            0.0
        } else {
            self.coef * (self.transform.apply(x) - self.center)
        }
    }
}

/// A logistic regression over encoded feature vectors, in log-odds:
/// `L(x) = intercept + Σ_terms coef · (f(x_slot) − center)`, a missing value contributing 0.
///
/// Every slot with spread gets an identity term; a slot that is never negative and takes more
/// than two values (a count or an amount, not a one-hot or yes/no slot) also gets a
/// [`Transform::Log1p`] term. Terms are fitted on standardised values; `coef` is the standardised
/// coefficient divided by the term's standard deviation and `center` its training mean, so each
/// term's value is its exact SHAP value (independent features; the term's training mean is 0,
/// missing values read as the mean).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    /// Output for a row at the training means, in log-odds.
    pub intercept: f64,
    /// The terms, in slot order.
    pub terms: Vec<LinearTerm>,
}

impl LinearModel {
    /// Fits on column-major `data` (`data[j * rows + i]`, NaN = missing) restricted to the
    /// rows `pick`, with L2 penalty `lambda` on the standardised coefficients.
    ///
    /// # Errors
    /// As [`fit_logistic`].
    pub fn fit(
        data: &[f64],
        rows: usize,
        pick: &[usize],
        y: &[bool],
        lambda: f64,
    ) -> Result<LinearModel, String> {
        let cols = data.len() / rows.max(1);
        // (slot, transform, mean, standard deviation) of every term with spread.
        let mut terms: Vec<(usize, Transform, f64, f64)> = Vec::new();
        for j in 0..cols {
            let col = &data[j * rows..(j + 1) * rows];
            let present: Vec<f64> = pick
                .iter()
                .map(|&i| col[i])
                .filter(|v| !v.is_nan())
                .collect();
            let countlike =
                present.iter().all(|&v| v >= 0.0) && present.iter().any(|&v| v != 0.0 && v != 1.0);
            let transforms: &[Transform] = if countlike {
                &[Transform::Identity, Transform::Log1p]
            } else {
                &[Transform::Identity]
            };
            for &t in transforms {
                let n = present.len() as f64;
                if n == 0.0 {
                    continue;
                }
                let mean = present.iter().map(|&v| t.apply(v)).sum::<f64>() / n;
                let var = present
                    .iter()
                    .map(|&v| (t.apply(v) - mean) * (t.apply(v) - mean))
                    .sum::<f64>()
                    / n;
                // A term with no spread carries no information; it is left out.
                if var.sqrt() > 1e-12 {
                    terms.push((j, t, mean, var.sqrt()));
                }
            }
        }
        let width = terms.len();
        let mut x = vec![0.0; pick.len() * width];
        for (c, &(j, t, mean, sd)) in terms.iter().enumerate() {
            for (r, &i) in pick.iter().enumerate() {
                let v = data[j * rows + i];
                x[r * width + c] = if v.is_nan() {
                    0.0
                } else {
                    (t.apply(v) - mean) / sd
                };
            }
        }
        let sub_y: Vec<bool> = pick.iter().map(|&i| y[i]).collect();
        let beta = fit_logistic(&x, pick.len(), &sub_y, lambda)?;
        Ok(LinearModel {
            intercept: beta[0],
            terms: terms
                .iter()
                .zip(&beta[1..])
                .map(|(&(slot, transform, center, sd), b)| LinearTerm {
                    slot,
                    transform,
                    coef: b / sd,
                    center,
                })
                .collect(),
        })
    }

    /// The output for one encoded row, in log-odds. Sums in term order (reproducible to the bit).
    #[inline]
    pub fn log_odds(&self, row: &[f64]) -> f64 {
        let mut s = self.intercept;
        for t in &self.terms {
            s += t.contribution(row);
        }
        s
    }

    /// Checks slots and finiteness against `n_features` slots.
    ///
    /// # Errors
    /// A sentence naming the problem.
    pub fn validate(&self, n_features: usize) -> Result<(), String> {
        if let Some(t) = self.terms.iter().find(|t| t.slot >= n_features) {
            return Err(format!(
                "the linear part reads slot {} but the schema has {n_features}",
                t.slot
            ));
        }
        if !self.intercept.is_finite()
            || self
                .terms
                .iter()
                .any(|t| !(t.coef.is_finite() && t.center.is_finite()))
        {
            return Err("the linear part has a non-finite number".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_known_coefficients() {
        // y ~ Bernoulli(σ(−0.5 + 1.5 a − 2 b)), 20k rows: the MLE is close to the truth.
        let rows = 20_000;
        let mut s: u64 = 5;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut x = vec![0.0; rows * 2];
        let mut y = vec![false; rows];
        for i in 0..rows {
            let (a, b) = (next() * 2.0 - 1.0, next() * 2.0 - 1.0);
            x[2 * i] = a;
            x[2 * i + 1] = b;
            y[i] = next() < sigmoid(-0.5 + 1.5 * a - 2.0 * b);
        }
        let beta = fit_logistic(&x, rows, &y, 1e-6).unwrap();
        assert!((beta[0] + 0.5).abs() < 0.06, "{beta:?}");
        assert!((beta[1] - 1.5).abs() < 0.1, "{beta:?}");
        assert!((beta[2] + 2.0).abs() < 0.1, "{beta:?}");
        // A stronger penalty shrinks the slopes, not the intercept's role.
        let shrunk = fit_logistic(&x, rows, &y, 5_000.0).unwrap();
        assert!(shrunk[1].abs() < beta[1].abs() && shrunk[2].abs() < beta[2].abs());
    }

    #[test]
    fn standardised_model_centres_and_skips_constant_and_missing() {
        // Column 0 informative with a missing value, column 1 constant; column-major.
        let rows = 200;
        let mut data = vec![0.0; rows * 2];
        let mut y = vec![false; rows];
        for i in 0..rows {
            data[i] = (i % 10) as f64;
            data[rows + i] = 3.0;
            y[i] = (i % 10) >= 5 && i % 3 != 0;
        }
        data[7] = f64::NAN;
        let pick: Vec<usize> = (0..rows).collect();
        let m = LinearModel::fit(&data, rows, &pick, &y, 1.0).unwrap();
        assert!(m.validate(2).is_ok());
        // Column 0 is count-like: an identity and a log term; the constant column has none.
        let kinds: Vec<(usize, Transform)> =
            m.terms.iter().map(|t| (t.slot, t.transform)).collect();
        assert_eq!(kinds, vec![(0, Transform::Identity), (0, Transform::Log1p)]);
        assert!(m.terms[0].coef > 0.0);
        // A missing value scores as the mean, and the terms are centred on the training rows.
        assert_eq!(m.log_odds(&[f64::NAN, 3.0]), m.intercept);
        let mean: f64 = (0..rows)
            .filter(|&i| i != 7)
            .map(|i| m.log_odds(&[data[i], 3.0]) - m.intercept)
            .sum::<f64>()
            / (rows - 1) as f64;
        assert!(mean.abs() < 1e-9, "{mean}");
    }

    #[test]
    fn stacking_weights_are_never_negative() {
        // Part 0 carries the signal; part 1 is part 0 plus noise that anti-correlates with the
        // label once part 0 is known, so an unconstrained fit gives part 1 a negative weight.
        let rows = 400;
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..rows {
            let a = next() * 4.0 - 2.0;
            let label = next() < 1.0 / (1.0 + (-2.0 * a).exp());
            let b = a + if label { -0.8 } else { 0.8 } * next();
            x.extend([a, b]);
            y.push(label);
        }
        let free = fit_logistic(&x, rows, &y, 1e-6).unwrap();
        assert!(
            free[2] < 0.0,
            "the example must provoke a negative weight: {free:?}"
        );
        let beta = fit_stacking(&x, 2, &y, 1e-6).unwrap();
        assert!(beta[1] > 0.0 && beta[2] == 0.0, "{beta:?}");
        // Positive weights are left as the free fit gives them.
        let x2: Vec<f64> = x.chunks(2).flat_map(|r| [r[0], r[0] * 0.5]).collect();
        let both = fit_stacking(&x2, 2, &y, 1.0).unwrap();
        assert!(both[1] >= 0.0 && both[2] >= 0.0, "{both:?}");
    }
}
