//! The SQL text of every queue operation, built once per dialect.
//!
//! Parameter `$1` is always the queue name, so logical queues sharing the table never touch
//! each other's rows. Receipt-checked statements match on (queue, id, receipt, not dead): a
//! stale receipt matches no row, which the caller turns into `LeaseLost`.

use super::listen::CHANNEL;
use super::Dialect;

pub(crate) struct Statements {
    /// $2 id, $3 body, $4 priority. On Postgres it also notifies [`CHANNEL`] with the queue
    /// name, in the same statement (one round trip), so the wake-up fires when the caller's
    /// transaction commits. Returns one BIGINT row on Postgres, no row on SQLite.
    pub insert: String,
    /// Postgres only: notifies [`CHANNEL`] for queue $1 (after a nack with no delay or a
    /// redrive). Returns one BIGINT row.
    pub notify: Option<String>,
    /// $2 max_receives. Dead-letters visible messages that used up their receives.
    pub sweep: String,
    /// $2 receipt token, $3 visibility ms, $4 max_receives, $5 limit.
    /// Returns id, body, receive_count, sent_at, priority, receipt.
    pub claim: String,
    /// Milliseconds until the next live message becomes visible (<= 0: one is visible now);
    /// no row when there is no live message.
    pub next_visible_in: String,
    /// $2 id, $3 receipt, $4 timeout ms.
    pub extend: String,
    /// $2 id, $3 receipt.
    pub ack: String,
    /// $2 id, $3 receipt, $4 delay ms, $5 error.
    pub nack: String,
    /// $2 id, $3 receipt, $4 error.
    pub dead_letter: String,
    /// $2 limit. Returns id, body, receive_count, last_error, sent_at, dead_at.
    pub dead: String,
    pub redrive_all: String,
    /// $2 id.
    pub redrive_one: String,
    /// $2 max_receives. Returns depth, in_flight, delayed, dead, oldest sent_at, now.
    pub stats: String,
}

/// Receipts per `ack_many` statement: 2 parameters each keeps far below the 32,766 host
/// parameters of SQLite (since 3.32) and Postgres' 65,535.
pub(crate) const ACK_MANY_CHUNK: usize = 512;

/// `DELETE` of the messages whose current receipt is one of `n` receipts: $1 queue, $2..=$n+1
/// the message ids, $n+2..=$2n+1 the receipts. Returns the receipts that matched (the rest are
/// stale). Matching on both lists is exact because a receipt starts with its own message's id:
/// a row matches only if its own current receipt is listed; the id list lets the database find
/// the rows by primary key.
pub(crate) fn ack_many(n: usize) -> String {
    let ids = (0..n).map(|i| format!("${}", i + 2)).collect::<Vec<_>>();
    let receipts = (0..n)
        .map(|i| format!("${}", n + i + 2))
        .collect::<Vec<_>>();
    format!(
        "DELETE FROM queue_messages WHERE queue = $1 AND dead_at IS NULL \
         AND id IN ({}) AND receipt IN ({}) RETURNING receipt",
        ids.join(", "),
        receipts.join(", ")
    )
}

const OWNED: &str = "queue = $1 AND id = $2 AND receipt = $3 AND dead_at IS NULL";

