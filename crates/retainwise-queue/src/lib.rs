//! A durable, app-agnostic queue with Amazon SQS semantics, stored in SQL (SQLite or Postgres).
//!
//! # The contract (every backend, same conformance tests in `tests/conformance/`)
//!
//! * [`Queue::send_in`] writes a message inside the caller's transaction, so an application row
//!   and the message that announces it commit together or not at all. [`Queue::wake`] after the
//!   commit wakes receivers in this process at once; on Postgres the send also `NOTIFY`s in the
//!   caller's transaction, so receivers in other processes wake when it commits.
//! * [`Queue::receive`] long-polls for up to `wait` and leases each message it returns: the
//!   message gets a fresh [`Receipt`], its `receive_count` goes up by one, and it is invisible to
//!   every other receiver for [`QueueConfig::visibility_timeout`].
//! * The holder of the current receipt may [`extend`](Queue::extend) the lease (heartbeat),
//!   [`ack`](Queue::ack) (delete; [`Queue::ack_many`] and [`AckBatcher`] for many at once), [`nack`](Queue::nack) (visible again after a delay, usually
//!   [`backoff`]) or [`dead_letter`](Queue::dead_letter) the message.
//! * A message that would be received more than [`QueueConfig::max_receives`] times is moved to
//!   the dead-letter store instead, keeping its last error; [`Queue::redrive`] moves it back.
//!
//! # Invariants
//!
//! * **At-least-once.** A message is deleted only by `ack` with its current receipt. A worker
//!   that crashes simply stops extending; the message becomes visible again and is redelivered.
//!   Consumers must therefore be idempotent.
//! * **Fencing.** Every receive issues a new receipt and invalidates the previous one. `ack`,
//!   `extend`, `nack` and `dead_letter` with a receipt that is no longer current change nothing
//!   and return [`QueueError::LeaseLost`], so a worker whose lease expired and whose message was
//!   handed to someone else can never delete or reschedule the other worker's delivery.
//! * **No double delivery while leased.** The claim is one atomic SQL statement (SQLite: one
//!   `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`; Postgres: the same with
//!   `FOR UPDATE SKIP LOCKED`), so concurrent receivers in any number of processes never lease the
//!   same message at the same time.
//! * **Order.** High priority first, then oldest `sent_at`, then id (UUID v7, time-ordered). This
//!   is best-effort FIFO, as in SQS standard queues: a redelivered message keeps its place.
//! * **One clock.** Visibility is decided with the database's clock, not the workers', so
//!   workers on different machines agree on when a lease expires.
//!
//! A receipt whose lease has expired but whose message nobody has received again is still
//! accepted (as SQS does): the work was done, and refusing the ack would only cause a redelivery.
//!
//! # Start here
//!
//! [`connect`] opens a pool with the right settings for the URL, [`SqlQueue::new`] migrates and
//! returns a queue, and the [`Queue`] trait is everything a worker or an API handler needs.
//!
//! # Backends
//!
//! * [`SqlQueue`]: messages in SQLite or Postgres (the description above).
//! * [`SqsQueue`] ([`sqs`]): messages in Amazon SQS (or a compatible server), with a
//!   transactional outbox and a lease table in the application's SQL database; [`sqs::setup`]
//!   creates the queue and its dead-letter queue. Same contract; the differences SQS imposes
//!   (whole-second timeouts, no priority order) are listed in the [`sqs`] module docs.

#![warn(missing_docs)]

mod backoff;
mod batch;
mod config;
mod error;
mod message;
mod queue;
mod sql;
pub mod sqs;

pub use backoff::backoff;
pub use batch::{AckBatcher, PendingAck};
pub use config::QueueConfig;
pub use error::QueueError;
pub use message::{DeadMessage, Delivery, OutgoingMessage, Priority, QueueStats, Receipt};
pub use queue::{Queue, STOP_SLICE};
pub use sql::{connect, Dialect, SqlQueue};
/// The connection pool type [`connect`] returns; re-exported so callers need not name sqlx's
/// `Any` driver themselves.
pub use sqlx::{AnyConnection, AnyPool};
pub use sqs::{SqsConfig, SqsQueue};

/// The queue's migrations (`migrations/`: its tables in the caller's database), the same set
/// [`SqlQueue::new`] and [`SqsQueue::new`] apply. For a deployment that runs migrations as a
/// separate step and checks them at start; apply it with `set_ignore_missing(true)`, since the
/// application's own versions share sqlx's `_sqlx_migrations` table.
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!()
}

/// Applies [`migrator`] to `pool`, ignoring versions it does not know (the application's).
async fn migrate(pool: &AnyPool) -> Result<(), QueueError> {
    let mut migrator = migrator();
    migrator.set_ignore_missing(true);
    migrator.run(pool).await?;
    Ok(())
}
