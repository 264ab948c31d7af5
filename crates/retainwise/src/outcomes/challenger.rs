//! Champion and challenger: an owner may mark one model as challenger. Every prediction of
//! theirs is then also scored by it in the same job, after the champion's results are stored
//! (shadow scoring: the customer-facing results stay the champion's; the challenger's scores go
//! to `shadow/{user}/{prediction}.csv` and a `shadow_scores` row). Once outcomes arrive both are
//! measured on the same customers, with the paired DeLong interval of the difference of their
//! ROC AUCs ([`retainwise_model::measured::delong_difference`]); promoting makes the challenger
//! the active model.
//!
//! Why shadow: it measures both models on every customer, paired. The original's 50/50 split
//! (by a hash of the customer id) measures each model on its half only; [`compare`] with
//! `split` shows what that split would have measured on the same outcomes (each model on its
//! half, the unpaired interval: wider), so the reason can be seen on one's own data. The
//! customer-facing scores are the champion's either way: a split of what customers see is not
//! offered.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use retainwise_model::measured::{self, AucDifference, Measured};
use retainwise_model::{Explain, ScoreOptions};
use serde::Serialize;

use super::owner;
use super::performance::{self, label_index, utc_date, Matching};
use crate::app::App;
use crate::customer_index::{CustomerIndex, IndexCache};
use crate::domain::{ObjectKey, OrgId, PredictionId};
use crate::error_chain::Chain;

/// `user`'s challenger model, if they marked one.
///
/// Errors: the database's.
pub async fn challenger(app: &App, user: &OrgId) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT model_id FROM challengers WHERE owner_id = $1")
            .bind(owner(user))
            .fetch_optional(app.db.pool())
            .await?;
    Ok(row.map(|(m,)| m))
}

/// Marks `model` as `user`'s challenger (replacing any other).
///
/// Errors: the database's.
pub async fn set(app: &App, user: &OrgId, model: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO challengers (owner_id, model_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (owner_id) DO UPDATE SET model_id = excluded.model_id, created_at = excluded.created_at",
    )
    .bind(owner(user))
    .bind(model)
    .bind(crate::time::now_ms())
    .execute(app.db.pool())
    .await?;
    Ok(())
}

