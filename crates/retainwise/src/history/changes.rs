//! What changed for the customers between two completed predictions of one owner: who moved
//! up (or down) a risk level, who is new, who disappeared (left the file), and the largest
//! probability changes, each with the driver whose effect changed most.
//!
//! Customers are matched by customer id. Counts are exact (one aggregate over the join);
//! lists are the first `limit` in a stated order, so the answer is bounded whatever the files'
//! sizes.

use serde::Serialize;
use sqlx::AnyConnection;

use super::drivers::{most_changed, parse, DriverChange};
use super::{level_rank, probability, Owner};

/// Which prediction to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// The owner's previous completed prediction whose customers were remembered (scored
    /// before this one).
    Previous,
    /// This prediction of the owner.
    Prediction(String),
}

/// Why two predictions cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum NoComparison {
    /// A prediction is not a completed one of the owner whose customers were remembered.
    #[error("{0}")]
    NotRemembered(String),
    /// No earlier completed prediction to compare with.
    #[error("{0}")]
    NoEarlier(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A customer scored by both predictions.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    /// The customer id.
    pub customer_id: String,
    /// Churn probability 0–1 in the earlier (`since`) prediction.
    pub old_churn_probability: f64,
    /// Churn probability 0–1 in this prediction.
    pub new_churn_probability: f64,
    /// `new − old`, probability 0–1 (6 decimals).
    pub change: f64,
    /// Risk level in the earlier prediction.
    pub old_risk_level: String,
    /// Risk level in this one.
    pub new_risk_level: String,
    /// The driver whose effect changed most ([`most_changed`]), `null` when neither run
    /// listed drivers (scored without explanations).
    pub driver: Option<DriverChange>,
}

/// A customer scored by one of the two predictions only.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    /// The customer id.
    pub customer_id: String,
    /// Churn probability 0–1 in the prediction that scored it.
    pub churn_probability: f64,
    /// Risk level there.
    pub risk_level: String,
}

/// Exact counts of a comparison.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Counts {
    /// Customers of this prediction.
    pub customers: i64,
    /// Customers of the earlier one.
    pub since_customers: i64,
    /// Customers in both.
    pub in_both: i64,
    /// In both, at a higher risk level now.
    pub moved_up: i64,
    /// In both, at a lower risk level now.
    pub moved_down: i64,
    /// In this prediction only.
    pub new: i64,
    /// In the earlier one only (no longer in the file).
    pub disappeared: i64,
}

/// The comparison of prediction `prediction_id` with `since_prediction_id`.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    /// This prediction.
    pub prediction_id: String,
    /// The one it is compared with.
    pub since_prediction_id: String,
    /// Exact counts.
    pub counts: Counts,
    /// The most each list holds.
    pub limit: i64,
    /// Moved up a level, largest probability increase first (then customer id).
    pub moved_up: Vec<Moved>,
    /// New customers, highest probability first (then customer id).
    pub new: Vec<Seen>,
    /// Customers no longer in the file, highest earlier probability first (then customer id).
    pub disappeared: Vec<Seen>,
    /// In both, largest absolute probability change first (then customer id).
    pub largest_changes: Vec<Moved>,
}

/// A completed prediction's remembered run: customers, time, and why its customers were not
/// remembered (a note) if so.
async fn run(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
) -> Result<Option<(i64, i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.customers, r.scored_at, r.note FROM customer_runs r \
         JOIN predictions p ON p.id = r.prediction_id AND p.status = 'COMPLETED' \
         WHERE r.prediction_id = $1 AND r.owner_id = $2",
    )
    .bind(id)
    .bind(owner.as_str())
    .fetch_optional(&mut *conn)
    .await
}

