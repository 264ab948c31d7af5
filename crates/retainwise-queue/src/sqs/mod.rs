//! The SQS backend: messages live in an Amazon SQS standard queue (or a compatible server such
//! as moto), with a little state in the application's SQL database that SQS cannot hold.
//!
//! # How the contract maps onto SQS
//!
//! * **Send (transactional outbox).** [`Queue::send_in`] inserts a row into
//!   `queue_sqs_messages` in the caller's transaction; a relay task (`relay.rs`) publishes pending
//!   rows with SendMessageBatch, marks them published and retries failures with backoff. A row and
//!   the application's rows therefore commit together, and a failed publish is retried rather than
//!   lost. Delivery is at-least-once (a relay that dies between publish and mark publishes again).
//!   [`Queue::send`] publishes its own row at once and leaves failures to the relay.
//! * **Ids.** The message id is a UUID v7 carried as the `RetainwiseId` message attribute, so it
//!   stays the same across redrive (which sends a new SQS message with a new MessageId).
//! * **Receive.** ReceiveMessage with WaitTimeSeconds ≤ 20 and MaxNumberOfMessages ≤ 10 (the SQS
//!   limits); `receive_count` is ApproximateReceiveCount and `sent_at` is SentTimestamp. SQS
//!   times are whole seconds: a visibility timeout, extension or nack delay is rounded *up* to
//!   the next second (so 300 ms means 1 s; 0 stays 0), and a wait below one second is served by
//!   short polls every 50 ms. Source: Amazon SQS Developer Guide, "Amazon SQS visibility timeout"
//!   and "Amazon SQS short and long polling".
//! * **Fencing.** SQS accepts an old receipt handle for DeleteMessage in some cases (Developer
//!   Guide, "Amazon SQS visibility timeout": "If you receive a message more than once, each time
//!   you receive it, you get a different receipt handle. You must provide the most recently
//!   received receipt handle when you request to delete the message (otherwise, the message might
//!   not be deleted)."). To keep the contract — a stale receipt changes nothing and reports
//!   [`QueueError::LeaseLost`] — every receive stores a fresh token with the SQS receipt handle in
//!   `queue_sqs_messages`, and [`Receipt`]s are `{message_id}.{token}`. `ack`, `extend`, `nack`
//!   and `dead_letter` first run one receipt-checked SQL statement and only then call SQS with the
//!   stored, latest handle. The check and the SQS call are two steps: a redelivery that lands
//!   between them (the lease expired at that very moment) can still be acted on by the old holder.
//! * **Heartbeat.** `extend` is ChangeMessageVisibility, capped at 43 200 s: SQS refuses a
//!   visibility beyond 12 hours from the first receive (Developer Guide, "Amazon SQS visibility
//!   timeout", "the maximum is 12 hours").
//! * **Reschedule.** A nack's delay is a ChangeMessageVisibility, so it cannot pass 12 hours
//!   from the receive, and SQS keeps counting receives toward the redrive policy.
//!   `reschedule` instead turns the lease row back into an outbox row due after the delay (the
//!   relay holds it in SQL as long as needed) and deletes the current copy: the relay then
//!   publishes a fresh SQS message with the same id, whose ApproximateReceiveCount starts again.
//! * **Dead letters.** The source queue's RedrivePolicy (maxReceiveCount = `max_receives`, see
//!   [`setup`]) moves a message that was received too often to the DLQ. This backend also moves
//!   it itself in three cases, sending a copy with the last error as the `RetainwiseError`
//!   attribute and deleting the original: `dead_letter`; a `nack` on the last allowed receive (the
//!   next receive would move it anyway; doing it now keeps the error and makes `stats`/`dead`
//!   exact at once, at the cost of ignoring that nack's delay); and a received message whose
//!   count already exceeds `max_receives` (a queue without a redrive policy).
//! * **Listing dead messages.** `dead` and `redrive` read the DLQ: they receive its messages with
//!   a 30 s visibility (up to 1 000), then hand back those they do not delete with
//!   ChangeMessageVisibility 0. While one of them runs, a concurrent one sees fewer messages; if
//!   the process dies meanwhile, the messages reappear after 30 s. `redrive` sends a new copy to
//!   the source queue and deletes the DLQ copy (moto does not implement StartMessageMoveTask).
//! * **Priority.** Recorded as the `RetainwisePriority` attribute. SQS standard queues have no
//!   priority (nor strict FIFO) order; within one received batch High comes first, nothing more.
//! * **Stats.** GetQueueAttributes: `depth` = ApproximateNumberOfMessages, `dead` = the DLQ's
//!   visible + not visible. SQS counts a nacked (delayed) message as "not visible"; messages this
//!   library nacked with a delay that has not passed are moved from `in_flight` to `delayed`, and
//!   outbox rows not yet published count as `delayed`. `oldest_age` is an estimate from the SQL
//!   table (the oldest `sent_at` of a live message this library sent or received), `None` when
//!   SQS reports no live message. All SQS counts are approximate (eventually consistent).

