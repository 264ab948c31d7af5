//! Cross-process wake-ups on Postgres: `LISTEN/NOTIFY`.
//!
//! Every statement that makes a message visible at once (send, nack with no delay, redrive) also
//! runs `pg_notify(CHANNEL, queue name)` in the same transaction; Postgres delivers a
//! notification only when that transaction commits, and never for a rolled-back one
//! (PostgreSQL 15 manual, "NOTIFY"). One listener task per [`super::SqlQueue`] holds a dedicated
//! connection (not one of the pool's, which a listener would pin forever), `LISTEN`s on
//! [`CHANNEL`] and wakes this handle's long-polling receivers when a notification names its
//! queue.
//!
//! The listener is an accelerator, not the source of truth: receivers still poll every
//! `poll_interval`, so while the listener is down (database restart, network cut) messages are
//! found by polling. The task reconnects with capped exponential backoff and, once listening
//! again, wakes every receiver once, because notifications sent while it was away are lost.

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The one channel every queue notifies on; the payload is the queue name. One channel rather
/// than one per queue because `LISTEN` takes an identifier of at most 63 bytes, and queue names
/// are free text of any length.
pub(crate) const CHANNEL: &str = "queue_messages";

/// Reconnection backoff: full jitter, cap doubling from the first to the last value
/// ([`crate::backoff`]).
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// The running listener of one queue handle; dropping it stops the task and closes its
/// connection.
pub(crate) struct Listener {
    task: tokio::task::JoinHandle<()>,
    listening: Arc<AtomicBool>,
}

impl Listener {
    /// Starts the task. It connects in the background, so a database that is down at start-up
    /// delays wake-ups, not the caller.
    pub(crate) fn spawn(options: PgConnectOptions, queue: String, wakeups: Arc<Notify>) -> Self {
        let listening = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run(options, queue, wakeups, listening.clone()));
        Listener { task, listening }
    }

    /// True while the task holds a connection with `LISTEN` active.
    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    options: PgConnectOptions,
    queue: String,
    wakeups: Arc<Notify>,
    listening: Arc<AtomicBool>,
) {
    let mut failures = 0u32;
    loop {
        let error = listen_until_lost(&options, &queue, &wakeups, &listening, &mut failures).await;
        listening.store(false, Ordering::Release);
        failures = failures.saturating_add(1);
        let delay = crate::backoff(failures, RECONNECT_MIN, RECONNECT_MAX);
        tracing::warn!(
            queue = %queue,
            error = %error,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "queue listener lost its connection; receivers fall back to polling"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Connects, listens and forwards notifications until the connection fails; returns why.
/// Resets `failures` once listening succeeded, so the next outage starts the backoff afresh.
async fn listen_until_lost(
    options: &PgConnectOptions,
    queue: &str,
    wakeups: &Notify,
    listening: &AtomicBool,
    failures: &mut u32,
) -> sqlx::Error {
    // A pool of one connection that never expires: PgListener only uses it to (re)connect.
    let pool = match PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await
    {
        Ok(pool) => pool,
        Err(e) => return e,
    };
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(listener) => listener,
        Err(e) => return e,
    };
    // Reconnection is ours (with backoff), not the listener's own immediate retry.
    listener.eager_reconnect(false);
    if let Err(e) = listener.listen(CHANNEL).await {
        return e;
    }
    listening.store(true, Ordering::Release);
    *failures = 0;
    // Anything sent while we were not listening produced no wake-up: look now.
    wakeups.notify_waiters();
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if notification.payload() == queue {
                    wakeups.notify_waiters();
                }
            }
            Ok(None) => return sqlx::Error::PoolClosed,
            Err(e) => return e,
        }
    }
}
