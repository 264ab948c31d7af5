//! The webhook kind: POST one event to one endpoint, signed by the Standard Webhooks
//! specification ([`crate::webhooks::signing`]). A delivery is a row of `webhook_deliveries`
//! (the lifecycle columns of every job) queued by [`enqueue_event`] in the transaction that
//! records the outcome (a dead-lettered
//! job's FAILED included), so an event is neither lost nor sent for an outcome that was not
//! recorded.
//!
//! Its id is the `webhook-id` header: the same on every retry and on a redrive, so a receiver
//! deduplicates by it. Its body is fixed when it is queued. A 2xx answer completes it; any
//! other answer, a refused address, a connection error or a timeout (10 s) is transient: the
//! driver retries it on the configured schedule (`RETAINWISE_WEBHOOK_RETRY_SCHEDULE`, Svix's
//! 8 attempts over about a day by default, [`RetryPolicy::Schedule`]) and dead-letters it after
//! the last attempt. The last HTTP status is kept on the row (`last_status_code`).

use std::time::Duration;

use retainwise_model::ScoreReport;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::AnyConnection;
use tracing::info;

use super::kind::{Checks, Events, Job, JobContext, LogId};
use super::{JobError, RetryPolicy};
use crate::app::App;
use crate::db::{JobRow, JobStatus, JobTable, Value as Column};
use crate::domain::OrgId;
use crate::time::now_ms;
use crate::webhooks::endpoints::{self, Event};
use crate::webhooks::{destination, signing};

/// The table of deliveries.
const TABLE: JobTable = JobTable::Named("webhook_deliveries");

/// How long a receiver has to answer, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The message of a delivery: which row to send, and its owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookMessage {
    /// The delivery's id, `msg_` + 32 hex digits.
    pub delivery_id: String,
    /// The owner of the endpoint and of the event.
    pub user_id: String,
}

/// One delivery of one event to one endpoint, validated.
pub struct WebhookDelivery {
    id: String,
    user: OrgId,
}

impl WebhookMessage {
    fn owner(&self) -> Option<(String, OrgId)> {
        let hex = self.delivery_id.strip_prefix("msg_")?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some((self.delivery_id.clone(), self.user_id.parse().ok()?))
    }
}

impl Job for WebhookDelivery {
    const KIND: &'static str = "webhook";
    const LOG_ID: LogId = LogId::Job;
    const EVENTS: Events = Events {
        started: "webhook_delivery_started",
        failed: "webhook_delivery_failed",
        status_updated: None,
    };
    type Payload = WebhookMessage;
    /// The receiver's HTTP status (2xx).
    type Output = u16;

    /// Svix's schedule by default, about a day (`RETAINWISE_WEBHOOK_RETRY_SCHEDULE`).
    fn retry(config: &crate::config::Config) -> RetryPolicy {
        RetryPolicy::Schedule(config.webhook_retry.clone())
    }

    fn validate(payload: WebhookMessage, _checks: &Checks<'_>) -> Result<Self, String> {
        let (id, user) = payload.owner().ok_or_else(|| {
            format!(
                "webhook message names delivery {:?} of user {:?}: expected msg_ + 32 hex digits \
                 and a valid user id",
                payload.delivery_id, payload.user_id
            )
        })?;
        Ok(Self { id, user })
    }

    fn record_named(payload: &WebhookMessage) -> Option<JobRow> {
        let (id, user) = payload.owner()?;
        Some(JobRow::new(TABLE, id, &user))
    }

    fn record(&self) -> JobRow {
        JobRow::new(TABLE, self.id.clone(), &self.user)
    }

