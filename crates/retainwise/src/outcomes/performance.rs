//! Measured accuracy: a prediction's scored customers (read from its stored results through
//! the customers index, [`crate::customer_index`]) matched by customer id to the owner's
//! outcomes, then measured by [`retainwise_model::measured::measure`].
//!
//! A scored customer's label, for a prediction scored on day `T` with an outcome window of `W`
//! days ([`crate::config::Config::outcome_window_days`]), is ([`label`]):
//! - churned on a day in `[T, T + W]`: churned (1);
//! - churned after `T + W`: stayed through the window (0);
//! - seen still a customer on a day on or after `T`: stayed (0);
//! - an outcome dated before `T`: not counted (it happened before the score, so the score did
//!   not predict it), reported as `outcome_before_scoring`;
//! - no outcome: once the window has passed, stayed (0), reported as `assumed_retained`;
//!   before that, not counted (`pending`).
//!
//! So figures appear once outcomes arrived or the window passed; every count says what the
//! figures rest on. A customer id on several rows of one file counts once (its first row);
//! a model's figures pool its predictions, each customer once, from its latest prediction.

use std::collections::{HashMap, HashSet};

use retainwise_model::dates::NaiveDate;
use retainwise_model::measured::{self, Measured};
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::customer_index::{CustomerIndex, IndexCache};
use crate::domain::{ObjectKey, OrgId};

/// How a scored customer counts, given its outcome ([`label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Churned within the window.
    Churned,
    /// Stayed (seen active on or after the score, or churned after the window).
    Stayed,
    /// No outcome and the window has passed: counted as stayed.
    AssumedRetained,
    /// No outcome yet and the window is still open: not counted.
    Pending,
    /// The outcome is dated before the score: not counted.
    BeforeScoring,
}

impl Label {
    /// The 0/1 outcome the figures use, `None` for a customer not counted.
    pub fn churned(self) -> Option<bool> {
        match self {
            Label::Churned => Some(true),
            Label::Stayed | Label::AssumedRetained => Some(false),
            Label::Pending | Label::BeforeScoring => None,
        }
    }
}

/// The label of a customer scored on `scored_on` with `outcome` (churned, date), for a window
/// of `window_days`, on `today` (see the module doc).
pub fn label(
    outcome: Option<(bool, NaiveDate)>,
    scored_on: NaiveDate,
    window_days: u32,
    today: NaiveDate,
) -> Label {
    let window_end = window_end(scored_on, window_days);
    match outcome {
        Some((_, date)) if date < scored_on => Label::BeforeScoring,
        Some((true, date)) if date <= window_end => Label::Churned,
        Some(_) => Label::Stayed,
        None if today > window_end => Label::AssumedRetained,
        None => Label::Pending,
    }
}

/// The last day of the outcome window of a prediction scored on `scored_on`.
pub fn window_end(scored_on: NaiveDate, window_days: u32) -> NaiveDate {
    scored_on
        .checked_add_days(chrono::Days::new(u64::from(window_days)))
        .unwrap_or(NaiveDate::MAX)
}

/// The UTC date of epoch milliseconds `ms`.
pub fn utc_date(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

/// How a prediction's scored customers were matched with outcomes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Matching {
    /// Customers scored (each id once).
    pub customers: u64,
    /// Customers with an outcome that counts.
    pub with_outcome: u64,
    /// Customers without an outcome counted as stayed (the window has passed).
    pub assumed_retained: u64,
    /// Customers without an outcome whose window is still open (not counted).
    pub pending: u64,
    /// Customers whose outcome is dated before the score (not counted).
    pub outcome_before_scoring: u64,
    /// Rows of the results repeating a customer id already counted (not counted again).
    pub repeated_rows: u64,
}

impl Matching {
    fn add(&mut self, other: &Matching) {
        self.customers += other.customers;
        self.with_outcome += other.with_outcome;
        self.assumed_retained += other.assumed_retained;
        self.pending += other.pending;
        self.outcome_before_scoring += other.outcome_before_scoring;
        self.repeated_rows += other.repeated_rows;
    }
}

/// A scored customer with its counted outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledRow {
    /// The customer id (spaces around it removed, as outcomes are stored).
    pub customer_id: String,
    /// The churn probability as stored in the results (6 decimals).
    pub probability: f64,
    /// The outcome counted.
    pub churned: bool,
}