mod attributes;
mod client;
mod relay;
mod statements;

pub use client::{client, setup, QueueUrls};

use crate::{
    DeadMessage, Delivery, Dialect, OutgoingMessage, Priority, Queue, QueueError, QueueStats,
    Receipt,
};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use aws_sdk_sqs::Client;
use sqlx::{AnyConnection, AnyPool, Row};
use statements::Statements;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::time::Instant;

/// SQS's limits on one ReceiveMessage: 20 s of long polling, 10 messages.
const MAX_WAIT_SECS: u64 = 20;
const MAX_BATCH: usize = 10;
/// The largest visibility timeout SQS accepts: 12 hours, in seconds.
const MAX_VISIBILITY_SECS: i32 = 43_200;
/// How long `dead`/`redrive` hide the DLQ messages they are looking at.
const PEEK_VISIBILITY_SECS: i32 = 30;
/// `dead`/`redrive` look at no more than this many DLQ messages per call.
const PEEK_MAX: usize = 1_000;
/// Between short polls when less than a second of waiting is left.
const SHORT_POLL: Duration = Duration::from_millis(50);

/// Settings of one SQS queue.
#[derive(Clone, Debug)]
pub struct SqsConfig {
    /// The source queue's URL, e.g. `https://sqs.eu-west-1.amazonaws.com/123456789012/predictions`
    /// or `http://127.0.0.1:PORT/123456789012/predictions` (moto). Identifies the queue in the
    /// SQL table too, so several queues may share it.
    pub queue_url: String,
    /// The dead-letter queue's URL; `None` finds it from the source queue's RedrivePolicy.
    pub dlq_url: Option<String>,
    /// Endpoint override; `None` uses `AWS_ENDPOINT_URL_SQS`, then `AWS_ENDPOINT_URL`, then AWS.
    pub endpoint_url: Option<String>,
    /// Region override; `None` uses the standard chain (`AWS_REGION`, profile, …).
    pub region: Option<String>,
    /// Visibility timeout of each receive, rounded up to whole seconds, at most 12 hours.
    /// Default 30 s. (Each ReceiveMessage asks for at most 10 messages and long-polls at most
    /// 20 s, SQS's limits; a longer `receive` wait is several requests.)
    pub visibility_timeout: Duration,
    /// Receives after which a message is dead; must equal the queue's RedrivePolicy
    /// maxReceiveCount ([`setup`] makes it so). Default 3; `0` is treated as 1.
    pub max_receives: u32,
    /// Whether [`SqsQueue::new`] applies the queue's migrations (the outbox table) to the SQL
    /// database. Default true; false for a process that must change no schema.
    pub migrate: bool,
}

impl SqsConfig {
    /// Defaults (30 s visibility, 3 receives, DLQ from the RedrivePolicy) for `queue_url`.
    pub fn new(queue_url: impl Into<String>) -> Self {
        SqsConfig {
            queue_url: queue_url.into(),
            dlq_url: None,
            endpoint_url: None,
            region: None,
            visibility_timeout: Duration::from_secs(30),
            max_receives: 3,
            migrate: true,
        }
    }
}

