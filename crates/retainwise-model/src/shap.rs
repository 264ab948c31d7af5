//! Exact path-dependent TreeSHAP over a [`Forest`], with per-tree precomputed tables.
//!
//! # What is computed
//! The SHAP values of Lundberg et al. 2018 ("Consistent Individualized Feature Attribution for
//! Tree Ensembles", Algorithm 2; also Lundberg et al. 2020, Nature MI): for a row `x`, the
//! Shapley values of the set function `f_S(x)` in which features outside `S` are integrated out
//! along the tree using node covers. For one tree this expands, leaf by leaf, into
//!
//! ```text
//! f_S(x) = Σ_leaves v_l · Π_{j ∈ U_l} ( j ∈ S ? s_lj(x) : r_lj )
//! ```
//!
//! where `U_l` is the set of features split on along the path to leaf `l`, `s_lj(x)` is 1 when
//! `x` takes the path's direction at every split on `j` (0 otherwise) and `r_lj` is the product of
//! `cover(child) / cover(parent)` over those splits. Each leaf term is a product of one factor per
//! feature, so its Shapley values have a closed form (see [`leaf_shapley`]), and by linearity the
//! tree's values are the sum over leaves and the forest's the sum over trees. The contributions
//! add up exactly: `base_value + Σ_j φ_j(x) = log_odds(x)` (efficiency), where `base_value` is the
//! forest's base score plus every tree's cover-weighted mean leaf value.
//!
//! # How it is fast
//! The same idea as Fast TreeSHAP v2 (Yang 2021, "Fast TreeSHAP: Accelerating SHAP Value
//! Computation for Trees"): what a row contributes through a tree depends only on the direction
//! it takes at each split node, so everything else can be computed once per model. For a tree
//! with `m ≤` [`MAX_TABLE_SPLITS`] split nodes (every tree of depth ≤ 3, the default), the
//! explainer stores one row of contributions per direction pattern (`2^m` rows); explaining a
//! row is then `m` comparisons, one table lookup and a few additions per tree. Deeper trees fall
//! back to per-leaf tables (Yang's v2 proper: `2^|U_l|` rows per leaf) and, for paths with more
//! than [`MAX_LEAF_TABLE_FEATURES`] distinct features, to the closed form evaluated per row.
//!
//! Contributions are reported per *output group*: the caller maps each encoded feature slot to
//! a group (e.g. every one-hot slot of a categorical column to that column), and a group's value
//! is the sum of its slots' SHAP values.

use crate::forest::Forest;

/// Trees with at most this many split nodes get one table row per direction pattern
/// (`2^m` rows × the tree's distinct groups). 10 keeps a tree's table under ~90 KB.
pub const MAX_TABLE_SPLITS: usize = 10;

/// Leaves whose path splits on at most this many distinct features get a per-leaf table
/// (`2^k` rows × `k`); longer paths are evaluated per row with [`leaf_shapley`].
pub const MAX_LEAF_TABLE_FEATURES: usize = 10;

/// A split node as the explainer needs it.
#[derive(Clone, Debug)]
struct Split {
    feature: usize,
    threshold: f64,
    missing_left: bool,
}

impl Split {
    /// True when `row` goes left at this split (NaN follows `missing_left`).
    #[inline]
    fn goes_left(&self, row: &[f64]) -> bool {
        let x = row[self.feature];
        if x.is_nan() {
            self.missing_left
        } else {
            x < self.threshold
        }
    }
}

/// One leaf's path, in terms of the tree's splits and distinct features.
#[derive(Clone, Debug)]
struct LeafPath {
    /// Leaf value (log-odds).
    value: f64,
    /// `(split index, direction needed (true = left), index into `features`)` per path node.
    steps: Vec<(usize, bool, usize)>,
    /// Output group of each distinct feature on the path.
    groups: Vec<usize>,
    /// `r_lj`: the product of cover ratios over the path's splits on each distinct feature.
    ratios: Vec<f64>,
    /// When present: `2^k` rows of `k` Shapley values, row = bit mask of satisfied features.
    table: Option<Vec<f64>>,
}

