//! The SQL text of the outbox and the lease table (`queue_sqs_messages`, see `migrations/`).
//!
//! Times are bound as unix epoch milliseconds from this process's clock: unlike the SQL backend,
//! visibility is decided by SQS, so the table's times only order the outbox and estimate stats.
//! Receipt-checked statements match on (id, queue_url, receipt): a stale receipt matches no row,
//! which the caller turns into `LeaseLost`. Clearing `receipt` ends a lease; `handle` is left
//! in place because RETURNING yields the new row and the caller still needs the old handle.

use crate::Dialect;

pub(super) struct Statements {
    /// $1 id, $2 queue_url, $3 body, $4 priority, $5 now, $6 next_attempt_at.
    pub insert: String,
    /// $1 queue_url, $2 now, $3 claimed until, $4 limit. Returns id, body, priority, attempts.
    pub claim_outbox: String,
    /// $1 id, $2 now.
    pub mark_published: String,
    /// $1 id, $2 next attempt at.
    pub publish_failed: String,
    /// $1 queue_url. Earliest next_attempt_at of a pending row, if any.
    pub next_outbox: String,
    /// $1 id, $2 queue_url, $3 body, $4 priority, $5 sent_at, $6 now, $7 receipt token,
    /// $8 handle, $9 receive_count.
    pub lease: String,
    /// $1 id, $2 queue_url, $3 receipt. Returns handle.
    pub extend: String,
    /// $1 id, $2 queue_url, $3 receipt. Returns handle.
    pub ack: String,
    /// $1 id, $2 queue_url, $3 receipt, $4 error, $5 visible_at.
    /// Returns handle, receive_count, body, priority, sent_at.
    pub nack: String,
    /// $1 id, $2 queue_url, $3 receipt, $4 error, $5 now.
    /// Returns handle, receive_count, body, priority, sent_at.
    pub dead_letter: String,
    /// $1 id, $2 queue_url, $3 receipt: the lease ends, the last error is kept. Returns handle.
    pub release: String,
    /// $1 id, $2 queue_url, $3 receipt, $4 error, $5 publish at: back to the outbox, due at $5,
    /// receive count 0. Returns handle.
    pub reschedule: String,
    /// $1 id. Returns last_error, receive_count, dead_at.
    pub row: String,
    /// $1 id, $2 now: found in the DLQ (moved there by SQS's redrive policy).
    pub mark_dead: String,
    /// $1 id, $2 now: back in the source queue.
    pub redriven: String,
    /// $1 queue_url, $2 now. Returns pending outbox rows, nacked-and-hidden rows, oldest live
    /// sent_at.
    pub stats: String,
}

const OWNED: &str = "id = $1 AND queue_url = $2 AND receipt = $3";
const RETURNING: &str = "RETURNING handle, receive_count, body, priority, sent_at";

impl Statements {
    pub(super) fn new(dialect: Dialect) -> Statements {
        let t = "queue_sqs_messages";
        Statements {
            insert: format!(
                "INSERT INTO {t} (id, queue_url, body, priority, sent_at, published_at, \
                 next_attempt_at, attempts, receipt, handle, receive_count, visible_at, \
                 last_error, dead_at) \
                 VALUES ($1, $2, $3, $4, $5, NULL, $6, 0, NULL, NULL, 0, NULL, NULL, NULL)"
            ),
            // The outer `next_attempt_at <= $2` re-check makes a concurrent claimer of the same
            // row (Postgres re-evaluates it after the first commits) claim nothing.
            claim_outbox: format!(
                "UPDATE {t} SET next_attempt_at = $3 WHERE id IN (\
                   SELECT id FROM {t} WHERE queue_url = $1 AND published_at IS NULL \
                   AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $4 {}) \
                 AND published_at IS NULL AND next_attempt_at <= $2 \
                 RETURNING id, body, priority, attempts",
                dialect.skip_locked()
            ),
            mark_published: format!(
                "UPDATE {t} SET published_at = $2 WHERE id = $1 AND published_at IS NULL"
            ),
            publish_failed: format!(
                "UPDATE {t} SET attempts = attempts + 1, next_attempt_at = $2 \
                 WHERE id = $1 AND published_at IS NULL"
            ),
            next_outbox: format!(
                "SELECT MIN(next_attempt_at) FROM {t} WHERE queue_url = $1 AND published_at IS NULL"
            ),
            // A delivery of a message this table has never seen (sent by another producer) gets
            // a row too, so it can be fenced like any other.
            lease: format!(
                "INSERT INTO {t} (id, queue_url, body, priority, sent_at, published_at, \
                 next_attempt_at, attempts, receipt, handle, receive_count, visible_at, \
                 last_error, dead_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, 0, $7, $8, $9, NULL, NULL, NULL) \
                 ON CONFLICT (id) DO UPDATE SET receipt = excluded.receipt, \
                 handle = excluded.handle, receive_count = excluded.receive_count, \
                 sent_at = excluded.sent_at, visible_at = NULL, dead_at = NULL, \
                 published_at = COALESCE({t}.published_at, excluded.published_at)"
            ),
            extend: format!("UPDATE {t} SET receipt = receipt WHERE {OWNED} RETURNING handle"),
            ack: format!("DELETE FROM {t} WHERE {OWNED} RETURNING handle"),
            nack: format!(
                "UPDATE {t} SET receipt = NULL, last_error = $4, visible_at = $5 \
                 WHERE {OWNED} {RETURNING}"
            ),
            release: format!(
                "UPDATE {t} SET receipt = NULL, visible_at = NULL WHERE {OWNED} RETURNING handle"
            ),
            reschedule: format!(
                "UPDATE {t} SET receipt = NULL, last_error = $4, published_at = NULL, \
                 next_attempt_at = $5, attempts = 0, receive_count = 0, visible_at = NULL \
                 WHERE {OWNED} RETURNING handle"
            ),
            dead_letter: format!(
                "UPDATE {t} SET receipt = NULL, last_error = $4, dead_at = $5, \
                 visible_at = NULL WHERE {OWNED} {RETURNING}"
            ),
            row: format!("SELECT last_error, receive_count, dead_at FROM {t} WHERE id = $1"),
            mark_dead: format!(
                "UPDATE {t} SET dead_at = $2, receipt = NULL, visible_at = NULL \
                 WHERE id = $1 AND dead_at IS NULL"
            ),
            redriven: format!(
                "UPDATE {t} SET dead_at = NULL, receipt = NULL, visible_at = NULL, \
                 receive_count = 0, sent_at = $2 WHERE id = $1"
            ),
            stats: format!(
                "SELECT \
                   (SELECT COUNT(*) FROM {t} WHERE queue_url = $1 AND published_at IS NULL), \
                   (SELECT COUNT(*) FROM {t} WHERE queue_url = $1 AND published_at IS NOT NULL \
                      AND dead_at IS NULL AND receipt IS NULL AND visible_at > $2), \
                   (SELECT MIN(sent_at) FROM {t} WHERE queue_url = $1 AND dead_at IS NULL)"
            ),
        }
    }
}
