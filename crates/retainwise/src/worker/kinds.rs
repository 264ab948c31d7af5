//! The registration list: every kind of job the worker runs. The dispatcher and the dead-letter
//! sweeper both read [`KINDS`], so a kind registered here is run, retried, dead-lettered and
//! swept like every other. Adding a kind: one file implementing [`Job`](super::Job) and one line
//! below.

use futures::future::BoxFuture;
use retainwise_queue::{DeadMessage, Delivery};

use super::{driver, Job, Outcome, WorkerOptions};
use crate::app::App;
use crate::message::{PredictionJob, TrainingJob};

/// Every kind, by its `kind` name.
pub const KINDS: &[Kind] = &[
    Kind::of::<PredictionJob>(),
    Kind::of::<TrainingJob>(),
    Kind::of::<super::WebhookDelivery>(),
    Kind::of::<super::pieces::PieceJob>(),
    Kind::of::<super::merge::MergeJob>(),
    Kind::of::<super::deletion::DeletePrediction>(),
    Kind::of::<super::deletion::DeleteOrganisation>(),
    Kind::of::<super::RetentionRun>(),
    Kind::of::<crate::erasure::EraseJob>(),
];

/// One registered kind: its name and its life cycle, monomorphised for the dispatcher.
pub struct Kind {
    /// The `kind` field of its messages.
    pub name: &'static str,
    /// A long job (see [`Job::LONG`]).
    pub long: bool,
    /// Runs one delivery through the driver.
    pub(super) process: for<'a> fn(
        &'a App,
        &'a WorkerOptions,
        Delivery,
        tokio::time::Instant,
    ) -> BoxFuture<'a, Outcome>,
    /// Closes the job a dead message names; true when a record changed.
    pub(super) close_dead:
        for<'a> fn(&'a App, &'a DeadMessage) -> BoxFuture<'a, Result<bool, sqlx::Error>>,
}

impl Kind {
    /// The entry of kind `J`.
    pub const fn of<J: Job>() -> Self {
        Self {
            name: J::KIND,
            long: J::LONG,
            process: process::<J>,
            close_dead: close_dead::<J>,
        }
    }
}

fn process<'a, J: Job>(
    app: &'a App,
    options: &'a WorkerOptions,
    delivery: Delivery,
    received_at: tokio::time::Instant,
) -> BoxFuture<'a, Outcome> {
    Box::pin(driver::drive::<J>(app, options, delivery, received_at))
}

fn close_dead<'a, J: Job>(
    app: &'a App,
    dead: &'a DeadMessage,
) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
    Box::pin(driver::close_dead::<J>(app, dead))
}

/// Queues a job of kind `J` on `conn`, the caller's transaction: the message commits with the
/// caller's rows (the job's record, or the outcome a follow-up job follows) or not at all. The
/// record the payload names (inserted before, on `conn`) gets the message id in
/// `queue_message_id`. Returns the message id.
///
/// Errors: the queue's (the database's, for the SQL queue and the SQS outbox).
pub async fn enqueue<J: Job>(
    app: &App,
    conn: &mut sqlx::AnyConnection,
    payload: &J::Payload,
    priority: retainwise_queue::Priority,
) -> Result<String, retainwise_queue::QueueError> {
    let body = crate::message::encode(J::KIND, payload);
    let id = app
        .queue
        .send_in(conn, &retainwise_queue::OutgoingMessage { body, priority })
        .await?;
    if let Some(record) = J::record_named(payload) {
        record.set_message_id(&mut *conn, &id).await?;
    }
    Ok(id)
}

/// The registered kind a message body names (see [`crate::message::kind_of`]); `None` for a
/// body that names none, or a kind nobody registered.
pub fn of(body: &str) -> Option<&'static Kind> {
    let name = crate::message::kind_of(body)?;
    KINDS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_unique_and_a_kindless_message_is_a_prediction() {
        let mut names: Vec<_> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
        assert_eq!(of(r#"{"prediction_id": "x"}"#).unwrap().name, "predict");
        assert_eq!(of(r#"{"kind": "train"}"#).unwrap().name, "train");
        assert!(of(r#"{"kind": "nonsense"}"#).is_none());
        assert!(of("hello").is_none());
    }
}
