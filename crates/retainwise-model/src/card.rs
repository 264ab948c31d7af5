//! The model card: what a model was trained on, how, and how well it did, stored in the artifact.
//!
//! Reporting follows Mitchell et al. (2019), "Model Cards for Model Reporting" (FAT* '19), cut
//! down to what this service can state from the training run itself.

use serde::{Deserialize, Serialize};

use crate::blend::Blend;
use crate::calibration::CalibrationChoice;
use crate::gbdt::GbdtSettings;
use crate::schema::{ColumnKind, DroppedColumn, FeatureSchema};
use crate::search::{CandidateResult, PenaltyResult, SearchSpace};

/// One feature column of the model, as shown on the card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardFeature {
    /// Column name.
    pub name: String,
    /// `"numeric"`, `"boolean"`, `"categorical"` or `"date"`.
    pub kind: String,
    /// The levels of a categorical column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels: Option<Vec<String>>,
    /// What the model reads from a date column: [`DATE_MEANING`] (absent for other kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<String>,
    /// The values of a numeric or date column seen in training (absent for other kinds, and on
    /// cards written before ranges were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<FeatureRange>,
    /// The training distribution of the column, to measure a scored file's drift against
    /// ([`crate::drift`]); absent on rule-based cards and cards written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::drift::FeatureProfile>,
}

/// The training values of one numeric or date column (a date as the model reads it: days
/// before the reference date). Scoring flags a value far outside it ([`FeatureRange::judge`])
/// instead of giving it a confident score in silence: trees carry the last value they saw on
/// to anything beyond it, and the regression's terms grow without bound, so no answer for such
/// a value was learnt from data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureRange {
    /// The smallest value seen.
    pub min: f64,
    /// The largest value seen.
    pub max: f64,
    /// Whether any value seen was below zero.
    pub negatives: bool,
}

/// Why a value lies outside a [`FeatureRange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutOfRange {
    /// Below zero where training saw no negative value.
    Negative,
    /// More than the range's width (at least 1) below its minimum.
    FarBelow,
    /// More than the range's width (at least 1) above its maximum.
    FarAbove,
}

impl FeatureRange {
    /// The range of `values` (NaN = missing, skipped); `None` when none is present.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<FeatureRange> {
        let mut range: Option<FeatureRange> = None;
        for x in values.into_iter().filter(|x| !x.is_nan()) {
            let r = range.get_or_insert(FeatureRange {
                min: x,
                max: x,
                negatives: false,
            });
            r.min = r.min.min(x);
            r.max = r.max.max(x);
            r.negatives |= x < 0.0;
        }
        range
    }

    /// Whether `x` is far outside the range: negative where training had no negatives, or
    /// beyond either end by more than the range's width (at least 1; so for a tenure trained on
    /// 0–72, 150 and −1 are flagged, 100 is not). `None` for a value the model knows.
    pub fn judge(&self, x: f64) -> Option<OutOfRange> {
        let width = (self.max - self.min).max(1.0);
        if x < 0.0 && !self.negatives {
            Some(OutOfRange::Negative)
        } else if x < self.min - width {
            Some(OutOfRange::FarBelow)
        } else if x > self.max + width {
            Some(OutOfRange::FarAbove)
        } else {
            None
        }
    }
}

/// How a date column is read, as stated on the card.
pub const DATE_MEANING: &str = "days before the reference date";

impl CardFeature {
    /// `"numeric"`, or for a date `"date: days before the reference date"`.
    pub fn describe(&self) -> String {
        match &self.meaning {
            Some(m) => format!("{}: {m}", self.kind),
            None => self.kind.clone(),
        }
    }
}

impl CardFeature {
    /// The card entries of `schema`'s columns.
    pub fn from_schema(schema: &FeatureSchema) -> Vec<CardFeature> {
        schema
            .columns
            .iter()
            .map(|c| CardFeature {
                name: c.name.clone(),
                kind: c.kind.name().to_string(),
                levels: match &c.kind {
                    ColumnKind::Categorical { levels } => Some(levels.clone()),
                    _ => None,
                },
                meaning: (c.kind == ColumnKind::Date).then(|| DATE_MEANING.to_string()),
                range: None,
                profile: None,
            })
            .collect()
    }