impl LeafPath {
    /// Bit `i` set when the row satisfies every split on the path's `i`-th distinct feature.
    fn mask(&self, left: &[bool]) -> usize {
        let mut mask = (1usize << self.groups.len()) - 1;
        for &(split, need_left, f) in &self.steps {
            if left[split] != need_left {
                mask &= !(1 << f);
            }
        }
        mask
    }
}

#[derive(Clone, Debug)]
enum TreeTable {
    /// Row `d` (bit `k` = the row went left at split `k`) of `table` holds the contributions to
    /// `groups`; the table has `2^splits.len()` rows of `groups.len()` values.
    ByPattern {
        splits: Vec<Split>,
        groups: Vec<usize>,
        table: Vec<f64>,
        /// The value of the leaf a row with direction pattern `d` reaches.
        leaf_value: Vec<f64>,
    },
    /// Per-leaf paths (tables where small enough), combined per row.
    ByLeaf {
        splits: Vec<Split>,
        leaves: Vec<LeafPath>,
    },
}

/// Exact TreeSHAP explainer of one [`Forest`], with precomputed tables. Build once per model
/// (milliseconds for hundreds of shallow trees), share across threads (`Send + Sync`).
#[derive(Clone, Debug)]
pub struct TreeExplainer {
    base_score: f64,
    base_value: f64,
    n_groups: usize,
    trees: Vec<TreeTable>,
}

impl TreeExplainer {
    /// Builds the explainer of `forest`, attributing encoded feature slot `i` to output group
    /// `group_of_slot[i]` (`group_of_slot.len() == forest.n_features`; groups are
    /// `0..=max(group_of_slot)`). Use the identity map for per-slot values.
    ///
    /// # Panics
    /// If `group_of_slot` is shorter than `forest.n_features` (a caller bug; models are
    /// validated so that every split feature is below `n_features`).
    pub fn new(forest: &Forest, group_of_slot: &[usize]) -> TreeExplainer {
        assert!(group_of_slot.len() >= forest.n_features);
        let n_groups = group_of_slot.iter().max().map_or(0, |m| m + 1);
        let mut base_value = forest.base_score;
        let mut trees = Vec::with_capacity(forest.trees.len());
        for tree in &forest.trees {
            let (table, expected) = build_tree(tree, group_of_slot);
            base_value += expected;
            trees.push(table);
        }
        TreeExplainer {
            base_score: forest.base_score,
            base_value,
            n_groups,
            trees,
        }
    }

    /// The expected model output in log-odds (`f_∅`): the base score plus each tree's
    /// cover-weighted mean leaf value. `base_value + Σ contributions = log-odds` for every row.
    pub fn base_value(&self) -> f64 {
        self.base_value
    }

    /// Number of output groups (length of the contribution vector).
    pub fn n_groups(&self) -> usize {
        self.n_groups
    }

