//! A user's webhook endpoints (`webhook_endpoints`): the URL, the events it wants and its
//! signing secret. Every query takes the owner, so another user's endpoint is never seen.

use serde::Serialize;
use sqlx::{Any, Executor};

use crate::domain::OrgId;
use crate::time::now_ms;

/// An event a webhook can be sent for; its name is the `type` of the delivery's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Event {
    /// `prediction.completed`: a prediction's results are ready.
    #[serde(rename = "prediction.completed")]
    PredictionCompleted,
    /// `prediction.failed`: a prediction ended FAILED.
    #[serde(rename = "prediction.failed")]
    PredictionFailed,
    /// `training.completed`: a training registered its model.
    #[serde(rename = "training.completed")]
    TrainingCompleted,
    /// `training.failed`: a training ended FAILED.
    #[serde(rename = "training.failed")]
    TrainingFailed,
    /// `usage.threshold`: the organisation's rows scored this month reached 80 % or 100 % of
    /// its quota (each once a month).
    #[serde(rename = "usage.threshold")]
    UsageThreshold,
    /// `customers.risk_increased`: a completed prediction has customers at a higher risk level
    /// than in the owner's previous one (`crate::history`).
    #[serde(rename = "customers.risk_increased")]
    CustomersRiskIncreased,
}

impl Event {
    /// Every event, in the order the API lists them.
    pub const ALL: [Event; 6] = [
        Event::PredictionCompleted,
        Event::PredictionFailed,
        Event::TrainingCompleted,
        Event::TrainingFailed,
        Event::UsageThreshold,
        Event::CustomersRiskIncreased,
    ];

    /// The event's name, e.g. `prediction.completed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PredictionCompleted => "prediction.completed",
            Self::PredictionFailed => "prediction.failed",
            Self::TrainingCompleted => "training.completed",
            Self::TrainingFailed => "training.failed",
            Self::UsageThreshold => "usage.threshold",
            Self::CustomersRiskIncreased => "customers.risk_increased",
        }
    }

    /// The event named `name`.
    ///
    /// Errors: a sentence naming the value and the names expected.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown webhook event {name:?}; expected one of {}",
                    Self::ALL.map(Event::as_str).join(", ")
                )
            })
    }
}

/// One registered endpoint, as its owner sees it (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// `we_` + 32 hex digits.
    pub id: String,
    /// Where deliveries are POSTed, a user name and password in it shown as `***`.
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// Registration time, Unix milliseconds (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub created_at: i64,
}

/// An endpoint with its secret, for signing a delivery.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where deliveries are POSTed.
    pub url: String,
    /// The `whsec_…` secret.
    pub secret: String,
    /// False once its owner removed it.
    pub enabled: bool,
}

/// Registers an endpoint for `user`; returns its id. `events` must be checked already (see
/// [`Event::parse`]), `secret` made by [`super::signing::new_secret`].
pub async fn insert<'c, E: Executor<'c, Database = Any>>(
    db: E,
    user: &OrgId,
    url: &str,
    events: &[Event],
    secret: &str,
) -> Result<String, sqlx::Error> {
    let id = format!("we_{}", uuid::Uuid::new_v4().simple());
    let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, user_id, url, events, secret, created_at, disabled) \
         VALUES ($1, $2, $3, $4, $5, $6, 0)",
    )
    .bind(&id)
    .bind(user.as_str())
    .bind(url)
    .bind(events.join(","))
    .bind(secret)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(id)
}

/// `user`'s endpoints that are not removed, oldest first.
pub async fn list<'c, E: Executor<'c, Database = Any>>(
    db: E,
    user: &OrgId,
) -> Result<Vec<Endpoint>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, url, events, created_at FROM webhook_endpoints \
         WHERE user_id = $1 AND disabled = 0 ORDER BY created_at, id",
    )
    .bind(user.as_str())
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, url, events, created_at)| Endpoint {
            id,
            url: super::destination::redacted(&url),
            events: split(&events).map(str::to_owned).collect(),
            created_at,
        })
        .collect())
}

