//! Why a job did not complete. Each error keeps its cause (logged with its whole chain, stored
//! as the queue message's last error) and says itself whether a retry can help:
//! [`JobError::is_permanent`] is the one place that decides between failing a job and retrying
//! it.

use crate::registry::RegistryError;
use crate::storage::StorageError;

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input is at fault and the job says so in a sentence for its owner that names what
    /// to fix (a file gone from storage, results over the size limit, a time budget).
    #[error("{0}")]
    Rejected(String),
    /// Scoring refused the file (permanent) or could not read or write it (transient).
    #[error(transparent)]
    Score(#[from] retainwise_model::ScoreError),
    /// Training refused the file (permanent) or could not read it (transient).
    #[error(transparent)]
    Train(#[from] retainwise_model::TrainError),
    /// The model to use is unknown, missing or broken (permanent), or could not be loaded
    /// (transient).
    #[error(transparent)]
    Model(#[from] RegistryError),
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database failed.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// Local disk I/O failed; `doing` says what the job was doing.
    #[error("{doing}")]
    Io {
        /// E.g. `"reading the download"`.
        doing: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task the job ran on was lost (it panicked or was cancelled).
    #[error("the {what} task stopped unexpectedly")]
    Task {
        /// E.g. `"scoring"`.
        what: &'static str,
        /// The cause.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The job's run panicked; the text is the panic's message.
    #[error("the job panicked: {0}")]
    Panicked(String),
    /// A webhook was not accepted: a non-2xx answer, a timeout, a refused or unreachable
    /// address. Retried: the receiver may be back later.
    #[error("{0}")]
    Delivery(String),
    /// The job must wait for other work to finish first (an erasure for the predictions that
    /// were queued before it): a sentence for the owner, with no customer data. Retried.
    #[error("{0}")]
    Waiting(String),
    /// The attempt no longer holds the job (another attempt took it over, or it was cancelled).
    #[error("this attempt no longer holds the job")]
    Stopped,
}

impl JobError {
    /// True when retrying cannot help (the input is at fault): the job fails at once with
    /// [`JobError`]'s text for its owner. Everything else is retried with backoff, then
    /// dead-lettered.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Rejected(_) => true,
            Self::Score(e) => e.is_permanent(),
            Self::Train(e) => !matches!(e, retainwise_model::TrainError::Io(_)),
            Self::Model(e) => e.is_permanent(),
            Self::Storage(_)
            | Self::Database(_)
            | Self::Io { .. }
            | Self::Task { .. }
            | Self::Panicked(_)
            | Self::Delivery(_)
            | Self::Waiting(_)
            | Self::Stopped => false,
        }
    }

    /// An [`JobError::Io`] while `doing` something.
    pub fn io(doing: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { doing, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_is_permanent_the_infrastructure_transient() {
        assert!(JobError::Rejected("fix the file".into()).is_permanent());
        assert!(JobError::Score(retainwise_model::ScoreError::Empty).is_permanent());
        assert!(JobError::Model(RegistryError::Unknown("m".into())).is_permanent());
        let disk = std::io::Error::other("disk full");
        assert!(!JobError::io("writing the results file")(disk).is_permanent());
        assert!(!JobError::Panicked("boom".into()).is_permanent());
        assert!(!JobError::Storage(StorageError::NotFound("x".into())).is_permanent());
        let chain = crate::error_chain::chain(&JobError::io("reading the download")(
            std::io::Error::other("Input/output error"),
        ));
        assert_eq!(chain, "reading the download: Input/output error");
    }
}