    async fn run(&self, ctx: &JobContext) -> Result<u16, JobError> {
        let app = &ctx.app;
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT endpoint_id, body FROM webhook_deliveries WHERE id = $1 AND user_id = $2",
        )
        .bind(&self.id)
        .bind(self.user.as_str())
        .fetch_optional(app.db.pool())
        .await?;
        let (endpoint, body) = row.ok_or(JobError::Stopped)?;
        let target = endpoints::target(app.db.pool(), &self.user, &endpoint)
            .await?
            .filter(|t| t.enabled)
            .ok_or_else(|| {
                JobError::Rejected(format!(
                    "webhook endpoint {endpoint} was removed; the delivery is not sent"
                ))
            })?;
        let key = signing::decode_secret(&target.secret).map_err(JobError::Rejected)?;
        // Checked again now: what the host resolves to may have changed since registration,
        // and the connection goes only to the addresses that passed.
        let dest = destination::check(&target.url, app.config.webhook_allow_private)
            .await
            .map_err(JobError::Delivery)?;
        let mut client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("retainwise-webhooks/", env!("CARGO_PKG_VERSION")));
        if !dest.host.is_empty() {
            client = client.resolve_to_addrs(&dest.host, &dest.addrs);
        }
        let client = client
            .build()
            .map_err(|e| JobError::Delivery(format!("building the HTTP client: {e}")))?;
        let timestamp = now_ms() / 1000;
        let response = client
            .post(dest.url)
            .header("content-type", "application/json")
            .header("webhook-id", &self.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signing::sign(&key, &self.id, timestamp, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                // Without the URL: it may carry the receiver's basic-auth password.
                JobError::Delivery(format!(
                    "POST to webhook endpoint {endpoint} failed: {}",
                    crate::error_chain::Chain(&e.without_url())
                ))
            })?;
        let code = response.status().as_u16();
        if !response.status().is_success() {
            // Kept for the owner's deliveries page and for a delivery that ends dead-lettered;
            // a success records its code with COMPLETED (`completed_columns`).
            sqlx::query(
                "UPDATE webhook_deliveries SET last_status_code = $1 \
                 WHERE id = $2 AND lease_token = $3 AND status = 'RUNNING'",
            )
            .bind(i64::from(code))
            .bind(&self.id)
            .bind(ctx.lease.as_str())
            .execute(app.db.pool())
            .await?;
            return Err(JobError::Delivery(format!(
                "webhook endpoint {endpoint} answered HTTP {code}"
            )));
        }
        Ok(code)
    }

    fn completed_columns(&self, code: &u16) -> Vec<(&'static str, Column)> {
        vec![("last_status_code", Column::Int(i64::from(*code)))]
    }

    fn log_completed(&self, code: &u16, took: Duration) {
        info!(job_id = %self.id, kind = Self::KIND, status_code = code, duration_ms = took.as_millis() as u64, "webhook_delivered");
    }
}

/// What an event is about: the job kind whose outcome it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A prediction: `prediction.completed` / `prediction.failed`.
    Prediction,
    /// A training: `training.completed` / `training.failed`.
    Training,
}

/// Queues one delivery of job `id`'s outcome per endpoint of its owner that wants the event, on
/// `conn` (the transaction that records `status`; only COMPLETED and FAILED send an event). The
/// body, `{"type", "timestamp" (RFC 3339), "data"}`, is read from the job's row as that
/// transaction sees it and fixed now: for a prediction its id, status, counts, the summary's
/// figures (risk counts, mean probability, model, reference date) and the absolute results URL
/// (COMPLETED); for a training its id, status, name and the model it registered (COMPLETED).
/// Never a customer row nor the error text (it may quote one; the owner reads it through the
/// API).
pub async fn enqueue_event(
    app: &App,
    conn: &mut AnyConnection,
    subject: Subject,
    id: &str,
    user: &OrgId,
    status: JobStatus,
) -> Result<(), sqlx::Error> {
    let event = match (subject, status) {
        (Subject::Prediction, JobStatus::Completed) => Event::PredictionCompleted,
        (Subject::Prediction, JobStatus::Failed) => Event::PredictionFailed,
        (Subject::Training, JobStatus::Completed) => Event::TrainingCompleted,
        (Subject::Training, JobStatus::Failed) => Event::TrainingFailed,
        _ => return Ok(()),
    };
    let targets = endpoints::wanting(&mut *conn, user, event).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let completed = status == JobStatus::Completed;
    let data = match subject {
        Subject::Prediction => prediction_data(app, conn, id, user, status).await?,
        Subject::Training => {
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT name, model_id FROM model_trainings WHERE id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user.as_str())
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|(name, model_id)| {
                json!({
                    "training_id": id,
                    "status": status,
                    "name": name,
                    "model_id": if completed { model_id } else { None },
                })
            })
        }
    };
    let Some(data) = data else {
        return Ok(());
    };
    let body = json!({
        "type": event.as_str(),
        "timestamp": crate::time::rfc3339(now_ms()),
        "data": data,
    })
    .to_string();
    for endpoint in targets {
        enqueue_delivery(app, conn, user, &endpoint, event, id, &body).await?;
    }
    Ok(())
}

/// Queues a `usage.threshold` event for each endpoint of `org` that wants it, on `conn` (the
/// transaction that metered the rows): `data` is `{"percent", "month", "rows_scored", "quota",
/// "resets_on"}`; its subject id is `usage:{month}:{percent}`.
pub async fn enqueue_usage_event(
    app: &App,
    conn: &mut AnyConnection,
    org: &OrgId,
    threshold: &crate::db::usage::Threshold,
) -> Result<(), sqlx::Error> {
    let event = Event::UsageThreshold;
    let targets = endpoints::wanting(&mut *conn, org, event).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let body = json!({
        "type": event.as_str(),
        "timestamp": crate::time::rfc3339(now_ms()),
        "data": threshold,
    })
    .to_string();
    let subject = format!("usage:{}:{}", threshold.month, threshold.percent);
    for endpoint in targets {
        enqueue_delivery(app, conn, org, &endpoint, event, &subject, &body).await?;
    }
    Ok(())
}