/// Labels the customers of one results `index` (see the module doc).
pub fn label_index(
    index: &CustomerIndex,
    outcomes: &HashMap<String, (bool, NaiveDate)>,
    scored_on: NaiveDate,
    window_days: u32,
    today: NaiveDate,
) -> (Vec<LabelledRow>, Matching) {
    let mut seen: HashSet<&str> = HashSet::with_capacity(index.len());
    let mut rows = Vec::new();
    let mut m = Matching::default();
    for r in 1..=index.len() as u32 {
        let Some(entry) = index.by_row(r) else {
            continue;
        };
        let id = index.id(entry).trim();
        if !seen.insert(id) {
            m.repeated_rows += 1;
            continue;
        }
        m.customers += 1;
        let l = label(outcomes.get(id).copied(), scored_on, window_days, today);
        match l {
            Label::Churned | Label::Stayed => m.with_outcome += 1,
            Label::AssumedRetained => m.assumed_retained += 1,
            Label::Pending => m.pending += 1,
            Label::BeforeScoring => m.outcome_before_scoring += 1,
        }
        if let Some(churned) = l.churned() {
            rows.push(LabelledRow {
                customer_id: id.to_owned(),
                probability: f64::from(entry.millionths) / 1e6,
                churned,
            });
        }
    }
    (rows, m)
}

/// One prediction's measured accuracy.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionPerformance {
    /// The prediction.
    pub prediction_id: String,
    /// The model that scored it.
    pub model_id: String,
    /// The day it was scored (UTC), `YYYY-MM-DD`.
    pub scored_on: String,
    /// The outcome window in days.
    pub window_days: u32,
    /// The window's last day.
    pub window_ends: String,
    /// True once the window's last day is past.
    pub window_passed: bool,
    /// How its customers were matched.
    pub matching: Matching,
    /// The figures, once any customer counts.
    pub measured: Option<Measured>,
    /// `measured`, or `waiting` (no outcome matched and the window still open).
    pub status: &'static str,
}

/// Why performance cannot be measured.
#[derive(Debug, thiserror::Error)]
pub enum PerformanceError {
    /// The prediction has no stored results.
    #[error("prediction {0} is not completed: accuracy is measured on a completed prediction's scored customers")]
    NotCompleted(String),
    /// Reading the results or the database failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A completed prediction of `user`: its id, model, completion time and results key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Scored {
    /// Prediction id.
    pub id: String,
    /// Its model.
    pub model_id: String,
    /// When it completed (epoch ms).
    pub completed_at: i64,
    /// Its results object.
    pub result_key: String,
    /// Its summary JSON (the reference date its date columns were counted from).
    pub summary: Option<String>,
    /// Its upload's object key (the features as scored).
    pub upload_key: String,
    /// The columns chosen by hand when it was uploaded (JSON), if any.
    pub column_mapping: Option<String>,
    /// Customers erased from its results since (the results object's version).
    pub erased_customers: i64,
}

/// The date a prediction's date columns were counted from: the reference date in its summary,
/// else the day it was scored.
pub fn scored_on(p: &Scored) -> NaiveDate {
    p.summary
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| {
            v.get("reference_date")
                .and_then(Value::as_str)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        })
        .unwrap_or_else(|| utc_date(p.completed_at))
}

const SCORED: &str = "SELECT p.id, p.model_id, p.completed_at, p.result_key, p.summary, u.object_key AS upload_key, p.column_mapping, p.erased_customers \
     FROM predictions p JOIN uploads u ON u.id = p.upload_id \
     WHERE p.user_id = $1 AND p.status = 'COMPLETED' AND p.result_key IS NOT NULL AND p.completed_at IS NOT NULL \
     AND p.deletion_id IS NULL";

/// `user`'s completed prediction `id`, `None` when it is not theirs, not completed or unknown.
///
/// Errors: the database's.
pub async fn scored(app: &App, user: &OrgId, id: &str) -> Result<Option<Scored>, sqlx::Error> {
    sqlx::query_as::<_, Scored>(&format!("{SCORED} AND p.id = $2"))
        .bind(super::owner(user))
        .bind(id)
        .fetch_optional(app.db.pool())
        .await
}

/// `user`'s latest completed predictions (at most [`MODEL_PREDICTIONS_POOLED`]), latest first.
///
/// Errors: the database's.
pub async fn scored_all(app: &App, user: &OrgId) -> Result<Vec<Scored>, sqlx::Error> {
    sqlx::query_as::<_, Scored>(&format!(
        "{SCORED} ORDER BY p.completed_at DESC, p.id LIMIT {MODEL_PREDICTIONS_POOLED}"
    ))
    .bind(super::owner(user))
    .fetch_all(app.db.pool())
    .await
}