impl Statements {
    pub(crate) fn new(dialect: Dialect) -> Statements {
        let now = dialect.now_ms();
        let lock = dialect.skip_locked();
        let sweep_index = match dialect {
            Dialect::Sqlite => "INDEXED BY queue_messages_retries",
            Dialect::Postgres => "",
        };
        let claim = match dialect {
            // One statement: SQLite's single writer makes select-and-update atomic, and a
            // statement (unlike a deferred transaction that reads first) waits on busy_timeout
            // instead of failing with SQLITE_BUSY. INDEXED BY: without ANALYZE statistics the
            // planner prefers the visible_at index and then sorts the whole visible backlog.
            Dialect::Sqlite => format!(
                "UPDATE queue_messages \
                 SET receipt = id || '.' || $2, receive_count = receive_count + 1, \
                     visible_at = {now} + $3 \
                 WHERE id IN (SELECT id FROM queue_messages INDEXED BY queue_messages_ready \
                              WHERE queue = $1 AND dead_at IS NULL AND visible_at <= {now} \
                                AND receive_count < $4 \
                              ORDER BY priority DESC, sent_at, id LIMIT $5) \
                 RETURNING id, body, receive_count, sent_at, priority, receipt"
            ),
            // A CTE is evaluated exactly once, so the LIMIT and the row locks apply to one
            // set of rows (an IN-subquery may legally be re-planned).
            Dialect::Postgres => format!(
                "WITH picked AS (SELECT id FROM queue_messages \
                                 WHERE queue = $1 AND dead_at IS NULL AND visible_at <= {now} \
                                   AND receive_count < $4 \
                                 ORDER BY priority DESC, sent_at, id LIMIT $5 {lock}) \
                 UPDATE queue_messages AS m \
                 SET receipt = m.id || '.' || $2, receive_count = m.receive_count + 1, \
                     visible_at = {now} + $3 \
                 FROM picked WHERE m.id = picked.id \
                 RETURNING m.id, m.body, m.receive_count, m.sent_at, m.priority, m.receipt"
            ),
        };
        let insert = format!(
            "INSERT INTO queue_messages \
             (id, queue, body, priority, sent_at, visible_at, receive_count) \
             VALUES ($2, $1, $3, $4, {now}, {now}, 0)"
        );
        // pg_notify returns `void`, which sqlx's Any driver cannot decode: count the calls.
        let (insert, notify) = match dialect {
            Dialect::Sqlite => (insert, None),
            Dialect::Postgres => (
                format!(
                    "WITH m AS ({insert} RETURNING queue) \
                     SELECT COUNT(*) FROM m, pg_notify('{CHANNEL}', m.queue)"
                ),
                Some(format!("SELECT COUNT(*) FROM pg_notify('{CHANNEL}', $1)")),
            ),
        };
        Statements {
            insert,
            notify,
            sweep: format!(
                "UPDATE queue_messages SET dead_at = {now}, receipt = NULL \
                 WHERE id IN (SELECT id FROM queue_messages {sweep_index} \
                              WHERE queue = $1 AND dead_at IS NULL AND visible_at <= {now} \
                                AND receive_count >= $2 {lock})"
            ),
            claim,
            // ORDER BY + LIMIT rather than MIN(): one index probe in both databases.
            next_visible_in: format!(
                "SELECT visible_at - {now} FROM queue_messages \
                 WHERE queue = $1 AND dead_at IS NULL ORDER BY visible_at LIMIT 1"
            ),
            extend: format!("UPDATE queue_messages SET visible_at = {now} + $4 WHERE {OWNED}"),
            ack: format!("DELETE FROM queue_messages WHERE {OWNED}"),
            nack: format!(
                "UPDATE queue_messages SET visible_at = {now} + $4, last_error = $5, \
                 receipt = NULL WHERE {OWNED}"
            ),
            dead_letter: format!(
                "UPDATE queue_messages SET dead_at = {now}, last_error = $4, receipt = NULL \
                 WHERE {OWNED}"
            ),
            dead: "SELECT id, body, receive_count, last_error, sent_at, dead_at \
                   FROM queue_messages WHERE queue = $1 AND dead_at IS NOT NULL \
                   ORDER BY dead_at DESC, id DESC LIMIT $2"
                .to_owned(),
            redrive_all: format!(
                "UPDATE queue_messages SET dead_at = NULL, receive_count = 0, receipt = NULL, \
                 visible_at = {now}, sent_at = {now} \
                 WHERE queue = $1 AND dead_at IS NOT NULL"
            ),
            redrive_one: format!(
                "UPDATE queue_messages SET dead_at = NULL, receive_count = 0, receipt = NULL, \
                 visible_at = {now}, sent_at = {now} \
                 WHERE queue = $1 AND id = $2 AND dead_at IS NOT NULL"
            ),
            // Read-only: a visible message that used up its receives is counted as dead
            // already (the next receive moves it), so the buckets add up without a write.
            stats: format!(
                "SELECT \
                 CAST(COUNT(CASE WHEN dead_at IS NULL AND visible_at <= {now} \
                                  AND receive_count < $2 THEN 1 END) AS BIGINT), \
                 CAST(COUNT(CASE WHEN dead_at IS NULL AND visible_at > {now} \
                                  AND receipt IS NOT NULL THEN 1 END) AS BIGINT), \
                 CAST(COUNT(CASE WHEN dead_at IS NULL AND visible_at > {now} \
                                  AND receipt IS NULL THEN 1 END) AS BIGINT), \
                 CAST(COUNT(CASE WHEN dead_at IS NOT NULL \
                                  OR (visible_at <= {now} AND receive_count >= $2) \
                                 THEN 1 END) AS BIGINT), \
                 CAST(MIN(CASE WHEN dead_at IS NULL \
                                AND (visible_at > {now} OR receive_count < $2) \
                               THEN sent_at END) AS BIGINT), \
                 {now} \
                 FROM queue_messages WHERE queue = $1"
            ),
        }
    }
}
