//! The outbox relay: publishes rows that `send_in` wrote in the caller's transaction.
//!
//! One task per [`super::SqsQueue`]. It claims up to 10 pending rows at a time (a claim is a
//! 30-second lease on the row, so relays in several processes do not publish the same row at the
//! same time), publishes them with SendMessageBatch, marks the successes published and schedules
//! each failure again after [`crate::backoff`]. A relay that dies between the publish and the
//! mark publishes the row again after the claim runs out: delivery is at-least-once, and
//! consumers are idempotent by contract.

use super::{attributes, now_ms, sqs_error, Shared};
use crate::{backoff, Priority, QueueError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use sqlx::Row;
use std::time::Duration;

/// SendMessageBatch takes at most 10 entries (SQS Developer Guide, "Amazon SQS batch actions").
const BATCH: usize = 10;
/// How long a claimed row is reserved for the relay that claimed it.
const CLAIM: Duration = Duration::from_secs(30);
/// A batch request may carry at most 1 MiB in total; stay well under it (attributes count too).
const BATCH_BYTES: usize = 900 * 1024;
/// How often to look for rows other processes left (their relay died, or their wake-up is ours
/// to miss). Sends in this process wake the relay at once.
pub(super) const POLL: Duration = Duration::from_secs(1);
/// Retry delays for failed publishes.
const RETRY_BASE: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// A claimed outbox row.
pub(super) struct Pending {
    pub id: String,
    pub body: String,
    pub priority: Priority,
    pub attempts: u32,
}

/// Runs until the queue is dropped (the task is aborted then).
pub(super) async fn run(shared: std::sync::Arc<Shared>) {
    loop {
        // Register before looking, so a wake-up during the publish is not lost.
        let woken = shared.relay_wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match publish_pending(&shared).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(queue = %shared.queue_url, error = %e, "outbox relay failed; retrying")
            }
        }
        let mut wait = POLL;
        if let Ok(Some(at)) = next_attempt_in(&shared).await {
            // A floor, so a row that stays due (its claim keeps failing) cannot spin the loop.
            wait = wait.min(at.max(Duration::from_millis(50)));
        }
        tokio::select! {
            _ = &mut woken => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Claims and publishes one batch of due rows. Returns how many were claimed.
pub(super) async fn publish_pending(shared: &Shared) -> Result<usize, QueueError> {
    let now = now_ms();
    let rows = sqlx::query(&shared.sql.claim_outbox)
        .bind(&shared.queue_url)
        .bind(now)
        .bind(now + super::millis(CLAIM))
        .bind(BATCH as i64)
        .fetch_all(&shared.pool)
        .await?;
    let pending = rows
        .iter()
        .map(|row| {
            Ok(Pending {
                id: row.try_get(0)?,
                body: row.try_get(1)?,
                priority: super::priority_from_sql(row.try_get(2)?),
                attempts: u32::try_from(row.try_get::<i64, _>(3)?.max(0)).unwrap_or(u32::MAX),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let claimed = pending.len();
    publish(shared, pending).await?;
    Ok(claimed)
}

/// Publishes claimed rows in size-bounded batches and records each outcome.
pub(super) async fn publish(shared: &Shared, pending: Vec<Pending>) -> Result<(), QueueError> {
    let mut batch: Vec<Pending> = Vec::new();
    let mut bytes = 0;
    for p in pending {
        let size = p.body.len() + 256;
        if !batch.is_empty() && bytes + size > BATCH_BYTES {
            send_batch(shared, std::mem::take(&mut batch)).await?;
            bytes = 0;
        }
        bytes += size;
        batch.push(p);
    }
    if !batch.is_empty() {
        send_batch(shared, batch).await?;
    }
    Ok(())
}

async fn send_batch(shared: &Shared, batch: Vec<Pending>) -> Result<(), QueueError> {
    let mut request = shared
        .client
        .send_message_batch()
        .queue_url(&shared.queue_url);
    for (i, p) in batch.iter().enumerate() {
        let entry = SendMessageBatchRequestEntry::builder()
            .id(i.to_string())
            .message_body(attributes::wire_body(&p.body))
            .set_message_attributes(Some(attributes::outgoing(&p.id, p.priority, &p.body)))
            .build()
            .map_err(|e| sqs_error("SendMessageBatch", e))?;
        request = request.entries(entry);
    }
    let failed: Vec<usize> = match request.send().await {
        Ok(out) => {
            for ok in &out.successful {
                if let Some(p) = ok.id.parse::<usize>().ok().and_then(|i| batch.get(i)) {
                    sqlx::query(&shared.sql.mark_published)
                        .bind(&p.id)
                        .bind(now_ms())
                        .execute(&shared.pool)
                        .await?;
                }
            }
            out.failed
                .iter()
                .filter_map(|f| {
                    tracing::warn!(code = %f.code, message = ?f.message, "outbox publish refused");
                    f.id.parse().ok()
                })
                .collect()
        }
        Err(e) => {
            tracing::warn!(error = %sqs_error("SendMessageBatch", e), "outbox publish failed");
            (0..batch.len()).collect()
        }
    };
    for i in failed {
        let Some(p) = batch.get(i) else { continue };
        let delay = backoff(p.attempts.saturating_add(1), RETRY_BASE, RETRY_MAX);
        sqlx::query(&shared.sql.publish_failed)
            .bind(&p.id)
            .bind(now_ms() + super::millis(delay))
            .execute(&shared.pool)
            .await?;
    }
    Ok(())
}

/// How long until the earliest pending row is due (zero if one is due now).
async fn next_attempt_in(shared: &Shared) -> Result<Option<Duration>, QueueError> {
    let at: Option<i64> = sqlx::query_scalar(&shared.sql.next_outbox)
        .bind(&shared.queue_url)
        .fetch_one(&shared.pool)
        .await?;
    Ok(at.map(|at| Duration::from_millis((at - now_ms()).max(0).unsigned_abs())))
}