/// `user`'s completed predictions by `model`, latest first.
///
/// Errors: the database's.
pub async fn scored_by_model(
    app: &App,
    user: &OrgId,
    model: &str,
) -> Result<Vec<Scored>, sqlx::Error> {
    sqlx::query_as::<_, Scored>(&format!(
        "{SCORED} AND p.model_id = $2 ORDER BY p.completed_at DESC, p.id"
    ))
    .bind(super::owner(user))
    .bind(model)
    .fetch_all(app.db.pool())
    .await
}

async fn index_of(
    app: &App,
    indexes: &IndexCache,
    p: &Scored,
) -> anyhow::Result<std::sync::Arc<CustomerIndex>> {
    let key = ObjectKey::parse_foreign(&p.result_key).map_err(|e| anyhow::anyhow!(e.0))?;
    Ok(indexes.get(&app.storage, &key, p.erased_customers).await?)
}

async fn measure_blocking(rows: Vec<LabelledRow>) -> anyhow::Result<Option<Measured>> {
    tokio::task::spawn_blocking(move || {
        let labels: Vec<bool> = rows.iter().map(|r| r.churned).collect();
        let probs: Vec<f64> = rows.iter().map(|r| r.probability).collect();
        measured::measure(&labels, &probs)
    })
    .await
    .map_err(|e| anyhow::anyhow!("measuring stopped: {e}"))
}

/// The labelled rows and matching of one completed prediction.
///
/// Errors: reading its results, or the stored outcomes.
pub async fn labelled(
    app: &App,
    indexes: &IndexCache,
    p: &Scored,
    outcomes: &HashMap<String, (bool, NaiveDate)>,
) -> anyhow::Result<(Vec<LabelledRow>, Matching)> {
    let index = index_of(app, indexes, p).await?;
    Ok(label_index(
        &index,
        outcomes,
        utc_date(p.completed_at),
        app.config.outcome_window_days,
        retainwise_model::dates::today(),
    ))
}

/// The measured accuracy of `user`'s prediction `id`.
///
/// Errors: [`PerformanceError::NotCompleted`] (also for another user's or an unknown id: the
/// caller answers 404 for those first), or reading failed.
pub async fn for_prediction(
    app: &App,
    indexes: &IndexCache,
    user: &OrgId,
    id: &str,
) -> Result<PredictionPerformance, PerformanceError> {
    let p = scored(app, user, id)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| PerformanceError::NotCompleted(id.to_owned()))?;
    let outcomes = super::all(&app.db, user).await?;
    let (rows, matching) = labelled(app, indexes, &p, &outcomes).await?;
    let measured = measure_blocking(rows).await?;
    Ok(prediction_performance(app, &p, matching, measured))
}

fn prediction_performance(
    app: &App,
    p: &Scored,
    matching: Matching,
    measured: Option<Measured>,
) -> PredictionPerformance {
    let window_days = app.config.outcome_window_days;
    let scored_on = utc_date(p.completed_at);
    let end = window_end(scored_on, window_days);
    PredictionPerformance {
        prediction_id: p.id.clone(),
        model_id: p.model_id.clone(),
        scored_on: retainwise_model::dates::iso(scored_on),
        window_days,
        window_ends: retainwise_model::dates::iso(end),
        window_passed: retainwise_model::dates::today() > end,
        matching,
        status: if measured.is_some() {
            "measured"
        } else {
            "waiting"
        },
        measured,
    }
}

/// The model `id` if `user` may see it (theirs, shared or the operator's), else `None` (also
/// for text that is no model id).
///
/// Errors: the database's.
pub async fn visible_model(
    app: &App,
    user: &OrgId,
    id: &str,
) -> Result<Option<crate::db::ModelRow>, sqlx::Error> {
    let Ok(model_id) = id.parse::<crate::domain::ModelId>() else {
        return Ok(None);
    };
    app.db.model(Some(user), &model_id).await
}

/// One model's measured accuracy over `user`'s predictions, beside its cross-validated
/// figures.
#[derive(Debug, Clone, Serialize)]
pub struct ModelPerformance {
    /// The model.
    pub model_id: String,
    /// The outcome window in days.
    pub window_days: u32,
    /// The card's cross-validated figures (`roc_auc`, `pr_auc`, `log_loss`, `brier`: mean and
    /// standard deviation over folds; `calibration_error`; `top_decile_lift`).
    pub cross_validated: Value,
    /// The pooled live figures (each customer once, from its latest prediction).
    pub measured: Option<Measured>,
    /// How the pooled customers were matched.
    pub matching: Matching,
    /// Customers scored by several of the model's predictions, counted once (their latest).
    pub rescored_customers: u64,
    /// Each completed prediction of the model, latest first.
    pub predictions: Vec<PredictionPerformance>,
    /// `measured` or `waiting`.
    pub status: &'static str,
}