    /// Writes the SHAP value of every output group for encoded row `row` (NaN = missing) into
    /// `phi` (`phi.len() == n_groups()`, overwritten), in log-odds, and returns the model
    /// output (log-odds) for the row.
    ///
    /// The output is summed exactly as [`Forest::log_odds`] sums it (base score, then each
    /// tree's leaf value in boosting order, in f64), so it is the same number to the bit; it
    /// comes from the same direction pattern as the contributions, saving a second tree walk.
    pub fn contributions(&self, row: &[f64], phi: &mut [f64]) -> f64 {
        phi.fill(0.0);
        let mut output = self.base_score;
        // Reused across trees for the deep-tree path; shallow trees never touch it.
        let mut left: Vec<bool> = Vec::new();
        for tree in &self.trees {
            match tree {
                TreeTable::ByPattern {
                    splits,
                    groups,
                    table,
                    leaf_value,
                } => {
                    let mut d = 0usize;
                    for (k, s) in splits.iter().enumerate() {
                        d |= (s.goes_left(row) as usize) << k;
                    }
                    output += leaf_value[d];
                    let n = groups.len();
                    let values = &table[d * n..(d + 1) * n];
                    for (&g, &v) in groups.iter().zip(values) {
                        phi[g] += v;
                    }
                }
                TreeTable::ByLeaf { splits, leaves } => {
                    left.clear();
                    left.extend(splits.iter().map(|s| s.goes_left(row)));
                    let mut scratch = Vec::new();
                    for leaf in leaves {
                        let mask = leaf.mask(&left);
                        let k = leaf.groups.len();
                        if mask == (1 << k) - 1 {
                            // Every split on the path is satisfied: the leaf the row reaches.
                            output += leaf.value;
                        }
                        match &leaf.table {
                            Some(t) => {
                                for (i, &g) in leaf.groups.iter().enumerate() {
                                    phi[g] += t[mask * k + i];
                                }
                            }
                            None => {
                                let s: Vec<f64> =
                                    (0..k).map(|i| ((mask >> i) & 1) as f64).collect();
                                scratch.resize(k, 0.0);
                                leaf_shapley(leaf.value, &s, &leaf.ratios, &mut scratch);
                                for (i, &g) in leaf.groups.iter().enumerate() {
                                    phi[g] += scratch[i];
                                }
                            }
                        }
                    }
                }
            }
        }
        output
    }
}

/// One node on a root-to-leaf path: (split index, went left, feature slot, cover ratio).
type PathStep = (usize, bool, usize, f64);

/// The split nodes of `tree` (in node order) and its root-to-leaf paths.
fn collect(tree: &crate::forest::Tree, group_of_slot: &[usize]) -> (Vec<Split>, Vec<LeafPath>) {
    // Split index of each split node, in node order.
    let mut split_of_node = vec![usize::MAX; tree.len()];
    let mut splits = Vec::new();
    for (i, slot) in split_of_node.iter_mut().enumerate() {
        if !tree.is_leaf(i) {
            *slot = splits.len();
            splits.push(Split {
                feature: tree.feature[i] as usize,
                threshold: tree.threshold[i],
                missing_left: tree.missing_left[i],
            });
        }
    }
    let mut leaves = Vec::new();
    // Depth-first walk carrying the path as (split index, went left, feature, cover ratio).
    let mut stack: Vec<(usize, Vec<PathStep>)> = vec![(0, Vec::new())];
    while let Some((node, path)) = stack.pop() {
        if tree.is_leaf(node) {
            leaves.push(leaf_path(tree.value[node] as f64, &path, group_of_slot));
            continue;
        }
        let parent_cover = tree.cover[node] as f64;
        let feature = tree.feature[node] as usize;
        for (child, went_left) in [(tree.left[node], true), (tree.right[node], false)] {
            let c = child as usize;
            // A node no training row reached has cover 0: it is then never reached in
            // expectation either (ratio 0), the convention of XGBoost and forust-ml.
            let ratio = if parent_cover > 0.0 {
                tree.cover[c] as f64 / parent_cover
            } else {
                0.0
            };
            let mut p = path.clone();
            p.push((split_of_node[node], went_left, feature, ratio));
            stack.push((c, p));
        }
    }
    (splits, leaves)
}

