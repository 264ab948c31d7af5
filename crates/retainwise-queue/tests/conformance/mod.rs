//! The queue contract as executable checks, written once against `&dyn Queue`.
//!
//! A backend test file implements [`Backend`] and expands [`conformance_suite!`] to get one
//! `#[tokio::test]` per case. A new backend (Postgres, SQS, …) passes when this whole list passes.

#![allow(dead_code)] // each test binary uses the suite, not necessarily every helper

mod cases;

pub use cases::*;

use retainwise_queue::{AnyPool, Queue, QueueConfig};
use std::sync::Arc;

/// A way to create queues for one test.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// `handles` independent handles to one new, empty queue, each with its own connections (as
    /// separate processes would have), all with `config` (the backend may change `config.name` to
    /// isolate tests that share a database).
    async fn open(&self, config: QueueConfig, handles: usize) -> Fixture;

    /// What the backend can promise where the contract depends on the storage engine. The SQL
    /// backends promise everything (the default); a case that needs a capability the backend
    /// lacks prints why (see [`skip_case`]) and passes without checking.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
}

/// Backend capabilities some cases depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Receives return High priority first, then oldest first. SQS standard queues have no
    /// priority and only best-effort order.
    pub priority_order: bool,
    /// Visibility timeouts below one second are honoured. SQS counts whole seconds (minimum 1
    /// for a lease), and moves a message to its dead-letter queue only at the next receive.
    pub sub_second_visibility: bool,
    /// [`retainwise_queue::Queue::release`] takes the receive back out of `receive_count`. SQS
    /// counts receives itself and no API lowers the count.
    pub uncounted_release: bool,
}

impl Capabilities {
    /// Everything (the SQL backends).
    pub const ALL: Capabilities = Capabilities {
        priority_order: true,
        sub_second_visibility: true,
        uncounted_release: true,
    };
}

/// Prints a loud line saying `case` was skipped on this backend and why.
pub fn skip_case(case: &str, why: &str) {
    shout(&format!(
        "SKIPPED conformance case {case} on this backend: {why}"
    ));
}

/// What [`Backend::open`] returns.
pub struct Fixture {
    /// The handles, at least one.
    pub queues: Vec<Arc<dyn Queue>>,
    /// A pool whose connections `send_in` accepts for `queues[0]`.
    pub pool: AnyPool,
    /// Kept alive as long as the fixture (e.g. a temporary folder).
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

impl Fixture {
    /// The first handle.
    pub fn queue(&self) -> &dyn Queue {
        self.queues[0].as_ref()
    }
}

/// Prints `message` on the real stderr even though the test harness captures output, so a
/// skipped backend is impossible to miss.
pub fn shout(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** {message} ***\n");
}

/// Expands to one `#[tokio::test]` per conformance case. `$backend` is an expression of type
/// `Option<impl Backend>`; `None` skips (the expression should say why, e.g. with [`shout`]).
macro_rules! conformance_suite {
    ($backend:expr) => {
        conformance_suite!(@cases $backend;
            send_receive_ack,
            receive_returns_at_most_max,
            bodies_round_trip,
            long_poll_wakes_on_send,
            long_poll_wakes_on_committed_send_in,
            empty_receive_waits_then_returns_nothing,
            visibility_expiry_redelivers_with_new_receipt,
            extend_keeps_message_invisible,
            stale_receipt_is_rejected_and_deletes_nothing,
            nack_makes_visible_after_delay,
            reschedule_delays_and_starts_a_fresh_round_of_receives,
            dead_letter_after_max_receives_keeps_last_error,
            dead_letter_after_max_receives_by_expiry,
            spent_message_at_the_head_does_not_hide_live_ones,
            dead_letter_directly,
            dead_lists_newest_first,
            redrive_all_restamps_and_resets,
            redrive_by_id,
            priority_high_first_then_oldest,
            stats_counts_every_bucket,
            concurrent_receivers_never_share_a_message,
            send_in_rolled_back_sends_nothing,
            ack_many_acks_current_receipts_and_reports_stale_ones,
            ack_batcher_acks_current_receipts_and_reports_stale_ones,
            release_hands_back_at_once_without_counting,
            receive_until_ends_its_wait_when_stopped
        );
    };
    (@cases $backend:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(backend) = $backend {
                    crate::conformance::$case(&backend).await;
                }
            }
        )+
    };
}
pub(crate) use conformance_suite;