/// A queue in Amazon SQS with a transactional outbox and a lease table in SQL (module docs).
///
/// Cheap to clone; clones share the client, the pool and the relay task. The relay stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct SqsQueue {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    relay: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

/// What the queue and its relay task share.
pub(super) struct Shared {
    pool: AnyPool,
    client: Client,
    sql: Statements,
    config: SqsConfig,
    queue_url: String,
    dlq_url: String,
    relay_wake: Notify,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueue")
            .field("config", &self.inner.shared.config)
            .field("dlq_url", &self.inner.shared.dlq_url)
            .finish_non_exhaustive()
    }
}

/// A message as the last delivery saw it: what a dead-letter copy needs.
struct Leased {
    id: String,
    body: String,
    priority: Priority,
    receive_count: i64,
    /// SentTimestamp, epoch ms.
    sent_at: i64,
    /// The SQS receipt handle of that delivery.
    handle: String,
}

impl Leased {
    /// From a receipt-checked statement's `RETURNING handle, receive_count, body, priority,
    /// sent_at`.
    fn from_row(id: String, row: &sqlx::any::AnyRow) -> Result<Leased, sqlx::Error> {
        Ok(Leased {
            id,
            handle: row.try_get(0)?,
            receive_count: row.try_get(1)?,
            body: row.try_get(2)?,
            priority: priority_from_sql(row.try_get(3)?),
            sent_at: row.try_get(4)?,
        })
    }
}

/// What the DLQ scan found for one message.
struct Peeked {
    message: Message,
    handle: String,
}

impl SqsQueue {
    /// Applies the queue's migrations to `pool` unless [`SqsConfig::migrate`] is false (the
    /// outbox/lease table; idempotent, the same migrator as [`crate::SqlQueue::new`]), builds the SQS client ([`client`]), finds the DLQ
    /// (`config.dlq_url`, else the RedrivePolicy) and starts the outbox relay task on the current
    /// tokio runtime (so call it inside one).
    ///
    /// `pool`/`dialect` are the application's database (use [`crate::connect`]); `send_in` takes
    /// a connection of this pool.
    ///
    /// Errors: [`QueueError::Migrate`]; [`QueueError::Sqs`] when the DLQ cannot be found.
    pub async fn new(
        pool: AnyPool,
        dialect: Dialect,
        config: SqsConfig,
    ) -> Result<SqsQueue, QueueError> {
        let client = client(config.endpoint_url.as_deref(), config.region.as_deref()).await;
        SqsQueue::with_client(pool, dialect, client, config).await
    }

    /// [`SqsQueue::new`] with a client built elsewhere (its endpoint and region win over
    /// `config.endpoint_url` and `config.region`).
    pub async fn with_client(
        pool: AnyPool,
        dialect: Dialect,
        client: Client,
        config: SqsConfig,
    ) -> Result<SqsQueue, QueueError> {
        if config.migrate {
            crate::migrate(&pool).await?;
        }
        let dlq_url = client::dlq_url(&client, &config).await?;
        let shared = Arc::new(Shared {
            pool,
            client,
            sql: Statements::new(dialect),
            queue_url: config.queue_url.clone(),
            config,
            dlq_url,
            relay_wake: Notify::new(),
        });
        let relay = tokio::spawn(relay::run(shared.clone()));
        Ok(SqsQueue {
            inner: Arc::new(Inner { shared, relay }),
        })
    }

    /// The settings this queue was opened with.
    pub fn config(&self) -> &SqsConfig {
        &self.inner.shared.config
    }

    /// The dead-letter queue's URL (given or discovered).
    pub fn dlq_url(&self) -> &str {
        &self.inner.shared.dlq_url
    }

    /// The SQS client (for readiness checks and the like).
    pub fn client(&self) -> &Client {
        &self.inner.shared.client
    }