/// Customers listed at most in a `customers.risk_increased` event; `count` gives them all.
pub const RISK_INCREASED_LISTED: i64 = 100;

/// Queues one `customers.risk_increased` delivery per endpoint of organisation `user` that wants it, on
/// `conn` (the transaction that records prediction `id` COMPLETED), when some of its customers
/// are at a higher risk level than in the owner's previous completed prediction
/// ([`crate::history::risk_increases`]). Its `data`: `prediction_id`, `since_prediction_id`,
/// `count` (all who moved up), `customers` (the first [`RISK_INCREASED_LISTED`], largest
/// probability increase first: `customer_id`, old and new `risk_level` and
/// `churn_probability`) and `truncated`. Nothing is queued when nobody moved up.
pub async fn enqueue_risk_increased(
    app: &App,
    conn: &mut AnyConnection,
    id: &str,
    user: &OrgId,
) -> Result<(), sqlx::Error> {
    let event = Event::CustomersRiskIncreased;
    let targets = endpoints::wanting(&mut *conn, user, event).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let owner = crate::history::Owner::of(user);
    let Some(up) =
        crate::history::risk_increases(&mut *conn, &owner, id, RISK_INCREASED_LISTED).await?
    else {
        return Ok(());
    };
    let customers: Vec<Value> = up
        .customers
        .iter()
        .map(|c| {
            json!({
                "customer_id": c.customer_id,
                "old_risk_level": c.old_risk_level,
                "new_risk_level": c.new_risk_level,
                "old_churn_probability": c.old_churn_probability,
                "new_churn_probability": c.new_churn_probability,
            })
        })
        .collect();
    let body = json!({
        "type": event.as_str(),
        "timestamp": crate::time::rfc3339(now_ms()),
        "data": {
            "prediction_id": up.prediction_id,
            "since_prediction_id": up.since_prediction_id,
            "count": up.count,
            "customers": customers,
            "truncated": up.truncated,
        },
    })
    .to_string();
    for endpoint in targets {
        enqueue_delivery(app, conn, user, &endpoint, event, id, &body).await?;
    }
    Ok(())
}

/// The `data` of a prediction's event, `None` when its row is absent.
async fn prediction_data(
    app: &App,
    conn: &mut AnyConnection,
    id: &str,
    user: &OrgId,
    status: JobStatus,
) -> Result<Option<Value>, sqlx::Error> {
    let row: Option<(Option<i64>, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT rows_total, rows_processed, rows_rejected, summary FROM predictions \
         WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((rows_total, rows_scored, rows_rejected, summary)) = row else {
        return Ok(None);
    };
    let completed = status == JobStatus::Completed;
    let figures = match summary.as_deref().map(serde_json::from_str::<ScoreReport>) {
        Some(Ok(s)) if completed => json!({
            "risk_counts": s.risk_counts,
            "mean_churn_probability": s.mean_churn_probability,
            "rows_skipped_empty": s.rows_skipped_empty,
            "model_id": s.model_id,
            "reference_date": s.reference_date,
        }),
        _ => Value::Null,
    };
    // Absolute or absent, never relative: registration requires RETAINWISE_PUBLIC_URL, so it
    // is absent only when the operator removed it since.
    let results_url = app
        .config
        .http
        .public_origin
        .as_ref()
        .filter(|_| completed)
        .map(|origin| format!("{origin}/api/predictions/{id}/results"));
    Ok(Some(json!({
        "prediction_id": id,
        "status": status,
        "rows_total": rows_total,
        // A prediction that did not complete stored no result: the progress of a killed or
        // stopped attempt is not a count of scored customers.
        "rows_scored": if completed { rows_scored } else { 0 },
        "rows_rejected": rows_rejected,
        "summary": figures,
        "results_url": results_url,
    })))
}

/// Inserts one QUEUED delivery and sends its message, both on `conn`.
async fn enqueue_delivery(
    app: &App,
    conn: &mut AnyConnection,
    user: &OrgId,
    endpoint: &str,
    event: Event,
    subject: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let now = now_ms();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, user_id, endpoint_id, event, subject_id, body, \
         status, attempt, queued_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'QUEUED', 0, $7, $7)",
    )
    .bind(&id)
    .bind(user.as_str())
    .bind(endpoint)
    .bind(event.as_str())
    .bind(subject)
    .bind(body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let message = WebhookMessage {
        delivery_id: id.clone(),
        user_id: user.as_str().to_owned(),
    };
    super::enqueue::<WebhookDelivery>(app, conn, &message, retainwise_queue::Priority::Normal)
        .await
        .map_err(|e| match e {
            retainwise_queue::QueueError::Database(e) => e,
            other => sqlx::Error::Protocol(format!("queueing a webhook delivery: {other}")),
        })?;
    info!(job_id = %id, kind = WebhookDelivery::KIND, event = event.as_str(), endpoint_id = %endpoint, "webhook_delivery_queued");
    Ok(())
}