/// The run `id` of `owner`, refused with a sentence when it cannot be compared.
async fn comparable(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
) -> Result<(i64, i64), NoComparison> {
    match run(conn, owner, id).await? {
        Some((customers, at, None)) => Ok((customers, at)),
        Some((_, _, Some(note))) => Err(NoComparison::NotRemembered(format!(
            "prediction {id} cannot be compared: {note}"
        ))),
        None => Err(NoComparison::NotRemembered(format!(
            "prediction {id} has no remembered customers: it is not COMPLETED, or it was \
             scored before customers were remembered (score the file again)"
        ))),
    }
}

/// The owner's latest completed prediction with remembered customers scored before `id`
/// (scored at `at`), if any.
pub async fn previous_run(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    at: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT r.prediction_id FROM customer_runs r \
         JOIN predictions p ON p.id = r.prediction_id AND p.status = 'COMPLETED' \
         WHERE r.owner_id = $1 AND r.prediction_id <> $2 AND r.note IS NULL \
         AND (r.scored_at < $3 OR (r.scored_at = $3 AND r.prediction_id < $2)) \
         ORDER BY r.scored_at DESC, r.prediction_id DESC LIMIT 1",
    )
    .bind(owner.as_str())
    .bind(id)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await
}

/// The columns of a joined pair (`c` this prediction, `o` the earlier one).
const PAIR: &str = "c.customer_id, o.probability_ppm, c.probability_ppm, o.risk_level, \
     c.risk_level, o.drivers, c.drivers";

type PairRow = (String, i64, i64, String, String, String, String);

fn moved(row: PairRow) -> Moved {
    let (customer_id, old, new, old_level, new_level, old_drivers, new_drivers) = row;
    Moved {
        customer_id,
        old_churn_probability: probability(old),
        new_churn_probability: probability(new),
        change: probability(new - old),
        old_risk_level: old_level,
        new_risk_level: new_level,
        driver: most_changed(&parse(&old_drivers), &parse(&new_drivers)),
    }
}

/// Compares prediction `id` of `owner` with `since` (the previous one by default); lists hold
/// at most `limit` customers each.
///
/// Errors: either prediction is not a completed one of `owner` with remembered customers, no
/// earlier prediction exists (for [`Since::Previous`]), or the database failed.
pub async fn changes(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    since: &Since,
    limit: i64,
) -> Result<Changes, NoComparison> {
    let (customers, at) = comparable(conn, owner, id).await?;
    let since_id = match since {
        Since::Prediction(s) => s.clone(),
        Since::Previous => previous_run(conn, owner, id, at).await?.ok_or_else(|| {
            NoComparison::NoEarlier(format!(
                "prediction {id} is your first with remembered customers: there is no \
                 earlier one to compare with"
            ))
        })?,
    };
    let (since_customers, _) = comparable(conn, owner, &since_id).await?;
    let (in_both, moved_up, moved_down) = counts(conn, owner, id, &since_id).await?;
    let up = ups(conn, owner, id, &since_id, limit).await?;
    let largest: Vec<PairRow> = sqlx::query_as(&format!(
        "SELECT {PAIR} {JOIN} \
         ORDER BY ABS(c.probability_ppm - o.probability_ppm) DESC, c.customer_id LIMIT $4"
    ))
    .bind(id)
    .bind(&since_id)
    .bind(owner.as_str())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let new = only_in(conn, owner, id, &since_id, limit).await?;
    let disappeared = only_in(conn, owner, &since_id, id, limit).await?;
    Ok(Changes {
        prediction_id: id.to_owned(),
        since_prediction_id: since_id,
        counts: Counts {
            customers,
            since_customers,
            in_both,
            moved_up,
            moved_down,
            new: customers - in_both,
            disappeared: since_customers - in_both,
        },
        limit,
        moved_up: up,
        new,
        disappeared,
        largest_changes: largest.into_iter().map(moved).collect(),
    })
}

/// The join of this prediction's rows (`c`, `$1`) with the earlier one's (`o`, `$2`) by
/// customer id, for owner `$3`.
/// Parameters appear in order (`$1` first), as SQLite numbers them.
const JOIN: &str = "FROM customer_history c, customer_history o \
     WHERE c.prediction_id = $1 AND o.prediction_id = $2 AND c.owner_id = $3 \
     AND o.owner_id = $3 AND o.customer_id = c.customer_id";