/// Removes (disables) `user`'s endpoint `id`: no delivery is sent to it any more. False when
/// `user` has no such endpoint (also another user's).
pub async fn remove<'c, E: Executor<'c, Database = Any>>(
    db: E,
    user: &OrgId,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET disabled = 1 WHERE id = $1 AND user_id = $2 AND disabled = 0",
    )
    .bind(id)
    .bind(user.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The ids of `user`'s endpoints that want `event`.
pub async fn wanting<'c, E: Executor<'c, Database = Any>>(
    db: E,
    user: &OrgId,
    event: Event,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, events FROM webhook_endpoints WHERE user_id = $1 AND disabled = 0 \
         ORDER BY created_at, id",
    )
    .bind(user.as_str())
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, events)| split(events).any(|e| e == event.as_str()))
        .map(|(id, _)| id)
        .collect())
}

/// Endpoint `id` of `user` with its secret, removed or not; `None` when absent.
pub async fn target<'c, E: Executor<'c, Database = Any>>(
    db: E,
    user: &OrgId,
    id: &str,
) -> Result<Option<Target>, sqlx::Error> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT url, secret, disabled FROM webhook_endpoints WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user.as_str())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(url, secret, disabled)| Target {
        url,
        secret,
        enabled: disabled == 0,
    }))
}

fn split(events: &str) -> impl Iterator<Item = &str> {
    events.split(',').filter(|e| !e.is_empty())
}

/// One delivery of an endpoint, as its owner sees it (never the body's secret-derived headers).
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    /// `msg_` + 32 hex digits: the `webhook-id` header, the same on every attempt.
    pub id: String,
    /// The event, e.g. `prediction.completed`.
    pub event: String,
    /// The prediction or training the event is about.
    pub subject_id: String,
    /// QUEUED, RUNNING, COMPLETED (a 2xx answer) or FAILED.
    pub status: String,
    /// Attempts started.
    pub attempt: i64,
    /// The receiver's last HTTP status, if it answered.
    pub last_status_code: Option<i64>,
    /// Why the last attempt did not succeed (the status, a timeout, a refused address), in
    /// words; absent once delivered.
    pub error: Option<String>,
    /// When the delivery gave up after its retries (Unix ms; RFC 3339 in JSON); a redrive
    /// sends it again.
    #[serde(serialize_with = "crate::time::serialize_rfc3339_opt")]
    pub dead_lettered_at: Option<i64>,
    /// Queued at, Unix ms (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub queued_at: i64,
}

/// The latest `limit` deliveries of `user`'s endpoint `id`, newest first; `None` when `user`
/// has no such endpoint, or removed it (its deliveries go with it, as far as its owner sees).
pub async fn deliveries(
    db: &sqlx::AnyPool,
    user: &OrgId,
    id: &str,
    limit: i64,
) -> Result<Option<Vec<DeliveryRow>>, sqlx::Error> {
    if !target(db, user, id).await?.is_some_and(|t| t.enabled) {
        return Ok(None);
    }
    type Row = (
        String,
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<String>,
        Option<i64>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, event, subject_id, status, attempt, last_status_code, error_message, \
         dead_lettered_at, queued_at FROM webhook_deliveries WHERE endpoint_id = $1 AND user_id = $2 \
         ORDER BY queued_at DESC, id LIMIT $3",
    )
    .bind(id)
    .bind(user.as_str())
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(Some(
        rows.into_iter()
            .map(
                |(
                    id,
                    event,
                    subject_id,
                    status,
                    attempt,
                    last_status_code,
                    error,
                    dead_lettered_at,
                    queued_at,
                )| {
                    DeliveryRow {
                        id,
                        event,
                        subject_id,
                        status,
                        attempt,
                        last_status_code,
                        error,
                        dead_lettered_at,
                        queued_at,
                    }
                },
            )
            .collect(),
    ))
}

/// The queue message of `user`'s delivery `delivery` to endpoint `endpoint` (not removed):
/// `None` when there is no such delivery, `Some(None)` when it is not dead-lettered (nothing to
/// redrive), else `Some(Some(message id))`.
pub async fn dead_delivery_message(
    db: &sqlx::AnyPool,
    user: &OrgId,
    endpoint: &str,
    delivery: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    if !target(db, user, endpoint).await?.is_some_and(|t| t.enabled) {
        return Ok(None);
    }
    let row: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT queue_message_id, dead_lettered_at FROM webhook_deliveries \
         WHERE id = $1 AND endpoint_id = $2 AND user_id = $3",
    )
    .bind(delivery)
    .bind(endpoint)
    .bind(user.as_str())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(message, dead)| message.filter(|_| dead.is_some())))
}