/// Ends `user`'s challenger; false when there was none.
///
/// Errors: the database's.
pub async fn clear(app: &App, user: &OrgId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM challengers WHERE owner_id = $1")
        .bind(owner(user))
        .execute(app.db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Scores the prediction's downloaded file `input` with `user`'s challenger (when they have one
/// other than `champion`) and stores the scores. Called by the prediction job once the
/// champion's results are stored; a failure here is logged and never fails the prediction.
/// `reference` is the date the champion counted date columns from.
pub async fn shadow(
    app: &App,
    user: &OrgId,
    prediction: PredictionId,
    input: &Path,
    champion: &str,
    reference: Option<&str>,
    lost: &AtomicBool,
) {
    if let Err(e) = try_shadow(app, user, prediction, input, champion, reference, lost).await {
        tracing::warn!(prediction_id = %prediction, error = %Chain(e.as_ref()), "shadow_scoring_failed");
    }
}

async fn try_shadow(
    app: &App,
    user: &OrgId,
    prediction: PredictionId,
    input: &Path,
    champion: &str,
    reference: Option<&str>,
    lost: &AtomicBool,
) -> anyhow::Result<()> {
    let Some(model_id) = challenger(app, user).await? else {
        return Ok(());
    };
    if model_id == champion || lost.load(Ordering::SeqCst) {
        return Ok(());
    }
    let model = app.registry.load(&app.db, &app.storage, &model_id).await?;
    let output = input.with_file_name("shadow.csv");
    let options = shadow_options(app, reference)?;
    let (input, out) = (input.to_owned(), output.clone());
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let reader = std::io::BufReader::new(std::fs::File::open(&input)?);
        let writer = std::io::BufWriter::new(std::fs::File::create(&out)?);
        Ok(retainwise_model::score_csv(
            &model,
            reader,
            writer,
            &options,
            &mut |_| {},
        )?)
    })
    .await??;
    store(
        app,
        user,
        prediction,
        &model_id,
        &output,
        report.rows_scored,
    )
    .await
}

/// The options a challenger scores a file with: the champion's reference date (`YYYY-MM-DD`,
/// the one its report names), no explanation (only the scores are compared). A file scored in
/// pieces scores each piece with these too (`worker/pieces.rs`).
///
/// Errors: a reference date that does not read.
pub(crate) fn shadow_options(app: &App, reference: Option<&str>) -> anyhow::Result<ScoreOptions> {
    Ok(ScoreOptions {
        thresholds: app.config.thresholds.clone(),
        reference_date: reference
            .map(retainwise_model::dates::parse_reference)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        explain: Explain::None,
        ..ScoreOptions::default()
    })
}

/// Stores the challenger `model_id`'s scores of `prediction` (the scorer's CSV at `output`,
/// `rows_scored` rows) as its shadow result and `shadow_scores` row, replacing any earlier.
/// Called by one pass ([`shadow`]) and by the merge of a file scored in pieces.
///
/// Errors: storage and the database.
pub(crate) async fn store(
    app: &App,
    user: &OrgId,
    prediction: PredictionId,
    model_id: &str,
    output: &Path,
    rows_scored: u64,
) -> anyhow::Result<()> {
    let key = ObjectKey::parse_foreign(&format!("shadow/{}/{prediction}.csv", user.folder()))
        .map_err(|e| anyhow::anyhow!(e.0))?;
    app.storage.put_file(&key, output).await?;
    sqlx::query(
        "INSERT INTO shadow_scores (prediction_id, owner_id, model_id, result_key, rows_scored, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (prediction_id) DO UPDATE SET \
         model_id = excluded.model_id, result_key = excluded.result_key, rows_scored = excluded.rows_scored, created_at = excluded.created_at",
    )
    .bind(prediction.to_string())
    .bind(owner(user))
    .bind(model_id)
    .bind(key.as_str())
    .bind(i64::try_from(rows_scored).unwrap_or(i64::MAX))
    .bind(crate::time::now_ms())
    .execute(app.db.pool())
    .await?;
    tracing::info!(prediction_id = %prediction, model_id = %model_id, rows = rows_scored, "shadow_scored");
    Ok(())
}

/// One side of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// The model.
    pub model_id: String,
    /// Its figures on the customers both scored.
    pub measured: Option<Measured>,
}

/// Champion and challenger measured on the same customers of one prediction.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The prediction.
    pub prediction_id: String,
    /// The model whose results the customer saw.
    pub champion: Side,
    /// The shadow model.
    pub challenger: Side,
    /// How the champion's customers matched outcomes.
    pub matching: Matching,
    /// Customers with a counted outcome that both models scored.
    pub common: u64,
    /// Challenger's ROC AUC minus the champion's, paired DeLong 95 % interval and p-value;
    /// `None` with fewer than two customers of either class.
    pub roc_auc_difference: Option<AucDifference>,
    /// In words: which is better, or that the interval includes no difference.
    pub verdict: String,
    /// `shadow` (both models on every customer, paired) or `split` (each model on its half by
    /// a hash of the customer id, unpaired).
    pub design: &'static str,
}

/// True for the customers a 50/50 split gives the challenger: the first byte of the SHA-256 of
/// the customer id is odd (stable across runs and processes).
pub fn split_to_challenger(customer_id: &str) -> bool {
    use sha2::Digest;
    sha2::Sha256::digest(customer_id.as_bytes())[0] & 1 == 1
}

/// Why a comparison cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The prediction was not shadow-scored (or is not completed).
    #[error("prediction {0} has no challenger's scores: mark a challenger (POST /api/models/{{id}}/challenger) and score a file")]
    NoShadow(String),
    /// Reading failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Compares champion and challenger on `user`'s prediction `id`: paired on every customer, or
