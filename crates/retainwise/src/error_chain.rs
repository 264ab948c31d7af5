//! An error with its causes, for logs and stored error messages.
//!
//! `tracing`'s `error = %e` and `e.to_string()` print only the outermost message: a queue
//! failure logs as `queue database error` and the reason (`Connection refused`, `the database
//! system is starting up`) is lost in `source()`. [`Chain`] prints the whole chain, outermost
//! first, joined by `: ` — the same shape as anyhow's `{:#}`, used for `anyhow::Error`s.

use std::error::Error;
use std::fmt;

/// Displays an error followed by each of its `source()`s: `outer: cause: root cause`.
///
/// A cause whose text the message before it already ends with is not repeated (errors that
/// format their source into their own message, `#[error("storage: {0}")]`, would otherwise
/// print it twice).
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !text.is_empty() && !shown.ends_with(&text) {
                write!(f, ": {text}")?;
                shown = text;
            }
            next = cause.source();
        }
        Ok(())
    }
}

/// [`Chain`] as a `String` (for error messages stored with a job).
pub fn chain(error: &(dyn Error + 'static)) -> String {
    Chain(error).to_string()
}

/// [`Chain`] of an `anyhow::Error`: its contexts and causes, each text once. anyhow's own
/// `{:#}` prints every cause even when the message before it already quotes it, so a queue
/// failure logged as `queue database error: …: Connection refused: Connection refused`.
pub fn chain_anyhow(error: &anyhow::Error) -> String {
    let error: &(dyn Error + 'static) = error.as_ref();
    chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("object storage: {0}")]
    struct Inlined(#[source] std::io::Error);

    #[test]
    fn a_queue_database_error_shows_its_cause() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = retainwise_queue::QueueError::Database(sqlx::Error::Io(refused));
        // The outer message alone says nothing about why.
        assert_eq!(e.to_string(), "queue database error");
        assert_eq!(
            chain(&e),
            "queue database error: error communicating with database: Connection refused"
        );
    }

    #[test]
    fn a_doubled_text_collapses_to_one() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = anyhow::Error::new(sqlx::Error::Io(refused)).context("database");
        // What anyhow prints: the root cause twice ("X: X").
        assert_eq!(
            format!("{e:#}"),
            "database: error communicating with database: Connection refused: Connection refused"
        );
        assert_eq!(
            chain_anyhow(&e),
            "database: error communicating with database: Connection refused"
        );
        // A context that repeats its source word for word is shown once too.
        let same = anyhow::Error::new(std::io::Error::other("disk full")).context("disk full");
        assert_eq!(chain_anyhow(&same), "disk full");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = Inlined(std::io::Error::other("disk full"));
        assert_eq!(chain(&e), "object storage: disk full");
    }
}
