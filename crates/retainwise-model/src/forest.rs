//! The project's own tree-ensemble format and inference.
//!
//! A [`Forest`] is a base score plus a sum of regression trees, all in log-odds. Each [`Tree`] is
//! stored as parallel arrays indexed by node number, node 0 the root (the layout XGBoost's JSON
//! model uses), so that inference and exact TreeSHAP (Lundberg et al. 2020, "From local
//! explanations to global understanding with explainable AI for trees", Algorithm 2) can walk
//! the same nodes: a split node sends a row left when `value < threshold`, right otherwise, and
//! a missing value (NaN) the way `missing_left` says; `cover` is the hessian sum of the training
//! rows that reached the node, the node weight TreeSHAP needs.

use serde::{Deserialize, Serialize};

/// One regression tree as parallel per-node arrays. All arrays have the same length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Encoded feature index a node splits on; `-1` marks a leaf.
    pub feature: Vec<i32>,
    /// Split threshold: go left when `value < threshold` (0 for leaves).
    pub threshold: Vec<f64>,
    /// Left child node number (0 for leaves).
    pub left: Vec<u32>,
    /// Right child node number (0 for leaves).
    pub right: Vec<u32>,
    /// Where a missing value goes: left when true, right when false (false for leaves).
    pub missing_left: Vec<bool>,
    /// Node value in log-odds, learning rate applied. For a leaf, what the tree adds to the
    /// score; for a split node, the value the node would have had as a leaf.
    pub value: Vec<f32>,
    /// Hessian sum (for log loss, sum of p(1-p)) of the training rows reaching the node.
    pub cover: Vec<f32>,
}

impl Tree {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.feature.len()
    }

    /// True for a tree with no nodes (never valid).
    pub fn is_empty(&self) -> bool {
        self.feature.is_empty()
    }

    /// True when node `i` is a leaf.
    pub fn is_leaf(&self, i: usize) -> bool {
        self.feature[i] < 0
    }

    /// The leaf `row` (an encoded feature vector, NaN = missing) ends in.
    pub fn leaf(&self, row: &[f64]) -> usize {
        let mut i = 0;
        while self.feature[i] >= 0 {
            let x = row[self.feature[i] as usize];
            let go_left = if x.is_nan() {
                self.missing_left[i]
            } else {
                x < self.threshold[i]
            };
            i = if go_left { self.left[i] } else { self.right[i] } as usize;
        }
        i
    }

    /// Checks array lengths, child links (each child numbered after its parent, reached once),
    /// feature indices below `n_features` and finite numbers.
    fn validate(&self, n_features: usize) -> Result<(), String> {
        let n = self.len();
        if n == 0 {
            return Err("has no nodes".into());
        }
        let lens = [
            self.threshold.len(),
            self.left.len(),
            self.right.len(),
            self.missing_left.len(),
            self.value.len(),
            self.cover.len(),
        ];
        if lens.iter().any(|l| *l != n) {
            return Err("has per-node arrays of different lengths".into());
        }
        let mut parents = vec![0u32; n];
        for i in 0..n {
            if !self.value[i].is_finite() || !self.cover[i].is_finite() || self.cover[i] < 0.0 {
                return Err(format!("node {i} has a non-finite value or cover"));
            }
            if self.is_leaf(i) {
                if self.feature[i] != -1 {
                    return Err(format!("node {i} has feature {}", self.feature[i]));
                }
                continue;
            }
            let f = self.feature[i] as usize;
            if f >= n_features {
                return Err(format!(
                    "node {i} splits on feature {f} but the schema has {n_features}"
                ));
            }
            if self.threshold[i].is_nan() {
                return Err(format!("node {i} has a NaN threshold"));
            }
            for child in [self.left[i], self.right[i]] {
                let c = child as usize;
                if c <= i || c >= n {
                    return Err(format!("node {i} links to node {c}"));
                }
                parents[c] += 1;
            }
        }
        if let Some(c) = (1..n).find(|&c| parents[c] != 1) {
            return Err(format!("node {c} is reached {} times", parents[c]));
        }
        Ok(())
    }
}

/// A boosted ensemble: `log_odds(x) = base_score + Σ_t tree_t(x)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// Length of the encoded feature vector the trees index into.
    pub n_features: usize,
    /// Starting score in log-odds (the training positive rate's log-odds).
    pub base_score: f64,
    /// The trees, in boosting order (summed in this order so results are reproducible to the bit).
    pub trees: Vec<Tree>,
}

impl Forest {
    /// The model output for one encoded row, in log-odds.
    ///
    /// Sums in boosting order in f64, the order the trainer used, so training-time and
    /// artifact-time predictions agree exactly.
    pub fn log_odds(&self, row: &[f64]) -> f64 {
        let mut s = self.base_score;
        for t in &self.trees {
            s += t.value[t.leaf(row)] as f64;
        }
        s
    }

    /// The churn probability for one encoded row: the logistic function of [`Forest::log_odds`].
    pub fn probability(&self, row: &[f64]) -> f64 {
        sigmoid(self.log_odds(row))
    }

    /// Checks the base score and every tree against `n_features` (see the module doc).
    ///
    /// # Errors
    /// A sentence naming the tree and node at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !self.base_score.is_finite() {
            return Err("the base score is not a finite number".into());
        }
        if self.trees.is_empty() {
            return Err("the forest has no trees".into());
        }
        for (t, tree) in self.trees.iter().enumerate() {
            tree.validate(self.n_features)
                .map_err(|e| format!("tree {t} {e}"))?;
        }
        Ok(())
    }
}

/// The logistic function `1 / (1 + e^-x)`, written to stay finite for large `|x|`.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x0 < 2 (missing → right) ? 0.5 : (x1 < 0 (missing → left) ? -1 : 1)
    fn tree() -> Tree {
        Tree {
            feature: vec![0, -1, 1, -1, -1],
            threshold: vec![2.0, 0.0, 0.0, 0.0, 0.0],
            left: vec![1, 0, 3, 0, 0],
            right: vec![2, 0, 4, 0, 0],
            missing_left: vec![false, false, true, false, false],
            value: vec![0.0, 0.5, 0.0, -1.0, 1.0],
            cover: vec![10.0, 4.0, 6.0, 3.0, 3.0],
        }
    }

    #[test]
    fn walks_splits_and_missing() {
        let t = tree();
        assert_eq!(t.leaf(&[1.0, 5.0]), 1);
        assert_eq!(t.leaf(&[2.0, -1.0]), 3); // equal to threshold goes right
        assert_eq!(t.leaf(&[f64::NAN, 1.0]), 4);
        assert_eq!(t.leaf(&[3.0, f64::NAN]), 3);
        let f = Forest {
            n_features: 2,
            base_score: 0.25,
            trees: vec![t.clone(), t],
        };
        assert!(f.validate().is_ok());
        assert_eq!(f.log_odds(&[1.0, 0.0]), 1.25);
        assert!((f.probability(&[1.0, 0.0]) - 1.0 / (1.0 + (-1.25f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_links_and_features() {
        let mut f = Forest {
            n_features: 2,
            base_score: 0.0,
            trees: vec![tree()],
        };
        f.trees[0].left[2] = 1;
        assert!(f
            .validate()
            .unwrap_err()
            .contains("tree 0 node 2 links to node 1"));
        let mut g = Forest {
            n_features: 1,
            base_score: 0.0,
            trees: vec![tree()],
        };
        assert!(g.validate().unwrap_err().contains("feature 1"));
        g.n_features = 2;
        g.trees[0].value.pop();
        assert!(g.validate().is_err());
    }

    #[test]
    fn sigmoid_is_stable() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-15);
    }
}