    /// The card entries of `schema`'s columns with the training range of each numeric and date
    /// column and every column's drift profile ([`crate::drift::profiles`]), read from the
    /// encoded training matrix `data` (column-major, `rows` rows, NaN = missing).
    pub fn with_ranges(schema: &FeatureSchema, data: &[f64], rows: usize) -> Vec<CardFeature> {
        let mut features = Self::from_schema(schema);
        let profiles = crate::drift::profiles(schema, data, rows);
        for (((f, c), at), profile) in features
            .iter_mut()
            .zip(&schema.columns)
            .zip(schema.offsets())
            .zip(profiles)
        {
            f.profile = Some(profile);
            if matches!(c.kind, ColumnKind::Numeric | ColumnKind::Date) {
                f.range = FeatureRange::of(data[at * rows..(at + 1) * rows].iter().copied());
            }
        }
        features
    }
}

/// The training file, identified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// SHA-256 (FIPS 180-4) of the training file's bytes, lower-case hex.
    pub sha256: String,
    /// Data rows used.
    pub rows: u64,
    /// Rows labelled churned.
    pub positives: u64,
}

/// A metric over the cross-validation folds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Mean over folds (NaN, written `null`, for a model not cross-validated).
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    /// Sample standard deviation over folds (the spread, not a standard error).
    #[serde(deserialize_with = "nan_if_null")]
    pub std: f64,
    /// The value on each held-out fold, in fold order.
    pub folds: Vec<f64>,
}

/// An `f64` that JSON wrote as `null`: serde_json writes NaN (a metric a rule-based model does
/// not have) that way, and reads it back as NaN here, so every card round-trips.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl MetricSummary {
    /// Summarises per-fold values, rounded to 6 decimals (more would be noise).
    pub fn from_folds(values: &[f64]) -> Self {
        let (mean, std) = crate::metrics::mean_std(values);
        MetricSummary {
            mean: round6(mean),
            std: round6(std),
            folds: values.iter().map(|v| round6(*v)).collect(),
        }
    }
}

/// Rounds to 6 decimals.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Stratified k-fold cross-validation results (each fold scored by a model fit on the others).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvMetrics {
    /// Number of folds.
    pub folds: usize,
    /// ROC AUC ([`crate::metrics::roc_auc`]).
    pub roc_auc: MetricSummary,
    /// Average precision, the PR AUC ([`crate::metrics::average_precision`]).
    pub pr_auc: MetricSummary,
    /// Log loss in nats ([`crate::metrics::log_loss`]).
    pub log_loss: MetricSummary,
    /// Brier score ([`crate::metrics::brier`]).
    pub brier: MetricSummary,
    /// Expected calibration error over all out-of-fold forecasts, 10 equal-width bins
    /// ([`crate::metrics::expected_calibration_error`]).
    #[serde(deserialize_with = "nan_if_null")]
    pub calibration_error: f64,
    /// The reliability table behind it: the same bins, with rows, mean forecast and observed
    /// churn rate (empty on cards written before it was recorded).
    #[serde(default)]
    pub reliability: Vec<crate::metrics::ReliabilityBin>,
    /// Lift in the top decile ([`crate::metrics::top_decile_lift`]); absent on cards written
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_decile_lift: Option<MetricSummary>,
    /// How rows were kept together in folds (`None`: each row on its own, as for one row per
    /// customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<FoldGrouping>,
}

/// Folds that keep all rows of a group (a customer's history) together: what
/// `TrainParams::group_column` produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldGrouping {
    /// The column whose equal values form a group.
    pub column: String,
    /// Distinct groups (every row has one: a blank group cell is refused).
    pub groups: u64,
    /// What each fold held, in fold order.
    pub folds: Vec<FoldCount>,
}

/// The size of one fold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldCount {
    /// Groups in the fold.
    pub groups: u64,
    /// Rows in the fold.
    pub rows: u64,
    /// Churned rows in the fold.
    pub positives: u64,
}

/// What the built-in search ([`crate::search`]) tried and chose for the final model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    /// What was tried.
    pub space: SearchSpace,
    /// Each tree candidate's early-stopped rounds and inner-fold log loss.
    pub candidates: Vec<CandidateResult>,
    /// Each logistic-regression penalty's inner-fold log loss.
    pub penalties: Vec<PenaltyResult>,
    /// The logistic regression's chosen L2 penalty (`None`: trees alone).
    pub linear_l2: Option<f64>,
    /// The blend weights fitted on out-of-fold log-odds.
    pub blend: Blend,
    /// Platt or isotonic, with both candidates' cross-validated log loss.
    pub calibration: CalibrationChoice,
    /// What the search chose on each outer fold's training folds (depth, learning rate,
    /// rounds, penalty, calibration): how stable the choice is.
    pub outer_folds: Vec<String>,
}