    /// The SQL pool holding the outbox.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.shared.pool
    }

    fn s(&self) -> &Shared {
        &self.inner.shared
    }

    fn max_receives(&self) -> i64 {
        i64::from(self.s().config.max_receives.max(1))
    }

    /// One ReceiveMessage of up to `max` messages waiting up to `secs` whole seconds.
    async fn receive_once(&self, max: usize, secs: u64) -> Result<Vec<Delivery>, QueueError> {
        let s = self.s();
        let out = s
            .client
            .receive_message()
            .queue_url(&s.queue_url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
            .wait_time_seconds(secs.min(MAX_WAIT_SECS) as i32)
            .visibility_timeout(whole_seconds(s.config.visibility_timeout))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| sqs_error("ReceiveMessage", e))?;
        let mut deliveries = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let (Some(id), Some(handle)) = (attributes::id(&m), m.receipt_handle.clone()) else {
                continue;
            };
            let receive_count =
                attributes::system_i64(&m, MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or(1);
            let sent_at = attributes::system_i64(&m, MessageSystemAttributeName::SentTimestamp)
                .unwrap_or_else(now_ms);
            let body = attributes::body(&m);
            let priority = attributes::priority(&m);
            if receive_count > self.max_receives() {
                // No redrive policy moved it (or it does not match max_receives): move it here,
                // as the contract says, with the last error it recorded.
                let error = self.last_error(&id).await?;
                let leased = Leased {
                    id,
                    body,
                    priority,
                    receive_count,
                    sent_at,
                    handle,
                };
                self.bury(&leased, error.as_deref()).await?;
                continue;
            }
            let token = uuid::Uuid::new_v4().simple().to_string();
            sqlx::query(&s.sql.lease)
                .bind(&id)
                .bind(&s.queue_url)
                .bind(&body)
                .bind(priority_to_sql(priority))
                .bind(sent_at)
                .bind(now_ms())
                .bind(&token)
                .bind(&handle)
                .bind(receive_count)
                .execute(&s.pool)
                .await?;
            deliveries.push(Delivery {
                receipt: Receipt::new(format!("{id}.{token}")),
                message_id: id,
                body,
                receive_count: u32::try_from(receive_count.max(0)).unwrap_or(u32::MAX),
                sent_at: time(sent_at),
                priority,
            });
        }
        deliveries.sort_by(|a, b| {
            (b.priority == Priority::High)
                .cmp(&(a.priority == Priority::High))
                .then(a.sent_at.cmp(&b.sent_at))
                .then(a.message_id.cmp(&b.message_id))
        });
        Ok(deliveries)
    }

    async fn last_error(&self, id: &str) -> Result<Option<String>, QueueError> {
        let row = sqlx::query(&self.s().sql.row)
            .bind(id)
            .fetch_optional(&self.s().pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => None,
        })
    }

    /// Sends a copy to the DLQ carrying what `dead` lists, then deletes the original with
    /// `handle`. A crash between the two leaves both (at-least-once), never neither.
    async fn bury(&self, m: &Leased, error: Option<&str>) -> Result<(), QueueError> {
        let (id, body, handle) = (m.id.as_str(), m.body.as_str(), m.handle.as_str());
        let s = self.s();
        let now = now_ms();
        let mut attrs = attributes::outgoing(id, m.priority, body);
        attrs.insert(
            attributes::RECEIVE_COUNT.to_owned(),
            attributes::string(m.receive_count.to_string()),
        );
        attrs.insert(
            attributes::SENT_AT.to_owned(),
            attributes::string(m.sent_at.to_string()),
        );
        attrs.insert(
            attributes::DEAD_AT.to_owned(),
            attributes::string(now.to_string()),
        );
        if let Some(error) = error {
            attrs.insert(
                attributes::ERROR.to_owned(),
                attributes::string(attributes::truncate_error(error)),
            );
        }
        s.client
            .send_message()
            .queue_url(&s.dlq_url)
            .message_body(attributes::wire_body(body))
            .set_message_attributes(Some(attrs))
            .send()
            .await
            .map_err(|e| sqs_error("SendMessage", e))?;
        s.client
            .delete_message()
            .queue_url(&s.queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", e))?;
        sqlx::query(&s.sql.mark_dead)
            .bind(id)
            .bind(now)
            .execute(&s.pool)
            .await?;
        tracing::warn!(queue = %s.queue_url, message_id = id, "dead-lettered");
        Ok(())
    }

    /// Runs a receipt-checked statement (`$1` id, `$2` queue_url, `$3` receipt, then `extra`)
    /// and returns its RETURNING row; no row → the receipt is stale.
    async fn with_receipt(
        &self,
        sql: &str,
        receipt: &Receipt,
        extra: &[Extra<'_>],
    ) -> Result<(String, sqlx::any::AnyRow), QueueError> {
        let Some((id, _)) = receipt
            .as_str()
            .split_once('.')
            .filter(|(id, token)| !id.is_empty() && !token.is_empty())
        else {
            return Err(QueueError::LeaseLost { message_id: None });
        };
        let mut query = sqlx::query(sql)
            .bind(id)
            .bind(&self.s().queue_url)
            .bind(receipt.as_str().split_once('.').map_or("", |(_, t)| t));
        for e in extra {
            query = match e {
                Extra::Text(t) => query.bind(*t),
                Extra::Int(n) => query.bind(*n),
            };
        }
        match query.fetch_optional(&self.s().pool).await? {
            Some(row) => Ok((id.to_owned(), row)),
            None => Err(QueueError::LeaseLost {
                message_id: Some(id.to_owned()),
            }),
        }
    }

    async fn change_visibility(&self, handle: &str, timeout: Duration) -> Result<(), QueueError> {
        self.s()
            .client
            .change_message_visibility()
            .queue_url(&self.s().queue_url)
            .receipt_handle(handle)
            .visibility_timeout(whole_seconds(timeout))
            .send()
            .await
            .map_err(|e| sqs_error("ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// Receives up to [`PEEK_MAX`] DLQ messages, hidden for [`PEEK_VISIBILITY_SECS`].
    async fn peek_dlq(&self) -> Result<Vec<Peeked>, QueueError> {
        let s = self.s();
        let expected = queue_counts(
            &s.client,
            &s.dlq_url,
            &[QueueAttributeName::ApproximateNumberOfMessages],
        )
        .await?[0];
        let mut found = Vec::new();
        let mut long_polled = false;
        while found.len() < PEEK_MAX {
            // Short polls sample a subset of SQS's servers; when one comes back empty before we
            // have seen the expected count, a one-second long poll (which asks them all)
            // decides.
            let wait = i32::from(long_polled);
            let out = s
                .client
                .receive_message()
                .queue_url(&s.dlq_url)
                .max_number_of_messages(MAX_BATCH as i32)
                .wait_time_seconds(wait)
                .visibility_timeout(PEEK_VISIBILITY_SECS)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| sqs_error("ReceiveMessage", e))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                if long_polled || found.len() as u64 >= expected {
                    break;
                }
                long_polled = true;
                continue;
            }
            for message in messages {
                if let Some(handle) = message.receipt_handle.clone() {
                    found.push(Peeked { message, handle });
                }
            }
        }
        Ok(found)
    }

    /// Makes peeked DLQ messages visible again (ChangeMessageVisibility 0, 10 per request).
    async fn release_peeked(&self, peeked: &[&Peeked]) -> Result<(), QueueError> {
        let s = self.s();
        for chunk in peeked.chunks(MAX_BATCH) {
            let mut request = s
                .client
                .change_message_visibility_batch()
                .queue_url(&s.dlq_url);
            for (i, p) in chunk.iter().enumerate() {
                request = request.entries(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&p.handle)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| sqs_error("ChangeMessageVisibilityBatch", e))?,
                );
            }
            request
                .send()
                .await
                .map_err(|e| sqs_error("ChangeMessageVisibilityBatch", e))?;
        }
        Ok(())
    }

    /// The [`DeadMessage`] for a DLQ message: our attributes when this library dead-lettered
    /// it, else (moved by the redrive policy) what the SQL table knows.
    async fn dead_message(&self, m: &Message) -> Result<Option<DeadMessage>, QueueError> {
        let Some(id) = attributes::id(m) else {
            return Ok(None);
        };
        let s = self.s();
        let now = now_ms();
        if attributes::get(m, attributes::DEAD_AT).is_none() {
            // Moved by SQS: note it, so the live-message estimates leave it out.
            sqlx::query(&s.sql.mark_dead)
                .bind(&id)
                .bind(now)
                .execute(&s.pool)
                .await?;
        }
        let row = sqlx::query(&s.sql.row)
            .bind(&id)
            .fetch_optional(&s.pool)
            .await?;
        let (row_error, row_count, row_dead_at): (Option<String>, Option<i64>, Option<i64>) =
            match &row {
                Some(row) => (row.try_get(0)?, Some(row.try_get(1)?), row.try_get(2)?),
                None => (None, None, None),
            };
        let int = |name| attributes::get(m, name).and_then(|v| v.parse::<i64>().ok());
        let sent_at = int(attributes::SENT_AT)
            .or_else(|| attributes::system_i64(m, MessageSystemAttributeName::SentTimestamp))
            .unwrap_or(now);
        Ok(Some(DeadMessage {
            message_id: id,
            body: attributes::body(m),
            receive_count: u32::try_from(
                int(attributes::RECEIVE_COUNT)
                    .or(row_count)
                    .unwrap_or(0)
                    .max(0),
            )
            .unwrap_or(u32::MAX),
            last_error: attributes::get(m, attributes::ERROR)
                .map(str::to_owned)
                .or(row_error),
            sent_at: time(sent_at),
            dead_at: time(int(attributes::DEAD_AT).or(row_dead_at).unwrap_or(now)),
        }))
    }
}