/// Predictions pooled into a model's figures at most (the latest ones).
pub const MODEL_PREDICTIONS_POOLED: usize = 50;

/// The measured accuracy of `model` (whose card JSON is `card`) over `user`'s predictions.
///
/// Errors: reading results or the database.
pub async fn for_model(
    app: &App,
    indexes: &IndexCache,
    user: &OrgId,
    model: &str,
    card: &Value,
) -> anyhow::Result<ModelPerformance> {
    let outcomes = super::all(&app.db, user).await?;
    let mut pooled: Vec<LabelledRow> = Vec::new();
    let mut taken: HashSet<String> = HashSet::new();
    let mut matching = Matching::default();
    let mut rescored = 0;
    let mut predictions = Vec::new();
    for p in scored_by_model(app, user, model)
        .await?
        .iter()
        .take(MODEL_PREDICTIONS_POOLED)
    {
        let (rows, m) = labelled(app, indexes, p, &outcomes).await?;
        matching.add(&m);
        for r in &rows {
            if taken.insert(r.customer_id.clone()) {
                pooled.push(r.clone());
            } else {
                rescored += 1;
            }
        }
        let measured = measure_blocking(rows).await?;
        predictions.push(prediction_performance(app, p, m, measured));
    }
    let measured = measure_blocking(pooled).await?;
    let cv = |name: &str| card.pointer(&format!("/cross_validation/{name}")).cloned();
    Ok(ModelPerformance {
        model_id: model.to_owned(),
        window_days: app.config.outcome_window_days,
        cross_validated: serde_json::json!({
            "roc_auc": cv("roc_auc"),
            "pr_auc": cv("pr_auc"),
            "log_loss": cv("log_loss"),
            "brier": cv("brier"),
            "calibration_error": cv("calibration_error"),
            "top_decile_lift": cv("top_decile_lift"),
            "reliability": cv("reliability"),
        }),
        status: if measured.is_some() {
            "measured"
        } else {
            "waiting"
        },
        measured,
        matching,
        rescored_customers: rescored,
        predictions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn labels_follow_the_window() {
        let t = d("2026-01-15");
        let today = d("2026-03-01");
        // Window of 30 days: ends 2026-02-14.
        assert_eq!(
            label(Some((true, d("2026-02-14"))), t, 30, today),
            Label::Churned
        );
        assert_eq!(
            label(Some((true, d("2026-01-15"))), t, 30, today),
            Label::Churned
        );
        assert_eq!(
            label(Some((true, d("2026-02-15"))), t, 30, today),
            Label::Stayed
        );
        assert_eq!(
            label(Some((false, d("2026-01-20"))), t, 30, today),
            Label::Stayed
        );
        assert_eq!(
            label(Some((true, d("2026-01-14"))), t, 30, today),
            Label::BeforeScoring
        );
        assert_eq!(label(None, t, 30, today), Label::AssumedRetained);
        assert_eq!(label(None, t, 90, today), Label::Pending);
        assert_eq!(Label::Pending.churned(), None);
        assert_eq!(Label::AssumedRetained.churned(), Some(false));
    }

    #[test]
    fn an_index_is_labelled_once_per_customer() {
        let results = "customer_id,churn_probability,retention_probability,risk_level\n\
            A,0.900000,0.100000,high\n\
            B,0.200000,0.800000,low\n\
             A ,0.300000,0.700000,low\n\
            C,0.500000,0.500000,medium\n\
            D,0.100000,0.900000,low\n";
        let index = CustomerIndex::parse(results.as_bytes()).unwrap();
        let t = d("2026-01-15");
        let outcomes: HashMap<String, (bool, NaiveDate)> = [
            ("A".to_owned(), (true, d("2026-02-01"))),
            ("B".to_owned(), (false, d("2026-02-01"))),
            ("C".to_owned(), (true, d("2026-01-01"))),
        ]
        .into();
        let (rows, m) = label_index(&index, &outcomes, t, 90, d("2026-02-02"));
        assert_eq!(
            m,
            Matching {
                customers: 4,
                with_outcome: 2,
                assumed_retained: 0,
                pending: 1,
                outcome_before_scoring: 1,
                repeated_rows: 1,
            }
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].customer_id, "A");
        assert_eq!(rows[0].probability, 0.9);
        assert!(rows[0].churned);
        assert!(!rows[1].churned);
    }
}
