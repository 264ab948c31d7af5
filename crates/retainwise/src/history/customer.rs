//! One customer's runs: every completed prediction of the owner that scored this customer id,
//! oldest first.

use serde::Serialize;
use sqlx::AnyConnection;

use super::drivers::{parse, Driver};
use super::{probability, Owner};

/// One run of one customer.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerRun {
    /// The prediction that scored the customer.
    pub prediction_id: String,
    /// The uploaded file's name.
    pub filename: String,
    /// The model that scored the row.
    pub model_id: String,
    /// Churn probability 0–1 (6 decimals, as the results wrote it).
    pub churn_probability: f64,
    /// `high`, `medium` or `low`.
    pub risk_level: String,
    /// When the run's customers were recorded, Unix milliseconds (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub scored_at: i64,
    /// Up to three risk drivers then up to three protective factors, as the results listed
    /// them (none for a prediction scored without explanations).
    pub drivers: Vec<Driver>,
}

/// A customer's runs, the latest `runs.len()` of `total`, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerRuns {
    /// The customer id as given in the files.
    pub customer_id: String,
    /// Completed predictions that scored this customer, in all.
    pub total: i64,
    /// The latest of them (at most the limit asked for), oldest first.
    pub runs: Vec<CustomerRun>,
}

/// The latest `limit` completed runs of `customer_id` for `owner`, oldest first; `total`
/// counts them all (0: the owner never scored this customer).
pub async fn customer_runs(
    conn: &mut AnyConnection,
    owner: &Owner,
    customer_id: &str,
    limit: i64,
) -> Result<CustomerRuns, sqlx::Error> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM customer_history h \
         JOIN predictions p ON p.id = h.prediction_id AND p.status = 'COMPLETED' \
         WHERE h.owner_id = $1 AND h.customer_id = $2",
    )
    .bind(owner.as_str())
    .bind(customer_id)
    .fetch_one(&mut *conn)
    .await?;
    type Raw = (String, String, String, i64, String, String, i64);
    let rows: Vec<Raw> = sqlx::query_as(
        "SELECT h.prediction_id, u.filename, h.model_id, h.probability_ppm, h.risk_level, \
         h.drivers, h.scored_at FROM customer_history h \
         JOIN predictions p ON p.id = h.prediction_id AND p.status = 'COMPLETED' \
         JOIN uploads u ON u.id = p.upload_id \
         WHERE h.owner_id = $1 AND h.customer_id = $2 \
         ORDER BY h.scored_at DESC, h.prediction_id DESC LIMIT $3",
    )
    .bind(owner.as_str())
    .bind(customer_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut runs: Vec<CustomerRun> = rows
        .into_iter()
        .map(
            |(prediction_id, filename, model_id, ppm, risk_level, drivers, scored_at)| {
                CustomerRun {
                    prediction_id,
                    filename,
                    model_id,
                    churn_probability: probability(ppm),
                    risk_level,
                    scored_at,
                    drivers: parse(&drivers),
                }
            },
        )
        .collect();
    runs.reverse();
    Ok(CustomerRuns {
        customer_id: customer_id.to_owned(),
        total,
        runs,
    })
}
