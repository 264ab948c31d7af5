//! The text a job's owner sees when it did not complete (`error_message` of a prediction or a
//! training, shown by the API and the web pages).
//!
//! Only a permanent error's text is written for the owner (it names what to fix in the file).
//! Everything else — storage, database and local-disk errors, queue reasons — may carry server
//! paths, S3 endpoints, bucket names or raw driver text (internal URLs stay in the log), so the owner gets a plain sentence instead and the log keeps the cause chain.

use super::JobError;

/// Shown while a job waits for its retry after a transient failure (the database layer
/// prefixes it with `retrying after: `).
pub const RETRYING: &str =
    "a temporary problem on the server (its storage, database or local disk) \
     interrupted the job; it will be tried again automatically";

/// Shown when a job whose queue message was malformed was closed (the details are logged).
pub const INVALID_MESSAGE: &str = "invalid queue message: the server could not read this job's \
     queue message; upload the file again, or contact the operator if it happens again";

/// The text stored for a job that did not complete because of `error`: a permanent error's own
/// sentence, or [`RETRYING`] for a transient one (a panic's message included: it may quote
/// internals).
pub fn for_owner(error: &JobError) -> std::borrow::Cow<'static, str> {
    if error.is_permanent() {
        error.to_string().into()
    } else if let JobError::Delivery(why) = error {
        // Our own sentence about the receiving endpoint (its status code, a refused address,
        // a timeout), with credentials removed: the owner's to act on.
        format!("{why}; it will be tried again on the delivery schedule").into()
    } else if let JobError::Waiting(why) = error {
        format!("{why}; it will be tried again automatically").into()
    } else if storage_full(error) {
        format!("{DISK_FULL}; it will be tried again automatically").into()
    } else {
        RETRYING.into()
    }
}

/// Said instead of the general sentence when the cause is a full disk or quota: the one server
/// problem whose owner-side fix (wait for the operator) is worth naming.
pub const DISK_FULL: &str = "the server's storage is full, so the job could not store what it \
     needs; the operator must free space";

/// Whether `error` was a full disk or an exceeded quota somewhere in its cause chain.
pub fn storage_full(error: &JobError) -> bool {
    crate::storage::is_storage_full(error)
}

/// The text stored (after the database layer's `dead-lettered: ` prefix) for a job that failed
/// on its last allowed delivery, `attempts` deliveries in all: the receiving endpoint's fault
/// when `last` says so, a full disk, else a server problem.
pub fn gave_up(attempts: u32, last: Option<&JobError>) -> String {
    if let Some(JobError::Delivery(why)) = last {
        return format!(
            "after {attempts} attempts: {why}; send it again from the Webhooks page (or \
             retainwise queue redrive) once the endpoint answers"
        );
    }
    if last.is_some_and(storage_full) {
        return format!(
            "after {attempts} attempts: {DISK_FULL}. Upload the file again once it has, or \
             contact the operator"
        );
    }
    format!(
        "after {attempts} attempts: a problem on the server (its storage, database or local disk) \
         kept the job from finishing; the details are in the server's log. Upload the file again \
         later, or contact the operator if it keeps failing"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transient_error_is_not_shown_but_a_permanent_one_is() {
        let internal = JobError::io("reading the download")(std::io::Error::other(
            "Unable to open file /srv/data/uploads/x.csv",
        ));
        assert_eq!(for_owner(&internal), RETRYING);
        let panicked = JobError::Panicked("index out of bounds at /srv/src/x.rs".to_owned());
        assert_eq!(for_owner(&panicked), RETRYING);
        assert!(!gave_up(3, None).contains('/'));
        let full = JobError::io("writing the result")(std::io::Error::from(
            std::io::ErrorKind::StorageFull,
        ));
        assert!(for_owner(&full).starts_with(DISK_FULL));
        assert!(gave_up(3, Some(&full)).contains(DISK_FULL));
        let refused = JobError::Delivery("webhook endpoint we_1 answered HTTP 503".into());
        assert!(for_owner(&refused).starts_with("webhook endpoint we_1 answered HTTP 503"));
        assert!(gave_up(8, Some(&refused)).contains("HTTP 503"));
        let permanent = JobError::Rejected("no usable rows: add a header".to_owned());
        assert_eq!(for_owner(&permanent), "no usable rows: add a header");
    }
}