/// Customers in both, moved up, moved down.
async fn counts(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    since_id: &str,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let (rc, ro) = (level_rank("c.risk_level"), level_rank("o.risk_level"));
    sqlx::query_as(&format!(
        "SELECT COUNT(*), \
         CAST(COALESCE(SUM(CASE WHEN {rc} > {ro} THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN {rc} < {ro} THEN 1 ELSE 0 END), 0) AS BIGINT) {JOIN}"
    ))
    .bind(id)
    .bind(since_id)
    .bind(owner.as_str())
    .fetch_one(&mut *conn)
    .await
}

/// The first `limit` customers that moved up a level, largest increase first.
async fn ups(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    since_id: &str,
    limit: i64,
) -> Result<Vec<Moved>, sqlx::Error> {
    let (rc, ro) = (level_rank("c.risk_level"), level_rank("o.risk_level"));
    let rows: Vec<PairRow> = sqlx::query_as(&format!(
        "SELECT {PAIR} {JOIN} AND {rc} > {ro} \
         ORDER BY c.probability_ppm - o.probability_ppm DESC, c.customer_id LIMIT $4"
    ))
    .bind(id)
    .bind(since_id)
    .bind(owner.as_str())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(moved).collect())
}

/// Customers of `a` not in `b`, highest probability first, at most `limit`.
async fn only_in(
    conn: &mut AnyConnection,
    owner: &Owner,
    a: &str,
    b: &str,
    limit: i64,
) -> Result<Vec<Seen>, sqlx::Error> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT c.customer_id, c.probability_ppm, c.risk_level FROM customer_history c \
         WHERE c.prediction_id = $1 AND c.owner_id = $2 AND NOT EXISTS (\
         SELECT 1 FROM customer_history o WHERE o.prediction_id = $3 AND o.owner_id = $2 \
         AND o.customer_id = c.customer_id) \
         ORDER BY c.probability_ppm DESC, c.customer_id LIMIT $4",
    )
    .bind(a)
    .bind(owner.as_str())
    .bind(b)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(customer_id, ppm, risk_level)| Seen {
            customer_id,
            churn_probability: probability(ppm),
            risk_level,
        })
        .collect())
}

/// The customers of prediction `id` that moved up a risk level since the owner's previous
/// completed prediction: the `customers.risk_increased` webhook event's data.
#[derive(Debug, Clone, Serialize)]
pub struct RiskIncrease {
    /// This prediction.
    pub prediction_id: String,
    /// The previous one it was compared with.
    pub since_prediction_id: String,
    /// How many customers moved up, in all.
    pub count: i64,
    /// The first of them (largest probability increase first), at most the limit.
    pub customers: Vec<Moved>,
    /// True when `customers` holds fewer than `count`.
    pub truncated: bool,
}

/// [`RiskIncrease`] for prediction `id`, at most `limit` customers listed; `None` when it has
/// no earlier prediction to compare with, or nobody moved up.
pub async fn risk_increases(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    limit: i64,
) -> Result<Option<RiskIncrease>, sqlx::Error> {
    let at = match run(conn, owner, id).await? {
        Some((_, at, None)) => at,
        _ => return Ok(None),
    };
    let Some(since_id) = previous_run(conn, owner, id, at).await? else {
        return Ok(None);
    };
    let (_, count, _) = counts(conn, owner, id, &since_id).await?;
    if count == 0 {
        return Ok(None);
    }
    let customers = ups(conn, owner, id, &since_id, limit).await?;
    Ok(Some(RiskIncrease {
        prediction_id: id.to_owned(),
        since_prediction_id: since_id,
        count,
        truncated: (customers.len() as i64) < count,
        customers,
    }))
}
