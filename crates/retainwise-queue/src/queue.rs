//! The queue contract every backend implements.

use crate::{DeadMessage, Delivery, OutgoingMessage, QueueError, QueueStats, Receipt};
use std::time::Duration;

/// The longest slice of a long poll in the default [`Queue::receive_until`]: how late, at most,
/// it notices a stop.
pub const STOP_SLICE: Duration = Duration::from_secs(1);

/// A durable queue with SQS semantics. Object-safe: use it as `Arc<dyn Queue>`.
///
/// Every method that takes a [`Receipt`] returns [`QueueError::LeaseLost`] and changes nothing
/// when the receipt is not the message's current one.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Writes the message inside the caller's transaction (or connection), so the caller's rows
    /// and the message commit together or not at all. The message is not visible until that
    /// commit. Returns the new message id (a UUID string). Call [`Queue::wake`] after committing.
    ///
    /// With SQLite the pool has a single connection: do not call other queue methods while the
    /// caller's transaction holds it, they would wait for it (up to the pool's acquire timeout).
    async fn send_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        msg: &OutgoingMessage,
    ) -> Result<String, QueueError>;

    /// Wakes this process's receivers that are long-polling. Call after the transaction that ran
    /// [`Queue::send_in`] committed; before the commit they would find nothing and sleep again.
    fn wake(&self);

    /// Sends in a transaction of its own and wakes receivers. Returns the message id.
    async fn send(&self, msg: &OutgoingMessage) -> Result<String, QueueError>;

    /// Leases up to `max` visible messages, long-polling up to `wait` until at least one is
    /// visible; returns an empty `Vec` if none became visible in time (at once for `max == 0`).
    ///
    /// Each delivery has a fresh receipt and `receive_count` one higher, and stays invisible for
    /// the visibility timeout. A message that already reached `max_receives` and is visible again
    /// is moved to the dead-letter store (keeping its last error) instead of being delivered.
    ///
    /// Dropping the future after the claim committed leaves those messages leased (invisible)
    /// until their visibility timeout, as with any lost delivery.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;

    /// [`Queue::receive`] whose long poll also ends, with nothing, once `stop` is cancelled. Use
    /// it where a consumer may be told to stop while it waits: dropping a `receive` future can
    /// drop a claim that already committed (the message then stays leased for a whole visibility
    /// timeout and its receive is counted), while this never abandons a claim in progress: it
    /// returns what a claim it had started leased, and the caller hands that back with
    /// [`Queue::release`].
    ///
    /// The default waits in slices of at most [`STOP_SLICE`] and looks at `stop` between them,
    /// so it ends at most one slice after `stop`; the SQL backend ends its wait at once.
    async fn receive_until(
        &self,
        max: usize,
        wait: Duration,
        stop: &tokio_util::sync::CancellationToken,
    ) -> Result<Vec<Delivery>, QueueError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if stop.is_cancelled() {
                return Ok(Vec::new());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let got = self.receive(max, left.min(STOP_SLICE)).await?;
            if !got.is_empty() || left <= STOP_SLICE {
                return Ok(got);
            }
        }
    }

    /// Hands a delivery back unprocessed: visible again after `after` (0 = at once), and its
    /// receive is not counted (`receive_count` one lower again), for a consumer that does not
    /// start the work — told to stop, or with no room for this kind of job just now. The
    /// receipt is no longer current afterwards. The last error is kept.
    ///
    /// SQS counts receives itself (ApproximateReceiveCount, which the redrive policy reads) and
    /// no API lowers that count: there the message is only made visible again, and the receive
    /// still counts toward the dead-letter queue.
    async fn release(&self, receipt: &Receipt, after: Duration) -> Result<(), QueueError>;

    /// Heartbeat: the message stays invisible for `timeout` from now (millisecond precision).
    async fn extend(&self, receipt: &Receipt, timeout: Duration) -> Result<(), QueueError>;

    /// Deletes the message: the work is done.
    async fn ack(&self, receipt: &Receipt) -> Result<(), QueueError>;

    /// [`Queue::ack`] for many receipts at once (the SQL backend deletes them in one statement
    /// per 512 receipts). Returns one result per receipt, in order, each exactly what `ack` of
    /// that receipt alone would have returned: `Ok(())` (deleted) or [`QueueError::LeaseLost`]
    /// (stale, nothing changed). A receipt given twice is acked once and is stale the second
    /// time, as with two calls to `ack`.
    ///
    /// The outer `Err` is a failure of the backend itself (e.g. the database is down). Then some
    /// receipts may or may not have been acked; acking them again is safe (a deleted message
    /// answers `LeaseLost`), and a message that was not acked is redelivered after its lease.
    ///
    /// The default acks one receipt after the other (the SQS backend uses it: its `ack` checks
    /// the lease table and deletes with the latest receipt handle, message by message).
    async fn ack_many(
        &self,
        receipts: &[Receipt],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let mut results = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            match self.ack(receipt).await {
                Err(e) if !e.is_lease_lost() => return Err(e),
                result => results.push(result),
            }
        }
        Ok(results)
    }

    /// Gives the message back: visible again after `delay` (0 = at once), with `error` recorded
    /// as its last error. The receipt is no longer current afterwards. The receive count is kept,
    /// so repeated nacks end in the dead-letter store.
    async fn nack(&self, receipt: &Receipt, delay: Duration, error: &str)
        -> Result<(), QueueError>;

    /// Gives the message back for a fresh round of receives: visible again after `delay`, of any
    /// length (beyond SQS's 12-hour visibility limit too), with `error` recorded as its last
    /// error and its receive count back to 0, so `max_receives` no longer counts the receives
    /// before it. For a consumer that counts its own attempts and retries on a schedule longer
    /// than `max_receives` allows (webhook deliveries); `max_receives` still dead-letters a
    /// message that keeps being received without being acked, nacked or rescheduled (a consumer
    /// that crashes on it). The receipt is no longer current afterwards.
    ///
    /// SQS: the lease row becomes an outbox row again, due after `delay`, and the current copy
    /// is deleted; the relay publishes a fresh copy (same message id) when it is due. If the
    /// delete fails, the old copy comes back after its visibility timeout and is delivered in
    /// place of the fresh one (once: early, never twice).
    async fn reschedule(
        &self,
        receipt: &Receipt,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError>;

    /// Moves the message straight to the dead-letter store with `error` as its last error (for
    /// messages that can never succeed, e.g. invalid ones).
    async fn dead_letter(&self, receipt: &Receipt, error: &str) -> Result<(), QueueError>;

    /// Up to `limit` dead messages, most recently dead first.
    async fn dead(&self, limit: usize) -> Result<Vec<DeadMessage>, QueueError>;

    /// Moves dead messages back to the queue (all of them when `ids` is `None`, else those of the
    /// given ids that are dead): visible at once, `receive_count` 0, `sent_at` re-stamped to now
    /// (so a consumer that rejects old messages still processes a redriven backlog). The last
    /// error is kept. Returns how many moved.
    async fn redrive(&self, ids: Option<&[String]>) -> Result<u64, QueueError>;

    /// Counts and the age of the oldest live message.
    async fn stats(&self) -> Result<QueueStats, QueueError>;
}
