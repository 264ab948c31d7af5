//! The one error type of the crate.

/// Everything a queue operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The receipt is not (or no longer) the message's current lease: the message was received
    /// again by someone else after the visibility timeout, or was already acked, nacked or
    /// dead-lettered. Nothing was changed. `message_id` is `None` when the receipt could not even
    /// be parsed.
    #[error("lease lost: the receipt for message {} is no longer current", .message_id.as_deref().unwrap_or("<unparseable receipt>"))]
    LeaseLost {
        /// The message the receipt was for, if the receipt was well-formed.
        message_id: Option<String>,
    },
    /// The database failed or refused a statement.
    #[error("queue database error")]
    Database(#[from] sqlx::Error),
    /// The queue's migrations could not be applied.
    #[error("queue migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is neither `sqlite:` nor `postgres://`/`postgresql://`.
    #[error("unsupported database URL (its scheme must be sqlite:// or postgres://)")]
    InvalidUrl(String),
    /// An SQS request failed or returned something unusable (SQS backend only). `message` has the
    /// whole error chain (service error code and message, or the connection error).
    #[error("SQS {operation} failed: {message}")]
    Sqs {
        /// The SQS API action, e.g. `"ReceiveMessage"`.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Creating the SQLite file or its parent folder failed.
    #[error("cannot create the SQLite database file {path}: {source}")]
    Io {
        /// The file or folder that could not be created.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl QueueError {
    /// True for [`QueueError::LeaseLost`]: the caller should stop working on the message (someone
    /// else may hold it now) and must not retry the operation.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, QueueError::LeaseLost { .. })
    }
}
