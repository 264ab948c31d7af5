//! The SQL backend: one implementation for SQLite and Postgres through sqlx's `Any` driver.
//!
//! All live and dead messages of every logical queue are rows of `queue_messages`
//! (`migrations/`); a message is dead when `dead_at` is set. Leases are `visible_at` (database
//! clock, ms) plus the `receipt` of the current delivery.
//!
//! Wake-ups: receivers in this process wait on a [`Notify`] that [`Queue::wake`] fires. On
//! Postgres, sends also `NOTIFY` in the sender's transaction and a listener task per handle
//! ([`listen`]) fires the same `Notify` for sends committed by other processes. Receivers poll
//! every `poll_interval` as well, which is how SQLite sees other processes' sends and how
//! Postgres keeps working while the listener is reconnecting.

mod connect;
mod dialect;
mod listen;
mod statements;

pub use connect::connect;
pub use dialect::Dialect;

use crate::{
    DeadMessage, Delivery, OutgoingMessage, Priority, Queue, QueueConfig, QueueError, QueueStats,
    Receipt,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AnyConnection, AnyPool, Row};
use statements::Statements;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Durations go to SQL as milliseconds; capping them keeps `now + delay` far from BIGINT
/// overflow (Postgres would reject it) while still meaning "practically never".
const MAX_MILLIS: i64 = 100 * 365 * 24 * 60 * 60 * 1000;

/// When a message is visible but another claimer holds its row lock (Postgres), or was visible
/// and then claimed between our two statements, retry soon rather than after `poll_interval`.
const RETRY_SOON: Duration = Duration::from_millis(20);

/// A queue stored in the `queue_messages` table of a SQLite or Postgres database.
///
/// Cheap to clone; clones share the pool and the wake-ups, so clone one `SqlQueue` for the API
/// and the worker of a process rather than calling [`SqlQueue::new`] twice (two instances would
/// not wake each other and would fall back to polling).
#[derive(Clone)]
pub struct SqlQueue {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    config: QueueConfig,
    sql: Statements,
    /// Fired after a send commits (here, or in another process through the listener).
    /// `notify_waiters` wakes every receiver that has registered, and each receiver registers
    /// (`enable`) before it looks at the table, so a send that commits between the look and the
    /// wait is never missed.
    wakeups: Arc<Notify>,
    /// Postgres only: the `LISTEN` task; dropped (stopped) with the last clone of the queue.
    listener: Option<listen::Listener>,
}

