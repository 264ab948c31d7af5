//! The blend: how the trees' and the logistic regression's log-odds combine into the model's.
//!
//! `F(x) = intercept + tree_weight · T(x) + linear_weight · L(x)`, where `T` is the forest's
//! log-odds and `L` the logistic regression's. The weights are fitted by a logistic regression
//! of the labels on out-of-fold `(T, L)` (stacked generalisation, Wolpert 1992, "Stacked
//! generalization", Neural Networks 5(2); with logistic regression as the combiner, which is
//! Platt scaling of two scores at once). Being affine in each part, the blend keeps SHAP values
//! additive: `tree_weight · φ_tree + linear_weight · φ_linear` are the blended model's exact
//! SHAP values, and the base value is `intercept + tree_weight · T₀ + linear_weight · L₀`.

use serde::{Deserialize, Serialize};

/// The blend weights (see the module doc). The identity blend (`1, 0, 0`) is the forest alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    /// Added to the weighted sum, in log-odds.
    pub intercept: f64,
    /// Weight of the forest's log-odds.
    pub tree_weight: f64,
    /// Weight of the logistic regression's log-odds (0 without a linear part).
    pub linear_weight: f64,
}

impl Default for Blend {
    fn default() -> Self {
        Blend {
            intercept: 0.0,
            tree_weight: 1.0,
            linear_weight: 0.0,
        }
    }
}

impl Blend {
    /// `intercept + tree_weight · t + linear_weight · l`, always in this order, so that every
    /// path that computes a model output gets the same bits.
    #[inline]
    pub fn combine(&self, t: f64, l: f64) -> f64 {
        self.intercept + self.tree_weight * t + self.linear_weight * l
    }

    /// True for the forest alone (a model trained before blending, or with blending off).
    pub fn is_identity(&self) -> bool {
        *self == Blend::default()
    }

    /// Checks that every weight is finite.
    ///
    /// # Errors
    /// A sentence naming the problem.
    pub fn validate(&self) -> Result<(), String> {
        if [self.intercept, self.tree_weight, self.linear_weight]
            .iter()
            .all(|v| v.is_finite())
        {
            Ok(())
        } else {
            Err("the blend has a non-finite weight".into())
        }
    }
}

/// Everything that turns an encoded row into a churn probability: the forest, the optional
/// logistic regression, the blend and the calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictor {
    /// The trees.
    pub forest: crate::forest::Forest,
    /// The logistic regression, when blended.
    pub linear: Option<crate::linear::LinearModel>,
    /// How the parts combine.
    pub blend: Blend,
    /// How the log-odds become a probability.
    pub calibration: crate::calibration::Calibration,
}

impl Predictor {
    /// The forest alone, with the logistic link (what format-1 artifacts hold).
    pub fn forest_only(forest: crate::forest::Forest) -> Predictor {
        Predictor {
            forest,
            linear: None,
            blend: Blend::default(),
            calibration: crate::calibration::Calibration::Sigmoid,
        }
    }

    /// The model output for one encoded row (NaN = missing), in log-odds (before an isotonic
    /// calibration, if any).
    #[inline]
    pub fn log_odds(&self, row: &[f64]) -> f64 {
        self.combine(self.forest.log_odds(row), row)
    }

    /// The blended output given the forest's log-odds `t` for `row`; the one place the parts
    /// are combined, so that scoring and explaining give the same bits.
    #[inline]
    pub fn combine(&self, t: f64, row: &[f64]) -> f64 {
        match &self.linear {
            None if self.blend.is_identity() => t,
            None => self.blend.combine(t, 0.0),
            Some(l) => self.blend.combine(t, l.log_odds(row)),
        }
    }

    /// The churn probability for one encoded row.
    #[inline]
    pub fn probability(&self, row: &[f64]) -> f64 {
        self.calibration.probability(self.log_odds(row))
    }

    /// Checks every part against the forest's feature count.
    ///
    /// # Errors
    /// A sentence naming the part at fault.
    pub fn validate(&self) -> Result<(), String> {
        self.forest.validate()?;
        if let Some(l) = &self.linear {
            l.validate(self.forest.n_features)?;
        }
        self.blend.validate()?;
        self.calibration.validate()
    }
}