/// Everything that determined the fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// Boosting settings of the final model (for a searched model, the chosen depth, learning
    /// rate and early-stopped rounds).
    pub gbdt: GbdtSettings,
    /// The search and its choices (absent on cards written before the search existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchRecord>,
    /// Cross-validation folds.
    pub folds: usize,
    /// Seed for fold assignment and the learner's sampling.
    pub seed: u64,
}

/// Versions of the software that trained the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Software {
    /// This crate's version.
    pub retainwise_model: String,
    /// The tree learner, e.g. `"forust-ml 0.8"`.
    pub trainer: String,
}

/// The model card stored with every artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Short model name (the first part of the model id).
    pub name: String,
    /// Training label column.
    pub label: String,
    /// Customer id column, if any.
    pub id_column: Option<String>,
    /// Feature columns and their types.
    pub features: Vec<CardFeature>,
    /// Training columns not used, and why.
    pub dropped_columns: Vec<DroppedColumn>,
    /// The training file.
    pub training_data: TrainingData,
    /// Cross-validated performance.
    pub cross_validation: CvMetrics,
    /// Settings used.
    pub settings: TrainSettings,
    /// Training date, `YYYY-MM-DD` (UTC).
    pub trained_at: String,
    /// Software versions.
    pub software: Software,
    /// Remarks from schema inference (e.g. values read as missing).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The training file's reference date, `YYYY-MM-DD`, when the model has date columns: the
    /// latest date in any of them, or the one given for training. A scored file's date columns
    /// count days before that file's own reference date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_date: Option<String>,
    /// Where `reference_date` came from, in words: the data row and column of the date, and
    /// the dates passed over as standing apart ([`crate::dates::reference_with_source`], the
    /// rule scoring uses); `None` for a given date or a card from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_date_source: Option<String>,
    /// The column holding each row's own reference date (an observation date), when the model
    /// was trained with one: its date features are days before the row's own date. Scoring
    /// reads the same column when the file has it, else counts from the file's reference date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation_date: Option<String>,
    /// Whom the model was trained for, as an opaque tag ([`crate::TrainParams::namespace`]);
    /// absent for models trained without one (the built-in ones, `retainwise train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The distribution of the model's out-of-fold churn probabilities on the training file,
    /// to measure a scored file's shift in predictions against ([`crate::drift`]); absent on
    /// rule-based cards and cards written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_profile: Option<crate::drift::ScoreProfile>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rule_based_card_with_nan_metrics_round_trips() {
        let card = crate::baseline::saas_baseline().card().clone();
        let json = serde_json::to_string(&card).unwrap();
        let back: ModelCard = serde_json::from_str(&json).unwrap();
        assert!(back.cross_validation.roc_auc.mean.is_nan());
        assert_eq!(back.name, card.name);
    }

    use super::*;

    #[test]
    fn ranges_flag_only_values_far_outside() {
        let tenure = FeatureRange::of([0.0, 72.0, f64::NAN, 5.0]).unwrap();
        assert_eq!(
            (tenure.min, tenure.max, tenure.negatives),
            (0.0, 72.0, false)
        );
        assert_eq!(tenure.judge(-1.0), Some(OutOfRange::Negative));
        assert_eq!(tenure.judge(100.0), None, "within one width of the edge");
        assert_eq!(tenure.judge(150.0), Some(OutOfRange::FarAbove));
        assert_eq!(tenure.judge(1e308), Some(OutOfRange::FarAbove));
        let signed = FeatureRange::of([-10.0, 10.0]).unwrap();
        assert!(signed.negatives);
        assert_eq!(signed.judge(-25.0), None);
        assert_eq!(signed.judge(-31.0), Some(OutOfRange::FarBelow));
        let constant = FeatureRange::of([3.0, 3.0]).unwrap();
        assert_eq!(constant.judge(4.0), None, "a width of at least 1");
        assert_eq!(constant.judge(4.5), Some(OutOfRange::FarAbove));
        assert!(FeatureRange::of([f64::NAN]).is_none());
    }
}