/// Builds the table of `tree`; also returns the tree's expected value `Σ_l v_l Π_j r_lj`.
fn build_tree(tree: &crate::forest::Tree, group_of_slot: &[usize]) -> (TreeTable, f64) {
    let (splits, mut leaves) = collect(tree, group_of_slot);
    let expected: f64 = leaves
        .iter()
        .map(|l| l.value * l.ratios.iter().product::<f64>())
        .sum();

    if splits.len() <= MAX_TABLE_SPLITS {
        // Distinct groups of the tree, in first-seen order.
        let mut groups: Vec<usize> = Vec::new();
        for s in &splits {
            let g = group_of_slot[s.feature];
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        let n = groups.len();
        let patterns = 1usize << splits.len();
        let mut table = vec![0.0; patterns * n];
        let mut leaf_value = vec![0.0; patterns];
        let mut left = vec![false; splits.len()];
        let leaf_tables: Vec<Vec<f64>> = leaves.iter().map(leaf_table).collect();
        let leaf_slots: Vec<Vec<usize>> = leaves
            .iter()
            .map(|l| {
                l.groups
                    .iter()
                    .map(|g| groups.iter().position(|x| x == g).expect("group listed"))
                    .collect()
            })
            .collect();
        for d in 0..patterns {
            for (k, l) in left.iter_mut().enumerate() {
                *l = (d >> k) & 1 == 1;
            }
            let row = &mut table[d * n..(d + 1) * n];
            for ((leaf, t), slots) in leaves.iter().zip(&leaf_tables).zip(&leaf_slots) {
                let k = leaf.groups.len();
                let mask = leaf.mask(&left);
                if mask == (1 << k) - 1 {
                    leaf_value[d] = leaf.value;
                }
                for (i, &slot) in slots.iter().enumerate() {
                    row[slot] += t[mask * k + i];
                }
            }
        }
        (
            TreeTable::ByPattern {
                splits,
                groups,
                table,
                leaf_value,
            },
            expected,
        )
    } else {
        for leaf in &mut leaves {
            if leaf.groups.len() <= MAX_LEAF_TABLE_FEATURES {
                leaf.table = Some(leaf_table(leaf));
            }
        }
        (TreeTable::ByLeaf { splits, leaves }, expected)
    }
}

/// Groups a root-to-leaf path by feature. Two slots of the same output group stay separate
/// players (the Shapley values are per slot, summed per group afterwards).
fn leaf_path(value: f64, path: &[PathStep], group_of_slot: &[usize]) -> LeafPath {
    let mut features: Vec<usize> = Vec::new();
    let mut ratios: Vec<f64> = Vec::new();
    let mut steps = Vec::with_capacity(path.len());
    for &(split, went_left, feature, ratio) in path {
        let f = match features.iter().position(|&x| x == feature) {
            Some(f) => f,
            None => {
                features.push(feature);
                ratios.push(1.0);
                features.len() - 1
            }
        };
        ratios[f] *= ratio;
        steps.push((split, went_left, f));
    }
    LeafPath {
        value,
        steps,
        groups: features.iter().map(|&f| group_of_slot[f]).collect(),
        ratios,
        table: None,
    }
}

/// The per-leaf table: for each mask of satisfied features, the leaf term's Shapley values.
fn leaf_table(leaf: &LeafPath) -> Vec<f64> {
    let k = leaf.groups.len();
    let mut t = vec![0.0; (1 << k) * k];
    let mut s = vec![0.0; k];
    for mask in 0..1usize << k {
        for (i, si) in s.iter_mut().enumerate() {
            *si = ((mask >> i) & 1) as f64;
        }
        leaf_shapley(
            leaf.value,
            &s,
            &leaf.ratios,
            &mut t[mask * k..(mask + 1) * k],
        );
    }
    t
}

/// Shapley values of the product game `g(S) = v · Π_j (j ∈ S ? s_j : r_j)` over `k = s.len()`
/// players, written into `phi` (length `k`).
///
/// `φ_i = (s_i − r_i) · v · Σ_{S ⊆ N∖i} |S|!(k−|S|−1)!/k! · Π_{j∈S} s_j · Π_{j∉S, j≠i} r_j`.
/// The inner sum groups subsets by size: `Π_{j≠i} (r_j + s_j z)` has as coefficient of `z^t` the
/// sum over subsets of size `t`, so `φ_i` is the Shapley-weighted sum of that polynomial's
/// coefficients — `O(k²)` per player (Algorithm 2's EXTEND/UNWIND computes the same weights
/// incrementally along the path).
pub fn leaf_shapley(v: f64, s: &[f64], r: &[f64], phi: &mut [f64]) {
    let k = s.len();
    // weight[t] = t!(k−t−1)!/k!
    let mut weight = vec![0.0; k];
    for (t, w) in weight.iter_mut().enumerate() {
        *w = 1.0 / (k as f64 * binomial(k - 1, t));
    }
    let mut poly = vec![0.0; k];
    for i in 0..k {
        poly.iter_mut().for_each(|c| *c = 0.0);
        poly[0] = 1.0;
        let mut degree = 0;
        for j in (0..k).filter(|&j| j != i) {
            // Multiply by (r_j + s_j z), highest coefficient first.
            degree += 1;
            for t in (0..=degree).rev() {
                let up = if t > 0 { poly[t - 1] * s[j] } else { 0.0 };
                poly[t] = poly[t] * r[j] + up;
            }
        }
        let sum: f64 = poly.iter().zip(&weight).map(|(c, w)| c * w).sum();
        phi[i] = (s[i] - r[i]) * v * sum;
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    let mut b = 1.0;
    for i in 0..k {
        b = b * (n - i) as f64 / (i + 1) as f64;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::Tree;

    /// Brute-force Shapley values of the tree's `f_S(x)` (definition: every subset of every
    /// feature, `f_S` by the recursive cover-weighted walk of Lundberg et al. Algorithm 1).
    fn brute_force(forest: &Forest, row: &[f64]) -> (f64, Vec<f64>) {
        let n = forest.n_features;
        fn f_s(t: &Tree, row: &[f64], set: usize, node: usize) -> f64 {
            if t.is_leaf(node) {
                return t.value[node] as f64;
            }
            let f = t.feature[node] as usize;
            let (l, r) = (t.left[node] as usize, t.right[node] as usize);
            if (set >> f) & 1 == 1 {
                let x = row[f];
                let go_left = if x.is_nan() {
                    t.missing_left[node]
                } else {
                    x < t.threshold[node]
                };
                f_s(t, row, set, if go_left { l } else { r })
            } else {
                let c = t.cover[node] as f64;
                (t.cover[l] as f64 * f_s(t, row, set, l) + t.cover[r] as f64 * f_s(t, row, set, r))
                    / c
            }
        }
        let value = |set: usize| -> f64 {
            forest.base_score
                + forest
                    .trees
                    .iter()
                    .map(|t| f_s(t, row, set, 0))
                    .sum::<f64>()
        };
        let fact = |m: usize| (1..=m).map(|x| x as f64).product::<f64>();
        let mut phi = vec![0.0; n];
        for (i, p) in phi.iter_mut().enumerate() {
            for set in 0..1usize << n {
                if (set >> i) & 1 == 1 {
                    continue;
                }
                let size = set.count_ones() as usize;
                let w = fact(size) * fact(n - size - 1) / fact(n);
                *p += w * (value(set | 1 << i) - value(set));
            }
        }
        (value(0), phi)
    }

    /// A depth-3 tree that splits on feature 0 twice on one path and sends missing both ways.
    fn tree() -> Tree {
        Tree {
            feature: vec![0, 1, 0, -1, 2, -1, -1, -1, -1],
            threshold: vec![5.0, 1.0, 8.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0],
            left: vec![1, 3, 5, 0, 7, 0, 0, 0, 0],
            right: vec![2, 4, 6, 0, 8, 0, 0, 0, 0],
            missing_left: vec![true, false, false, false, true, false, false, false, false],
            value: vec![0.0, 0.0, 0.0, -0.3, 0.0, 0.2, 0.9, 0.1, -0.6],
            cover: vec![100.0, 60.0, 40.0, 25.0, 35.0, 30.0, 10.0, 20.0, 15.0],
        }
    }

    fn rows() -> Vec<Vec<f64>> {
        let mut rows = Vec::new();
        for a in [f64::NAN, 3.0, 6.0, 9.0] {
            for b in [f64::NAN, 0.0, 2.0] {
                for c in [f64::NAN, 0.0, 1.0] {
                    rows.push(vec![a, b, c]);
                }
            }
        }
        rows
    }

    #[test]
    fn matches_brute_force_shapley_and_adds_up() {
        let forest = Forest {
            n_features: 3,
            base_score: -1.1,
            trees: vec![tree(), tree()],
        };
        let e = TreeExplainer::new(&forest, &[0, 1, 2]);
        for row in rows() {
            let (base, want) = brute_force(&forest, &row);
            let mut phi = vec![0.0; 3];
            let output = e.contributions(&row, &mut phi);
            assert_eq!(output.to_bits(), forest.log_odds(&row).to_bits());
            assert!((e.base_value() - base).abs() < 1e-12);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{row:?}: {phi:?} vs {want:?}");
            }
            let total = e.base_value() + phi.iter().sum::<f64>();
            assert!((total - forest.log_odds(&row)).abs() < 1e-12);
        }
    }

    #[test]
    fn leaf_paths_and_pattern_tables_agree_and_groups_sum_slots() {
        let forest = Forest {
            n_features: 3,
            base_score: 0.0,
            trees: vec![tree()],
        };
        let by_pattern = TreeExplainer::new(&forest, &[0, 1, 2]);
        let mut by_leaf = by_pattern.clone();
        let mut by_formula = by_pattern.clone();
        let (splits, mut leaves) = collect(&forest.trees[0], &[0, 1, 2]);
        assert!(
            splits.len() <= MAX_TABLE_SPLITS,
            "the test tree gets a pattern table"
        );
        by_formula.trees = vec![TreeTable::ByLeaf {
            splits: splits.clone(),
            leaves: leaves.clone(),
        }];
        for l in &mut leaves {
            l.table = Some(leaf_table(l));
        }
        by_leaf.trees = vec![TreeTable::ByLeaf { splits, leaves }];
        let grouped = TreeExplainer::new(&forest, &[0, 0, 1]);
        for row in rows() {
            let mut a = vec![0.0; 3];
            let mut b = vec![0.0; 3];
            let mut c = vec![0.0; 3];
            let fa = by_pattern.contributions(&row, &mut a);
            let fb = by_leaf.contributions(&row, &mut b);
            let fc = by_formula.contributions(&row, &mut c);
            assert_eq!(fa.to_bits(), forest.log_odds(&row).to_bits());
            assert_eq!(fb.to_bits(), fa.to_bits());
            assert_eq!(fc.to_bits(), fa.to_bits());
            for i in 0..3 {
                assert!((a[i] - b[i]).abs() < 1e-12 && (a[i] - c[i]).abs() < 1e-12);
            }
            let mut g = vec![0.0; 2];
            grouped.contributions(&row, &mut g);
            assert!((g[0] - (a[0] + a[1])).abs() < 1e-12);
            assert!((g[1] - a[2]).abs() < 1e-12);
        }
    }

    #[test]
    fn leaf_shapley_is_the_shapley_value_of_the_product_game() {
        let s = [1.0, 0.0, 1.0, 1.0];
        let r = [0.3, 0.6, 0.5, 0.9];
        let v = 2.0;
        let mut phi = [0.0; 4];
        leaf_shapley(v, &s, &r, &mut phi);
        let g = |set: usize| -> f64 {
            v * (0..4)
                .map(|j| if (set >> j) & 1 == 1 { s[j] } else { r[j] })
                .product::<f64>()
        };
        let fact = |m: usize| (1..=m).map(|x| x as f64).product::<f64>();
        for (i, &got) in phi.iter().enumerate() {
            let mut want = 0.0;
            for set in 0..16usize {
                if (set >> i) & 1 == 0 {
                    let size = set.count_ones() as usize;
                    want += fact(size) * fact(3 - size) / fact(4) * (g(set | 1 << i) - g(set));
                }
            }
            assert!((got - want).abs() < 1e-14);
        }
        assert!((phi.iter().sum::<f64>() - (g(15) - g(0))).abs() < 1e-14);
    }
}
