//! What changed for the customers between two completed predictions of one owner: who moved
//! up (or down) a risk level, who is new, who disappeared (left the file), and the largest
//! probability changes, each with the driver whose effect changed most.
//!
//! Customers are matched by customer id in one pass: both predictions' rows are read in
//! customer-id order (the primary key's index), so a customer's two rows arrive together, and
//! every count is exact while each list keeps only its best `limit` so far (a bounded heap):
//! memory is O(`limit`) and the database does one ordered read, whatever the files' sizes. The
//! drivers are then read for the listed customers only. Ties are broken by customer id compared
//! as bytes, the same on every database.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::drivers::{most_changed, parse, DriverChange};
use super::{probability, Owner};

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seen {
    /// The customer id.
    pub customer_id: String,
    /// Churn probability 0–1 in the prediction that scored it.
    pub churn_probability: f64,
    /// Risk level there.
    pub risk_level: String,
}

/// Exact counts of a comparison.
#[derive(Debug, Clone, Copy, Serialize, Default, Deserialize)]
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
    /// Rows of this prediction not remembered, so not compared: their customer ids are longer
    /// than [`crate::history::MAX_ID_BYTES`] bytes.
    #[serde(default)]
    pub not_remembered: i64,
}

/// The comparison of prediction `prediction_id` with `since_prediction_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
) -> Result<Option<(i64, i64, Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.customers, r.scored_at, r.note, r.not_remembered FROM customer_runs r \
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
) -> Result<(i64, i64, i64), NoComparison> {
    match run(conn, owner, id).await? {
        Some((customers, at, None, skipped)) => Ok((customers, at, skipped)),
        Some((_, _, Some(note), _)) => Err(NoComparison::NotRemembered(format!(
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

/// The `limit` best items by `K` (smallest first), kept in a max-heap of at most `limit`.
struct Best<K: Ord, T> {
    heap: BinaryHeap<(K, Slot<T>)>,
    limit: usize,
}

/// An item that never takes part in the ordering (keys are unique: they end with the id).
struct Slot<T>(T);

impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<K: Ord, T> Best<K, T> {
    fn new(limit: usize) -> Self {
        Best {
            heap: BinaryHeap::with_capacity(limit + 1),
            limit,
        }
    }

    /// Offers an item; `key` is only built when it may be kept.
    fn offer(&mut self, key: K, item: impl FnOnce() -> T) {
        if self.heap.len() == self.limit {
            match self.heap.peek() {
                Some((worst, _)) if key < *worst => {}
                _ => return,
            }
        }
        self.heap.push((key, Slot(item())));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    fn sorted(self) -> Vec<T> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|(_, s)| s.0)
            .collect()
    }
}

/// One customer's row: id, probability in millionths, level.
#[derive(Clone)]
struct Side {
    id: String,
    ppm: i64,
    level: String,
}

/// A customer in both: the earlier row and this one.
type Pair = (Side, Side);

fn rank(level: &str) -> u8 {
    match level {
        "high" => 2,
        "medium" => 1,
        _ => 0,
    }
}

/// What one pass over both predictions found.
struct Pass {
    counts: Counts,
    moved_up: Vec<Pair>,
    largest: Vec<Pair>,
    new: Vec<Side>,
    disappeared: Vec<Side>,
}

/// Reads the rows of `id` and `since_id` in customer-id order and compares them in one pass.
async fn pass(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    since_id: &str,
    limit: usize,
) -> Result<Pass, sqlx::Error> {
    let mut counts = Counts::default();
    let mut up: Best<(Reverse<i64>, String), Pair> = Best::new(limit);
    let mut largest: Best<(Reverse<i64>, String), Pair> = Best::new(limit);
    let mut new: Best<(Reverse<i64>, String), Side> = Best::new(limit);
    let mut gone: Best<(Reverse<i64>, String), Side> = Best::new(limit);
    let mut alone = |counts: &mut Counts, current: bool, side: Side| {
        let key = (Reverse(side.ppm), side.id.clone());
        if current {
            counts.new += 1;
            new.offer(key, || side);
        } else {
            counts.disappeared += 1;
            gone.offer(key, || side);
        }
    };
    {
        let mut rows = sqlx::query_as::<_, (String, String, i64, String)>(
            "SELECT prediction_id, customer_id, probability_ppm, risk_level FROM customer_history \
             WHERE owner_id = $1 AND prediction_id IN ($2, $3) ORDER BY customer_id",
        )
        .bind(owner.as_str())
        .bind(id)
        .bind(since_id)
        .fetch(&mut *conn);
        // A row waiting for its customer's other row: (is it this prediction's, the row).
        let mut pending: Option<(bool, Side)> = None;
        while let Some((prediction, customer_id, ppm, level)) = rows.try_next().await? {
            let current = prediction == id;
            let side = Side {
                id: customer_id,
                ppm,
                level,
            };
            match pending.take() {
                Some((was_current, first)) if first.id == side.id && was_current != current => {
                    let (old, now) = if current {
                        (first, side)
                    } else {
                        (side, first)
                    };
                    counts.in_both += 1;
                    let delta = now.ppm - old.ppm;
                    match rank(&now.level).cmp(&rank(&old.level)) {
                        std::cmp::Ordering::Greater => {
                            counts.moved_up += 1;
                            up.offer((Reverse(delta), now.id.clone()), || {
                                (old.clone(), now.clone())
                            });
                        }
                        std::cmp::Ordering::Less => counts.moved_down += 1,
                        std::cmp::Ordering::Equal => {}
                    }
                    largest.offer((Reverse(delta.abs()), now.id.clone()), || (old, now));
                }
                Some((was_current, first)) => {
                    alone(&mut counts, was_current, first);
                    pending = Some((current, side));
                }
                None => pending = Some((current, side)),
            }
        }
        if let Some((was_current, first)) = pending {
            alone(&mut counts, was_current, first);
        }
    }
    Ok(Pass {
        counts,
        moved_up: up.sorted(),
        largest: largest.sorted(),
        new: new.sorted(),
        disappeared: gone.sorted(),
    })
}

/// The stored drivers of `customers` in predictions `id` and `since_id`: (prediction,
/// customer) → drivers JSON. Read in batches of 400 ids.
async fn drivers_of(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    since_id: &str,
    customers: &[&str],
) -> Result<HashMap<(bool, String), String>, sqlx::Error> {
    let mut out = HashMap::new();
    for chunk in customers.chunks(400) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT prediction_id, customer_id, drivers FROM customer_history \
             WHERE owner_id = $1 AND prediction_id IN ($2, $3) AND customer_id IN ({})",
            marks.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(&sql)
            .bind(owner.as_str())
            .bind(id)
            .bind(since_id);
        for c in chunk {
            query = query.bind(*c);
        }
        for (prediction, customer, drivers) in query.fetch_all(&mut *conn).await? {
            out.insert((prediction == id, customer), drivers);
        }
    }
    Ok(out)
}

/// Pairs made into [`Moved`], with the driver that changed most from the stored drivers.
async fn moved(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    since_id: &str,
    lists: [Vec<Pair>; 2],
) -> Result<[Vec<Moved>; 2], sqlx::Error> {
    let mut ids: Vec<&str> = lists.iter().flatten().map(|(_, n)| n.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let drivers = drivers_of(conn, owner, id, since_id, &ids).await?;
    let read = |current: bool, customer: &str| {
        drivers
            .get(&(current, customer.to_owned()))
            .map(|d| parse(d))
            .unwrap_or_default()
    };
    Ok(lists.map(|list| {
        list.into_iter()
            .map(|(old, now)| Moved {
                driver: most_changed(&read(false, &now.id), &read(true, &now.id)),
                change: probability(now.ppm - old.ppm),
                old_churn_probability: probability(old.ppm),
                new_churn_probability: probability(now.ppm),
                old_risk_level: old.level,
                new_risk_level: now.level,
                customer_id: now.id,
            })
            .collect()
    }))
}

fn seen(list: Vec<Side>) -> Vec<Seen> {
    list.into_iter()
        .map(|s| Seen {
            churn_probability: probability(s.ppm),
            risk_level: s.level,
            customer_id: s.id,
        })
        .collect()
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
    let (customers, at, not_remembered) = comparable(conn, owner, id).await?;
    let since_id = match since {
        Since::Prediction(s) => s.clone(),
        Since::Previous => previous_run(conn, owner, id, at).await?.ok_or_else(|| {
            NoComparison::NoEarlier(format!(
                "prediction {id} is your first with remembered customers: there is no \
                 earlier one to compare with"
            ))
        })?,
    };
    let (since_customers, _, _) = comparable(conn, owner, &since_id).await?;
    if let Some(kept) = kept(conn, owner, id, &since_id, limit).await? {
        return Ok(kept);
    }
    let p = pass(
        conn,
        owner,
        id,
        &since_id,
        usize::try_from(limit).unwrap_or(0),
    )
    .await?;
    let [moved_up, largest_changes] =
        moved(conn, owner, id, &since_id, [p.moved_up, p.largest]).await?;
    let changes = Changes {
        prediction_id: id.to_owned(),
        since_prediction_id: since_id,
        counts: Counts {
            customers,
            since_customers,
            not_remembered,
            ..p.counts
        },
        limit,
        moved_up,
        new: seen(p.new),
        disappeared: seen(p.disappeared),
        largest_changes,
    };
    keep(conn, owner, &changes).await?;
    Ok(changes)
}

/// A comparison made before (`customer_changes`): both predictions are COMPLETED, so it still
/// holds. `None` when there is none, or it no longer reads (it is then made again).
async fn kept(
    conn: &mut AnyConnection,
    owner: &Owner,
    id: &str,
    since_id: &str,
    limit: i64,
) -> Result<Option<Changes>, sqlx::Error> {
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body FROM customer_changes WHERE prediction_id = $1 \
         AND since_prediction_id = $2 AND list_limit = $3 AND owner_id = $4",
    )
    .bind(id)
    .bind(since_id)
    .bind(limit)
    .bind(owner.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
}

/// Keeps a comparison for the next request (a concurrent one may have kept it first).
async fn keep(conn: &mut AnyConnection, owner: &Owner, c: &Changes) -> Result<(), sqlx::Error> {
    let Ok(body) = serde_json::to_string(c) else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO customer_changes (prediction_id, since_prediction_id, list_limit, owner_id, \
         body, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (prediction_id, since_prediction_id, list_limit) DO NOTHING",
    )
    .bind(&c.prediction_id)
    .bind(&c.since_prediction_id)
    .bind(c.limit)
    .bind(owner.as_str())
    .bind(body)
    .bind(crate::time::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        Some((_, at, None, _)) => at,
        _ => return Ok(None),
    };
    let Some(since_id) = previous_run(conn, owner, id, at).await? else {
        return Ok(None);
    };
    let p = pass(
        conn,
        owner,
        id,
        &since_id,
        usize::try_from(limit).unwrap_or(0),
    )
    .await?;
    let count = p.counts.moved_up;
    if count == 0 {
        return Ok(None);
    }
    let [customers, _] = moved(conn, owner, id, &since_id, [p.moved_up, Vec::new()]).await?;
    Ok(Some(RiskIncrease {
        prediction_id: id.to_owned(),
        since_prediction_id: since_id,
        count,
        truncated: (customers.len() as i64) < count,
        customers,
    }))
}
