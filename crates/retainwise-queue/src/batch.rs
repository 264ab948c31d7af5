//! Batched acknowledgements: many handlers, one [`Queue::ack_many`] per few milliseconds.
//!
//! At thousands of jobs per second a `DELETE` per job is most of the database's work. An
//! [`AckBatcher`] collects the receipts of finished jobs from any number of tasks and acks them
//! together. Each message is still deleted only after its job finished and only with its current
//! receipt (fencing is per receipt inside `ack_many`); what batching adds is a delay of up to
//! `window` between "job done" and "message deleted". A crash inside that window means the
//! messages are redelivered after their lease — the at-least-once contract every consumer
//! already handles (idempotency).

use crate::{Queue, QueueError, Receipt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How many times a failed `ack_many` is retried (with [`crate::backoff`]) before its waiters
/// get the error. The leases usually outlast a short database hiccup.
const FLUSH_ATTEMPTS: u32 = 4;

/// Concurrent `ack_many` statements per batcher.
const FLUSHES_IN_FLIGHT: usize = 2;

struct Pending {
    receipt: Receipt,
    reply: oneshot::Sender<Result<(), QueueError>>,
}

/// Collects acks and flushes them with [`Queue::ack_many`]: a batch starts with the first ack
/// after the previous flush and is sent `window` later, or as soon as it holds `max_batch`
/// receipts. Up to two flushes run at once (on different connections), so
/// collecting the next batch does not wait for the database to finish the previous one.
///
/// Dropping the batcher (or [`AckBatcher::close`]) flushes what is queued before the task ends.
pub struct AckBatcher {
    tx: mpsc::UnboundedSender<Pending>,
    task: tokio::task::JoinHandle<()>,
}

/// The outcome of one batched ack: await [`PendingAck::wait`] for exactly what [`Queue::ack`]
/// would have returned, or drop it to fire and forget (a stale receipt is then logged).
#[must_use = "wait for the result, or drop it explicitly to fire and forget"]
pub struct PendingAck(oneshot::Receiver<Result<(), QueueError>>);

impl PendingAck {
    /// Waits for the flush that carries this receipt: `Ok(())` (deleted),
    /// [`QueueError::LeaseLost`] (stale: nothing changed), or the database error of a flush that
    /// failed after retries (the message is then redelivered after its lease).
    pub async fn wait(self) -> Result<(), QueueError> {
        self.0
            .await
            .unwrap_or(Err(QueueError::Database(sqlx::Error::WorkerCrashed)))
    }
}

impl AckBatcher {
    /// Starts the flushing task on the current tokio runtime. `window` is the longest an ack
    /// waits for company (graphile_worker's `complete_job_batch_delay` is the same idea; 5 ms
    /// is a good start), `max_batch` (at least 1) flushes early when that many are waiting.
    pub fn spawn(queue: Arc<dyn Queue>, window: Duration, max_batch: usize) -> AckBatcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(queue, rx, window, max_batch.max(1)));
        AckBatcher { tx, task }
    }

    /// Queues `receipt` for the next flush. Returns at once.
    pub fn ack(&self, receipt: Receipt) -> PendingAck {
        let (reply, rx) = oneshot::channel();
        // Fails only if the task is gone (it panicked); the PendingAck then reports it.
        let _ = self.tx.send(Pending { receipt, reply });
        PendingAck(rx)
    }

    /// Flushes everything queued and waits until it has been acked.
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

async fn run(
    queue: Arc<dyn Queue>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    window: Duration,
    max_batch: usize,
) {
    let mut flushing = tokio::task::JoinSet::new();
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::with_capacity(max_batch.min(1024));
        batch.push(first);
        let deadline = Instant::now() + window;
        while batch.len() < max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(pending)) => batch.push(pending),
                // Closed (flush, then the outer loop ends) or the window is over.
                Ok(None) | Err(_) => break,
            }
        }
        while flushing.len() >= FLUSHES_IN_FLIGHT {
            flushing.join_next().await;
        }
        let queue = queue.clone();
        flushing.spawn(async move { flush(queue.as_ref(), batch).await });
    }
    while flushing.join_next().await.is_some() {}
}

async fn flush(queue: &dyn Queue, mut batch: Vec<Pending>) {
    let receipts: Vec<Receipt> = batch.iter().map(|p| p.receipt.clone()).collect();
    let mut attempt = 0;
    let results = loop {
        attempt += 1;
        match queue.ack_many(&receipts).await {
            Ok(results) => break results.into_iter().map(Some).collect::<Vec<_>>(),
            Err(error) if attempt < FLUSH_ATTEMPTS => {
                let delay =
                    crate::backoff(attempt, Duration::from_millis(20), Duration::from_secs(1));
                tracing::warn!(%error, attempt, "batched ack failed; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                tracing::error!(%error, acks = receipts.len(), "batched ack failed; the messages will be redelivered");
                break receipts.iter().map(|_| None).collect();
            }
        }
    };
    for (pending, result) in batch.drain(..).zip(results) {
        // sqlx errors are not Clone: a failed flush reports a fresh one per waiter.
        let result = result.unwrap_or(Err(QueueError::Database(sqlx::Error::Protocol(
            "batched ack failed after retries (see the log); the message will be redelivered"
                .to_owned(),
        ))));
        if let Err(Err(error)) = pending.reply.send(result) {
            // Fire and forget: nobody waits, so say it here.
            tracing::warn!(receipt = %pending.receipt, %error, "batched ack was not applied");
        }
    }
}