/// Extra parameters of a receipt-checked statement.
enum Extra<'a> {
    Text(&'a str),
    Int(i64),
}

#[async_trait::async_trait]
impl Queue for SqsQueue {
    async fn send_in(
        &self,
        conn: &mut AnyConnection,
        msg: &OutgoingMessage,
    ) -> Result<String, QueueError> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        sqlx::query(&self.s().sql.insert)
            .bind(&id)
            .bind(&self.s().queue_url)
            .bind(&msg.body)
            .bind(priority_to_sql(msg.priority))
            .bind(now)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }

    /// Nudges the outbox relay (receivers long-poll SQS, which wakes them itself).
    fn wake(&self) {
        self.s().relay_wake.notify_waiters();
    }

    /// Writes the outbox row already claimed by this call and publishes it at once; if the
    /// publish fails the relay retries it, and the id is returned all the same (the message is
    /// durable in the outbox).
    async fn send(&self, msg: &OutgoingMessage) -> Result<String, QueueError> {
        let s = self.s();
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        sqlx::query(&s.sql.insert)
            .bind(&id)
            .bind(&s.queue_url)
            .bind(&msg.body)
            .bind(priority_to_sql(msg.priority))
            .bind(now)
            .bind(now + millis(Duration::from_secs(30)))
            .execute(&s.pool)
            .await?;
        relay::publish(
            s,
            vec![relay::Pending {
                id: id.clone(),
                body: msg.body.clone(),
                priority: msg.priority,
                attempts: 0,
            }],
        )
        .await?;
        Ok(id)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let start = Instant::now();
        let deadline = start
            .checked_add(wait)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let secs = remaining.as_secs().min(MAX_WAIT_SECS);
            let got = self.receive_once(max, secs).await?;
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
            if secs == 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(left.min(SHORT_POLL)).await;
            }
        }
    }

    async fn extend(&self, receipt: &Receipt, timeout: Duration) -> Result<(), QueueError> {
        let (_, row) = self
            .with_receipt(&self.s().sql.extend, receipt, &[])
            .await?;
        let handle: String = row.try_get(0)?;
        self.change_visibility(&handle, timeout).await
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let (_, row) = self.with_receipt(&self.s().sql.ack, receipt, &[]).await?;
        let handle: String = row.try_get(0)?;
        self.s()
            .client
            .delete_message()
            .queue_url(&self.s().queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", e))?;
        Ok(())
    }

    async fn nack(
        &self,
        receipt: &Receipt,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError> {
        let visible_at = now_ms() + millis(delay);
        let (id, row) = self
            .with_receipt(
                &self.s().sql.nack,
                receipt,
                &[Extra::Text(error), Extra::Int(visible_at)],
            )
            .await?;
        let leased = Leased::from_row(id, &row)?;
        if leased.receive_count >= self.max_receives() {
            // The next receive would dead-letter it (redrive policy); do it now (module docs).
            return self.bury(&leased, Some(error)).await;
        }
        self.change_visibility(&leased.handle, delay).await
    }

    async fn release(&self, receipt: &Receipt, after: Duration) -> Result<(), QueueError> {
        // SQS's own receive count stays as it is (no API lowers it): see the trait's docs.
        let (_, row) = self
            .with_receipt(&self.s().sql.release, receipt, &[])
            .await?;
        let handle: String = row.try_get(0)?;
        self.change_visibility(&handle, after).await
    }

    /// The row goes back to the outbox, due after `delay` (no 12-hour limit: the relay holds
    /// it in SQL until then), and the current SQS copy is deleted.
    async fn reschedule(
        &self,
        receipt: &Receipt,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError> {
        let s = self.s();
        let (_, row) = self
            .with_receipt(
                &s.sql.reschedule,
                receipt,
                &[Extra::Text(error), Extra::Int(now_ms() + millis(delay))],
            )
            .await?;
        let handle: String = row.try_get(0)?;
        s.client
            .delete_message()
            .queue_url(&s.queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessage", e))?;
        s.relay_wake.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, receipt: &Receipt, error: &str) -> Result<(), QueueError> {
        let (id, row) = self
            .with_receipt(
                &self.s().sql.dead_letter,
                receipt,
                &[Extra::Text(error), Extra::Int(now_ms())],
            )
            .await?;
        self.bury(&Leased::from_row(id, &row)?, Some(error)).await
    }

    async fn dead(&self, limit: usize) -> Result<Vec<DeadMessage>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let peeked = self.peek_dlq().await?;
        let mut dead = Vec::new();
        let mut result = Ok(());
        for p in &peeked {
            match self.dead_message(&p.message).await {
                Ok(Some(d)) => dead.push(d),
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Hand everything back even if reading failed half-way.
        self.release_peeked(&peeked.iter().collect::<Vec<_>>())
            .await?;
        result?;
        dead.sort_by(|a, b| {
            b.dead_at
                .cmp(&a.dead_at)
                .then(b.message_id.cmp(&a.message_id))
        });
        dead.truncate(limit);
        Ok(dead)
    }

    async fn redrive(&self, ids: Option<&[String]>) -> Result<u64, QueueError> {
        if ids.is_some_and(<[String]>::is_empty) {
            return Ok(0);
        }
        let wanted: Option<HashSet<&str>> = ids.map(|ids| ids.iter().map(String::as_str).collect());
        let s = self.s();
        let peeked = self.peek_dlq().await?;
        // Handles deleted (or whose fate is unknown after a failed delete): not handed back.
        let mut gone: HashSet<&str> = HashSet::new();
        let mut moved = 0;
        let mut result = Ok(());
        for p in &peeked {
            let Some(id) = attributes::id(&p.message) else {
                continue;
            };
            if wanted.as_ref().is_some_and(|w| !w.contains(id.as_str())) {
                continue;
            }
            let body = attributes::body(&p.message);
            let sent = s
                .client
                .send_message()
                .queue_url(&s.queue_url)
                .message_body(attributes::wire_body(&body))
                .set_message_attributes(Some(attributes::outgoing(
                    &id,
                    attributes::priority(&p.message),
                    &body,
                )))
                .send()
                .await;
            if let Err(e) = sent {
                result = Err(sqs_error("SendMessage", e));
                break;
            }
            gone.insert(&p.handle);
            if let Err(e) = s
                .client
                .delete_message()
                .queue_url(&s.dlq_url)
                .receipt_handle(&p.handle)
                .send()
                .await
            {
                result = Err(sqs_error("DeleteMessage", e));
                break;
            }
            sqlx::query(&s.sql.redriven)
                .bind(&id)
                .bind(now_ms())
                .execute(&s.pool)
                .await?;
            moved += 1;
        }
        // Everything not moved (including the rest after a failure) goes back at once.
        let keep: Vec<&Peeked> = peeked
            .iter()
            .filter(|p| !gone.contains(p.handle.as_str()))
            .collect();
        self.release_peeked(&keep).await?;
        result?;
        if moved > 0 {
            tracing::info!(queue = %s.queue_url, moved, "redrove dead messages");
        }
        Ok(moved)
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let s = self.s();
        let src = queue_counts(
            &s.client,
            &s.queue_url,
            &[
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            ],
        )
        .await?;
        let dlq = queue_counts(
            &s.client,
            &s.dlq_url,
            &[
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            ],
        )
        .await?;
        let now = now_ms();
        let row = sqlx::query(&s.sql.stats)
            .bind(&s.queue_url)
            .bind(now)
            .fetch_one(&s.pool)
            .await?;
        let pending = unsigned(row.try_get(0)?);
        let nacked = unsigned(row.try_get(1)?).min(src[1]);
        let oldest: Option<i64> = row.try_get(2)?;
        let stats = QueueStats {
            depth: src[0],
            in_flight: src[1] - nacked,
            delayed: src[2] + nacked + pending,
            dead: dlq[0] + dlq[1],
            oldest_age: None,
        };
        let live = stats.depth + stats.in_flight + stats.delayed;
        Ok(QueueStats {
            oldest_age: oldest
                .filter(|_| live > 0)
                .map(|sent| Duration::from_millis(unsigned(now - sent))),
            ..stats
        })
    }
}

/// GetQueueAttributes for integer attributes, in the order asked (missing → 0).
async fn queue_counts(
    client: &Client,
    url: &str,
    names: &[QueueAttributeName],
) -> Result<Vec<u64>, QueueError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", e))?;
    let attrs = out.attributes.unwrap_or_default();
    Ok(names
        .iter()
        .map(|n| attrs.get(n).and_then(|v| v.parse().ok()).unwrap_or(0))
        .collect())
}

/// An SQS failure with its whole chain (service code and message, or the transport error).
pub(super) fn sqs_error<E>(operation: &'static str, e: E) -> QueueError
where
    E: std::error::Error + Send + Sync + 'static,
{
    QueueError::Sqs {
        operation,
        message: aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
    }
}

/// A duration as SQS's whole seconds, rounded up (so a lease is never shorter than asked) and
/// capped at the 12-hour maximum.
pub(super) fn whole_seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).map_or(MAX_VISIBILITY_SECS, |s| s.min(MAX_VISIBILITY_SECS))
}

/// Unix epoch milliseconds by this process's clock.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in milliseconds, saturating at 100 years (far from BIGINT overflow).
pub(super) fn millis(d: Duration) -> i64 {
    const MAX: i64 = 100 * 365 * 24 * 60 * 60 * 1000;
    i64::try_from(d.as_millis()).map_or(MAX, |ms| ms.min(MAX))
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unsigned(ms))
}

fn unsigned(n: i64) -> u64 {
    n.max(0).unsigned_abs()
}

pub(super) fn priority_to_sql(p: Priority) -> i64 {
    match p {
        Priority::Normal => 0,
        Priority::High => 1,
    }
}

pub(super) fn priority_from_sql(n: i64) -> Priority {
    if n > 0 {
        Priority::High
    } else {
        Priority::Normal
    }
}
