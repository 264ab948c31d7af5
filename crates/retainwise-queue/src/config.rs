//! Settings of one logical queue.

use std::time::Duration;

/// Settings of one logical queue. Several queues (different `name`s) may share the same tables.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Logical queue name; messages of other names in the same tables are invisible to this
    /// queue. Default `"predictions"`.
    pub name: String,
    /// How long a received message stays invisible unless extended. Default 30 s.
    /// Stored with millisecond precision.
    pub visibility_timeout: Duration,
    /// A message received this many times is dead-lettered when it next becomes visible, instead
    /// of being delivered again. Default 3. `0` is treated as 1.
    pub max_receives: u32,
    /// While long-polling, how often to look for messages sent by *other* processes (sends in
    /// this process wake receivers at once). Default 1 s.
    pub poll_interval: Duration,
    /// Whether [`crate::SqlQueue::new`] applies the queue's migrations. Default true; false
    /// for a process started after a separate migrate step (`retainwise --no-migrate`), which
    /// must change no schema: it then expects the tables to exist.
    pub migrate: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            name: "predictions".to_owned(),
            visibility_timeout: Duration::from_secs(30),
            max_receives: 3,
            poll_interval: Duration::from_secs(1),
            migrate: true,
        }
    }
}