/// with `split` as a 50/50 split by customer id would ([`split_to_challenger`]).
///
/// Errors: [`CompareError`].
pub async fn compare(
    app: &App,
    indexes: &IndexCache,
    user: &OrgId,
    id: &str,
    split: bool,
) -> Result<Comparison, CompareError> {
    let shadow: Option<(String, String)> = sqlx::query_as(
        "SELECT model_id, result_key FROM shadow_scores WHERE owner_id = $1 AND prediction_id = $2",
    )
    .bind(owner(user))
    .bind(id)
    .fetch_optional(app.db.pool())
    .await
    .map_err(anyhow::Error::from)?;
    let p = performance::scored(app, user, id)
        .await
        .map_err(anyhow::Error::from)?;
    let (Some((challenger_model, shadow_key)), Some(p)) = (shadow, p) else {
        return Err(CompareError::NoShadow(id.to_owned()));
    };
    let outcomes = super::all(&app.db, user).await?;
    let (champion_rows, matching) = performance::labelled(app, indexes, &p, &outcomes).await?;
    let key = ObjectKey::parse_foreign(&shadow_key).map_err(|e| anyhow::anyhow!(e.0))?;
    let shadow_index = CustomerIndex::build(&app.storage, &key)
        .await
        .map_err(anyhow::Error::from)?;
    let (challenger_rows, _) = label_index(
        &shadow_index,
        &outcomes,
        utc_date(p.completed_at),
        app.config.outcome_window_days,
        retainwise_model::dates::today(),
    );
    let by_id: HashMap<&str, f64> = challenger_rows
        .iter()
        .map(|r| (r.customer_id.as_str(), r.probability))
        .collect();
    let (mut labels, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    let mut halves = Vec::new();
    for r in &champion_rows {
        if let Some(&q) = by_id.get(r.customer_id.as_str()) {
            labels.push(r.churned);
            a.push(r.probability);
            b.push(q);
            halves.push(split_to_challenger(&r.customer_id));
        }
    }
    let (champion, challenger, difference) = tokio::task::spawn_blocking(move || {
        if split {
            let pick = |to_challenger: bool, p: &[f64]| -> (Vec<bool>, Vec<f64>) {
                (0..labels.len())
                    .filter(|&i| halves[i] == to_challenger)
                    .map(|i| (labels[i], p[i]))
                    .unzip()
            };
            let (ya, pa) = pick(false, &a);
            let (yb, pb) = pick(true, &b);
            (
                measured::measure(&ya, &pa),
                measured::measure(&yb, &pb),
                measured::delong_unpaired_difference(&ya, &pa, &yb, &pb),
            )
        } else {
            (
                measured::measure(&labels, &a),
                measured::measure(&labels, &b),
                measured::delong_difference(&labels, &b, &a),
            )
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("measuring stopped: {e}"))?;
    let common = champion.as_ref().map_or(0, |m| m.n)
        + if split {
            challenger.as_ref().map_or(0, |m| m.n)
        } else {
            0
        };
    let verdict = match &difference {
        None => "not enough customers with outcomes to compare".to_owned(),
        Some(d) if d.difference.lower > 0.0 => format!(
            "the challenger ranks churners better: ROC AUC {:+.3} (95% {:+.3} to {:+.3})",
            d.difference.value, d.difference.lower, d.difference.upper
        ),
        Some(d) if d.difference.upper < 0.0 => format!(
            "the challenger ranks churners worse: ROC AUC {:+.3} (95% {:+.3} to {:+.3})",
            d.difference.value, d.difference.lower, d.difference.upper
        ),
        Some(d) => format!(
            "no clear difference: ROC AUC {:+.3} (95% {:+.3} to {:+.3} includes 0)",
            d.difference.value, d.difference.lower, d.difference.upper
        ),
    };
    Ok(Comparison {
        prediction_id: p.id.clone(),
        champion: Side {
            model_id: p.model_id.clone(),
            measured: champion,
        },
        challenger: Side {
            model_id: challenger_model,
            measured: challenger,
        },
        matching,
        common,
        roc_auc_difference: difference,
        verdict,
        design: if split { "split" } else { "shadow" },
    })
}