impl std::fmt::Debug for SqlQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlQueue")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SqlQueue {
    /// Applies the queue's migrations unless [`QueueConfig::migrate`] is false (idempotent;
    /// versions `20261130000001…`, and versions it does not know — the application's — are
    /// ignored) and returns the queue.
    ///
    /// `dialect` must match the pool (use the one [`connect`] returned). Run it from one process
    /// at a time on a fresh SQLite file: sqlx serialises migrations with a lock on Postgres only.
    ///
    /// On Postgres this also starts (on the current tokio runtime) a listener task with one
    /// connection of its own, outside the pool, that `LISTEN`s for other processes' sends; it
    /// stops when the last clone of the queue is dropped. See [`SqlQueue::is_listening`].
    ///
    /// Errors: [`QueueError::Migrate`]; [`QueueError::Database`] if the pool's options are not
    /// Postgres options although `dialect` says Postgres.
    pub async fn new(
        pool: AnyPool,
        dialect: Dialect,
        config: QueueConfig,
    ) -> Result<SqlQueue, QueueError> {
        if config.migrate {
            crate::migrate(&pool).await?;
        }
        let wakeups = Arc::new(Notify::new());
        let listener = match dialect {
            Dialect::Sqlite => None,
            Dialect::Postgres => {
                let options = PgConnectOptions::try_from(&*pool.connect_options())?;
                Some(listen::Listener::spawn(
                    options,
                    config.name.clone(),
                    wakeups.clone(),
                ))
            }
        };
        Ok(SqlQueue {
            inner: Arc::new(Inner {
                pool,
                config,
                sql: Statements::new(dialect),
                wakeups,
                listener,
            }),
        })
    }

    /// True while this handle receives other processes' sends as Postgres notifications, i.e.
    /// its listener is connected and `LISTEN` is active. Always false on SQLite. While false,
    /// receivers still find other processes' messages by polling every `poll_interval`.
    pub fn is_listening(&self) -> bool {
        self.inner
            .listener
            .as_ref()
            .is_some_and(listen::Listener::is_listening)
    }

    /// Postgres: wakes receivers in every process (outside a transaction the notification
    /// goes out at once). Nothing on SQLite. Called after the change committed, so a failure
    /// only delays other processes until their next poll: it is logged, not returned.
    async fn notify_others(&self) {
        if let Some(notify) = &self.inner.sql.notify {
            if let Err(error) = sqlx::query(notify)
                .bind(self.name())
                .execute(&self.inner.pool)
                .await
            {
                tracing::warn!(queue = self.name(), %error, "NOTIFY failed; other processes will poll");
            }
        }
    }

    /// The settings this queue was opened with.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// The pool the queue uses (the one passed to [`SqlQueue::new`]).
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn max_receives(&self) -> i64 {
        i64::from(self.inner.config.max_receives.max(1))
    }

    /// Moves visible messages that used up their receives to the dead-letter store. The claim
    /// does this for the messages it takes; `dead` and `redrive` run it first so that the
    /// operator sees every such message as dead, whether or not a receiver has come by since.
    async fn sweep(&self) -> Result<(), QueueError> {
        let moved = sqlx::query(&self.inner.sql.sweep)
            .bind(self.name())
            .bind(self.max_receives())
            .execute(&self.inner.pool)
            .await?
            .rows_affected();
        if moved > 0 {
            tracing::warn!(
                queue = self.name(),
                moved,
                "dead-lettered messages after max receives"
            );
        }
        Ok(())
    }

    /// One non-blocking attempt to lease up to `max` messages. Messages among them that used up
    /// their receives are dead-lettered instead; the second value counts them (the caller looks
    /// again at once, since the claim then returned fewer than it could have).
    async fn claim(&self, max: usize) -> Result<(Vec<Delivery>, usize), QueueError> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let rows = sqlx::query(&self.inner.sql.claim)
            .bind(self.name())
            .bind(token)
            .bind(millis(self.inner.config.visibility_timeout))
            .bind(self.max_receives())
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await?;
        let mut dead_lettered = 0;
        let mut deliveries = rows
            .iter()
            .filter(|row| {
                let dead = row.try_get::<Option<i64>, _>(6).ok().flatten().is_some();
                dead_lettered += usize::from(dead);
                !dead
            })
            .map(|row| {
                Ok(Delivery {
                    message_id: row.try_get(0)?,
                    body: row.try_get(1)?,
                    receive_count: count(row.try_get(2)?),
                    sent_at: time(row.try_get(3)?),
                    priority: priority_from_sql(row.try_get(4)?),
                    receipt: Receipt::new(row.try_get::<String, _>(5)?),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // RETURNING order is unspecified; hand them out in claim order.
        deliveries.sort_by(|a, b| {
            (b.priority == Priority::High)
                .cmp(&(a.priority == Priority::High))
                .then(a.sent_at.cmp(&b.sent_at))
                .then(a.message_id.cmp(&b.message_id))
        });
        if dead_lettered > 0 {
            tracing::warn!(
                queue = self.name(),
                moved = dead_lettered,
                max_receives = self.max_receives(),
                "dead-lettered messages after max receives"
            );
        }
        Ok((deliveries, dead_lettered))
    }

    /// How long until the next live message becomes visible, if there is one (looking at the
    /// first [`statements::NEXT_VISIBLE_WINDOW`] in claim order).
    async fn next_visible_in(&self) -> Result<Option<Duration>, QueueError> {
        let ms: Option<i64> = sqlx::query_scalar(&self.inner.sql.next_visible_in)
            .bind(self.name())
            .fetch_one(&self.inner.pool)
            .await?;
        Ok(ms.map(|ms| Duration::from_millis(ms.max(0).unsigned_abs())))
    }

    /// The long poll of [`Queue::receive`]; `stop`, when given and cancelled, ends the wait
    /// with nothing (a claim already started is finished and returned, never dropped).
    async fn receive_or_stop(
        &self,
        max: usize,
        wait: Duration,
        stop: Option<&tokio_util::sync::CancellationToken>,
    ) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let start = Instant::now();
        let deadline = start
            .checked_add(wait)
            .unwrap_or_else(|| start + Duration::from_millis(MAX_MILLIS.unsigned_abs()));
        let poll = self.inner.config.poll_interval.max(RETRY_SOON);
        loop {
            // Register for wake-ups before looking, so a send that commits after the claim
            // found nothing still ends the wait below.
            let woken = self.inner.wakeups.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            if stop.is_some_and(|s| s.is_cancelled()) {
                return Ok(Vec::new());
            }
            let (deliveries, dead_lettered) = self.claim(max).await?;
            let now = Instant::now();
            if !deliveries.is_empty() || now >= deadline {
                return Ok(deliveries);
            }
            if dead_lettered > 0 {
                // The claim spent its LIMIT on dead messages: live ones may be right behind.
                continue;
            }
            // Leases that run out and nacked delays end wake nobody: sleep until the first
            // of them rather than a whole poll interval.
            let mut until = deadline.min(now + poll);
            // A message visible now that the claim did not take is locked by another claimer
            // (Postgres) or was taken in between: look again soon.
            if let Some(next) = self.next_visible_in().await? {
                until = until.min(now + next.max(RETRY_SOON));
            }
            // The listener (Postgres) fires `wakeups` for sends committed by other processes.
            let stopped = async {
                match stop {
                    Some(stop) => stop.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(until) => {}
                _ = stopped => return Ok(Vec::new()),
            }
        }
    }

    /// Runs `sql` (a nack: `$4` delay ms, `$5` error) for `receipt`, and wakes receivers when
    /// the message is visible at once.
    async fn hand_back(
        &self,
        sql: &str,
        receipt: &Receipt,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError> {
        self.with_receipt(sql, receipt, |q| {
            q.bind(millis(delay)).bind(error.to_owned())
        })
        .await?;
        if delay.is_zero() {
            self.wake();
            self.notify_others().await;
        }
        Ok(())
    }

    /// Runs a receipt-checked statement whose extra parameters are bound by `bind`;
    /// no row matched → the receipt is stale.
    async fn with_receipt<'q>(
        &self,
        sql: &'q str,
        receipt: &'q Receipt,
        bind: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<(), QueueError> {
        let Some(message_id) = message_id_of(receipt) else {
            return Err(QueueError::LeaseLost { message_id: None });
        };
        let query = sqlx::query(sql)
            .bind(self.name().to_owned())
            .bind(message_id.to_owned())
            .bind(receipt.as_str());
        let affected = bind(query).execute(&self.inner.pool).await?.rows_affected();
        if affected == 0 {
            return Err(QueueError::LeaseLost {
                message_id: Some(message_id.to_owned()),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Queue for SqlQueue {
    async fn send_in(
        &self,
        conn: &mut AnyConnection,
        msg: &OutgoingMessage,
    ) -> Result<String, QueueError> {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(&self.inner.sql.insert)
            .bind(self.name())
            .bind(&id)
            .bind(&msg.body)
            .bind(priority_to_sql(msg.priority))
            .execute(&mut *conn)
            .await?;
        // On Postgres the statement also ran pg_notify: other processes wake when the caller's
        // transaction commits, and never for a rollback.
        Ok(id)
    }

    fn wake(&self) {
        self.inner.wakeups.notify_waiters();
    }

    async fn send(&self, msg: &OutgoingMessage) -> Result<String, QueueError> {
        let mut tx = self.inner.pool.begin().await?;
        let id = self.send_in(&mut tx, msg).await?;
        tx.commit().await?;
        self.wake();
        Ok(id)
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.receive_or_stop(max, wait, None).await
    }

    async fn receive_until(
        &self,
        max: usize,
        wait: Duration,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<Vec<Delivery>, QueueError> {
        self.receive_or_stop(max, wait, Some(stop)).await
    }

    async fn release(&self, receipt: &Receipt, after: Duration) -> Result<(), QueueError> {
        self.with_receipt(&self.inner.sql.release, receipt, |q| q.bind(millis(after)))
            .await?;
        if after.is_zero() {
            self.wake();
            self.notify_others().await;
        }
        Ok(())
    }

    async fn extend(&self, receipt: &Receipt, timeout: Duration) -> Result<(), QueueError> {
        self.with_receipt(&self.inner.sql.extend, receipt, |q| q.bind(millis(timeout)))
            .await
    }

    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError> {
        self.with_receipt(&self.inner.sql.ack, receipt, |q| q).await
    }

    async fn ack_many(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        // Well-formed receipts, first occurrence only (a repeat is stale, as a second `ack`).
        let mut wanted: Vec<(&str, &str)> = Vec::with_capacity(receipts.len());
        let mut seen = HashSet::with_capacity(receipts.len());
        for receipt in receipts {
            if let Some(id) = message_id_of(receipt) {
                if seen.insert(receipt.as_str()) {
                    wanted.push((id, receipt.as_str()));
                }
            }
        }
        let mut deleted: HashSet<String> = HashSet::with_capacity(wanted.len());
        for chunk in wanted.chunks(statements::ACK_MANY_CHUNK) {
            // Pad to a power of two by repeating the last receipt (harmless in an IN list), so
            // a handful of statement texts serve every batch size and stay prepared.
            let n = chunk.len().next_power_of_two();
            let padded = || {
                chunk
                    .iter()
                    .chain(std::iter::repeat(&chunk[chunk.len() - 1]))
            };
            let sql = statements::ack_many(n);
            let mut query = sqlx::query(&sql).bind(self.name());
            for (id, _) in padded().take(n) {
                query = query.bind(*id);
            }
            for (_, receipt) in padded().take(n) {
                query = query.bind(*receipt);
            }
            for row in query.fetch_all(&self.inner.pool).await? {
                deleted.insert(row.try_get(0)?);
            }
        }
        Ok(receipts
            .iter()
            .map(|receipt| {
                if deleted.remove(receipt.as_str()) {
                    Ok(())
                } else {
                    Err(QueueError::LeaseLost {
                        message_id: message_id_of(receipt).map(str::to_owned),
                    })
                }
            })
            .collect())
    }

    async fn nack(
        &self,
        receipt: &Receipt,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError> {
        self.hand_back(&self.inner.sql.nack, receipt, delay, error)
            .await
    }

    async fn reschedule(
        &self,
        receipt: &Receipt,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError> {
        self.hand_back(&self.inner.sql.reschedule, receipt, delay, error)
            .await
    }

    async fn dead_letter(&self, receipt: &Receipt, error: &str) -> Result<(), QueueError> {
        self.with_receipt(&self.inner.sql.dead_letter, receipt, |q| {
            q.bind(error.to_owned())
        })
        .await
    }

    async fn dead(&self, limit: usize) -> Result<Vec<DeadMessage>, QueueError> {
        self.sweep().await?;
        let rows = sqlx::query(&self.inner.sql.dead)
            .bind(self.name())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await?;
        let dead = rows
            .iter()
            .map(|row| {
                Ok(DeadMessage {
                    message_id: row.try_get(0)?,
                    body: row.try_get(1)?,
                    receive_count: count(row.try_get(2)?),
                    last_error: row.try_get(3)?,
                    sent_at: time(row.try_get(4)?),
                    dead_at: time(row.try_get(5)?),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(dead)
    }

    async fn redrive(&self, ids: Option<&[String]>) -> Result<u64, QueueError> {
        self.sweep().await?;
        let moved = match ids {
            None => sqlx::query(&self.inner.sql.redrive_all)
                .bind(self.name())
                .execute(&self.inner.pool)
                .await?
                .rows_affected(),
            Some(ids) => {
                // One transaction: an operator's redrive of a list happens entirely or not at all.
                let mut tx = self.inner.pool.begin().await?;
                let mut moved = 0;
                for id in ids {
                    moved += sqlx::query(&self.inner.sql.redrive_one)
                        .bind(self.name())
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                moved
            }
        };
        if moved > 0 {
            tracing::info!(queue = self.name(), moved, "redrove dead messages");
            self.wake();
            self.notify_others().await;
        }
        Ok(moved)
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let row = sqlx::query(&self.inner.sql.stats)
            .bind(self.name())
            .bind(self.max_receives())
            .fetch_one(&self.inner.pool)
            .await?;
        let now: i64 = row.try_get(5)?;
        let oldest: Option<i64> = row.try_get(4)?;
        Ok(QueueStats {
            depth: unsigned(row.try_get(0)?),
            in_flight: unsigned(row.try_get(1)?),
            delayed: unsigned(row.try_get(2)?),
            dead: unsigned(row.try_get(3)?),
            oldest_age: oldest.map(|sent| Duration::from_millis(unsigned(now - sent))),
        })
    }
}

/// Receipts are `{message_id}.{token}`; the id part lets a receipt-checked statement find its
/// row by primary key. UUIDs contain no `.`.
fn message_id_of(receipt: &Receipt) -> Option<&str> {
    receipt
        .as_str()
        .split_once('.')
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(MAX_MILLIS, |ms| ms.min(MAX_MILLIS))
}

fn time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(unsigned(ms))
}

fn unsigned(n: i64) -> u64 {
    n.max(0).unsigned_abs()
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn priority_to_sql(p: Priority) -> i64 {
    match p {
        Priority::Normal => 0,
        Priority::High => 1,
    }
}

fn priority_from_sql(n: i64) -> Priority {
    if n > 0 {
        Priority::High
    } else {
        Priority::Normal
    }
}
