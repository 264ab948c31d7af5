//! The values that go into and come out of a queue.

use std::fmt;
use std::time::{Duration, SystemTime};

/// Delivery priority. [`Priority::High`] messages are received before any
/// [`Priority::Normal`] one that is visible at the same time; within a priority, oldest first.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// The default.
    #[default]
    Normal,
    /// Jumps ahead of every normal message.
    High,
}

impl Priority {
    /// `"normal"` or `"high"` (the same spelling serde uses).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message to send. The body is opaque to the queue (the application usually puts JSON in it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The payload, stored and returned byte for byte.
    pub body: String,
    /// Delivery priority.
    pub priority: Priority,
}

impl OutgoingMessage {
    /// A normal-priority message.
    pub fn new(body: impl Into<String>) -> Self {
        OutgoingMessage {
            body: body.into(),
            priority: Priority::Normal,
        }
    }

    /// The same message with another priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// An opaque lease token for one delivery of one message. Each receive issues a new one and
/// invalidates the previous one; only the current receipt can ack, extend, nack or dead-letter.
///
/// It is a plain string so an application can store it (e.g. next to the job it fences) and
/// rebuild it with [`Receipt::new`]; its format is private to the backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Receipt(String);

impl Receipt {
    /// Wraps a token previously obtained from [`Receipt::as_str`]. A token that was never issued
    /// is simply not current: operations with it return [`crate::QueueError::LeaseLost`].
    pub fn new(token: impl Into<String>) -> Self {
        Receipt(token.into())
    }

    /// The token, for logging or storing.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Receipt {
    fn from(token: String) -> Self {
        Receipt(token)
    }
}

/// One received message, leased to the receiver until the visibility timeout (or the last
/// [`crate::Queue::extend`]) runs out.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Stable id of the message (a UUID), the same on every delivery.
    pub message_id: String,
    /// The body as sent.
    pub body: String,
    /// The lease token of this delivery.
    pub receipt: Receipt,
    /// How many times the message has been received, this delivery included (1 on the first).
    pub receive_count: u32,
    /// When the message was sent (or last redriven), by the database clock, millisecond precision.
    pub sent_at: SystemTime,
    /// The priority it was sent with.
    pub priority: Priority,
}

/// A message in the dead-letter store.
#[derive(Clone, Debug)]
pub struct DeadMessage {
    /// Stable id of the message; pass it to [`crate::Queue::redrive`].
    pub message_id: String,
    /// The body as sent.
    pub body: String,
    /// How many times it was received before it died.
    pub receive_count: u32,
    /// The error of the last `nack` or `dead_letter`, if any.
    pub last_error: Option<String>,
    /// When it was sent (or last redriven).
    pub sent_at: SystemTime,
    /// When it was dead-lettered.
    pub dead_at: SystemTime,
}

/// A snapshot of one queue. Every live message is in exactly one of `depth`, `in_flight`,
/// `delayed`; a message that has used up its receives and is visible again counts as `dead`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages a receive would return now.
    pub depth: u64,
    /// Messages leased to a receiver whose lease has not expired.
    pub in_flight: u64,
    /// Messages not leased but not visible yet (nacked with a delay).
    pub delayed: u64,
    /// Messages in the dead-letter store.
    pub dead: u64,
    /// Age of the oldest live (not dead) message, by `sent_at`; `None` when there is none.
    pub oldest_age: Option<Duration>,
}
