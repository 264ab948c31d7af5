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
    /// $2 max_receives. Dead-letters visible messages that used up their receives. Walks the
    /// queue's live messages (no index on `receive_count`: see the claim), so only the operator's
    /// `dead` and `redrive` run it.
    pub sweep: String,
    /// $2 receipt token, $3 visibility ms, $4 max_receives, $5 limit. Takes up to $5 visible
    /// messages in claim order (free ones and expired leases); those that used up their receives are dead-lettered in the same
    /// statement instead of leased (so no separate sweep has to run before a claim).
    /// Returns id, body, receive_count, sent_at, priority, receipt, dead_at (set: dead-lettered
    /// by this claim, not a delivery).
    pub claim: String,
    /// Milliseconds until the next live message becomes visible (<= 0: one is visible now): the
    /// earliest of the first [`NEXT_VISIBLE_WINDOW`] free messages in claim order and the
    /// earliest lease to run out. One row, NULL when the queue has no live message.
    pub next_visible_in: String,
    /// $2 id, $3 receipt, $4 timeout ms.
    pub extend: String,
    /// $2 id, $3 receipt.
    pub ack: String,
    /// $2 id, $3 receipt, $4 delay ms, $5 error.
    pub nack: String,
    /// $2 id, $3 receipt, $4 error.
    pub dead_letter: String,
    /// $2 id, $3 receipt, $4 delay ms: visible after the delay, this receive uncounted.
    pub release: String,
    /// $1 queue, $2 id, $3 receipt, $4 delay ms, $5 error: a nack that resets the receive count.
    pub reschedule: String,
    /// $2 limit. Returns id, body, receive_count, last_error, sent_at, dead_at.
    pub dead: String,
    pub redrive_all: String,
    /// $2 id.
    pub redrive_one: String,
    /// $2 max_receives. Returns depth, in_flight, delayed, dead, oldest sent_at, now.
    pub stats: String,
}

/// How many free messages, from the head of the claim order, `next_visible_in` looks at. Bounded
/// so an idle receiver's look costs the same whatever the backlog of delayed messages; when the
/// next one to become visible lies further back, the receiver finds it at its next poll.
pub(crate) const NEXT_VISIBLE_WINDOW: usize = 1000;

/// Receipts per `ack_many` statement: 2 parameters each keeps far below the 32,766 host
/// parameters of SQLite (since 3.32) and Postgres' 65,535.
pub(crate) const ACK_MANY_CHUNK: usize = 512;

/// `DELETE` of the messages whose current receipt is one of `n` receipts: $1 queue, $2..=$n+1
/// the message ids, $n+2..=$2n+1 the receipts. Returns the receipts that matched (the rest are
/// stale). The receipt goes through COALESCE for the reason given at [`OWNED`]. Matching on both
/// lists is exact because a receipt starts with its own message's id:
/// a row matches only if its own current receipt is listed; the id list lets the database find
/// the rows by primary key.
pub(crate) fn ack_many(n: usize) -> String {
    let ids = (0..n).map(|i| format!("${}", i + 2)).collect::<Vec<_>>();
    let receipts = (0..n)
        .map(|i| format!("${}", n + i + 2))
        .collect::<Vec<_>>();
    format!(
        "DELETE FROM queue_messages WHERE queue = $1 AND dead_at IS NULL \
         AND id IN ({}) AND COALESCE(receipt, '') IN ({}) RETURNING receipt",
        ids.join(", "),
        receipts.join(", ")
    )
}

/// The receipt is compared through COALESCE (receipts are never empty, so the meaning is the
/// same) because `receipt = $3` would prove `receipt IS NOT NULL`, the predicate of
/// `queue_messages_leased`, and with statistics that say few messages are leased Postgres then
/// prefers a scan of every leased message of the queue to one primary-key probe.
const OWNED: &str = "queue = $1 AND id = $2 AND COALESCE(receipt, '') = $3 AND dead_at IS NULL";

impl Statements {
    pub(crate) fn new(dialect: Dialect) -> Statements {
        let now = dialect.now_ms();
        let lock = dialect.skip_locked();
        // One shape for both dialects: what a claim writes depends on whether the message used up
        // its receives (dead-letter it) or not (lease it). CASE keeps it one statement.
        // `m`: Postgres needs the table's columns qualified (the CTE has an `id` too); SQLite
        // gets no alias.
        let set = |m: &str| {
            let spent = format!("{m}receive_count >= $4");
            format!(
                "SET dead_at = CASE WHEN {spent} THEN {now} END, \
                     receipt = CASE WHEN {spent} THEN NULL ELSE {m}id || '.' || $2 END, \
                     receive_count = CASE WHEN {spent} THEN {m}receive_count \
                                          ELSE {m}receive_count + 1 END, \
                     visible_at = CASE WHEN {spent} THEN {m}visible_at ELSE {now} + $3 END"
            )
        };
        let returning = |m: &str| {
            format!(
                "RETURNING {m}id, {m}body, {m}receive_count, {m}sent_at, {m}priority, \
                 {m}receipt, {m}dead_at"
            )
        };
        // SQLite's planner, without ANALYZE statistics, may pick another index and then sort
        // the whole backlog: name the index each part is written for.
        let (ready_index, leased_index) = match dialect {
            Dialect::Sqlite => (
                "INDEXED BY queue_messages_ready",
                "INDEXED BY queue_messages_leased",
            ),
            Dialect::Postgres => ("", ""),
        };
        // The messages a claim may take, in claim order: free ones from the head of the ready
        // index, and leases that ran out (their holder died or is late) from the leased index,
        // earliest expiry first. Each part takes up to $5 and locks what it takes; the union is
        // cut to $5 in claim order. Rows a part locked but the cut dropped stay untouched (the
        // locks end with the statement).
        let candidates = |cols: &str| {
            format!(
                "SELECT {cols} FROM (SELECT {cols} FROM queue_messages {ready_index} \
                                     WHERE queue = $1 AND dead_at IS NULL AND receipt IS NULL \
                                       AND visible_at <= {now} \
                                     ORDER BY priority DESC, sent_at, id LIMIT $5 {lock}) AS free \
                 UNION ALL \
                 SELECT {cols} FROM (SELECT {cols} FROM queue_messages {leased_index} \
                                     WHERE queue = $1 AND dead_at IS NULL \
                                       AND receipt IS NOT NULL AND visible_at <= {now} \
                                     ORDER BY visible_at LIMIT $5 {lock}) AS expired \
                 ORDER BY priority DESC, sent_at, id LIMIT $5"
            )
        };
        let claim = match dialect {
            // One statement: SQLite's single writer makes select-and-update atomic, and a
            // statement (unlike a deferred transaction that reads first) waits on busy_timeout
            // instead of failing with SQLITE_BUSY.
            Dialect::Sqlite => format!(
                "UPDATE queue_messages {} WHERE id IN (SELECT id FROM ({})) {}",
                set(""),
                candidates("id, priority, sent_at"),
                returning("")
            ),
            // A CTE is evaluated exactly once, so the LIMIT and the row locks apply to one
            // set of rows (an IN-subquery may legally be re-planned). The update finds the
            // locked rows by ctid (no second primary-key descent per row); the id check makes a
            // ctid that moved on match nothing rather than another row (the message then waits
            // for the next claim).
            Dialect::Postgres => format!(
                "WITH picked AS ({}) \
                 UPDATE queue_messages AS m {} \
                 FROM picked WHERE m.ctid = picked.ctid AND m.id = picked.id {}",
                candidates("ctid, id, priority, sent_at"),
                set("m."),
                returning("m.")
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
                 WHERE id IN (SELECT id FROM queue_messages \
                              WHERE queue = $1 AND dead_at IS NULL AND visible_at <= {now} \
                                AND receive_count >= $2 {lock})"
            ),
            claim,
            // The ready index's head (delayed messages) and the leased index's first entry.
            next_visible_in: format!(
                "SELECT MIN(v) - {now} FROM \
                 (SELECT v FROM (SELECT visible_at AS v FROM queue_messages {ready_index} \
                                 WHERE queue = $1 AND dead_at IS NULL AND receipt IS NULL \
                                 ORDER BY priority DESC, sent_at, id \
                                 LIMIT {NEXT_VISIBLE_WINDOW}) AS free \
                  UNION ALL \
                  SELECT v FROM (SELECT visible_at AS v FROM queue_messages {leased_index} \
                                 WHERE queue = $1 AND dead_at IS NULL AND receipt IS NOT NULL \
                                 ORDER BY visible_at LIMIT 1) AS leased) AS head"
            ),
            extend: format!("UPDATE queue_messages SET visible_at = {now} + $4 WHERE {OWNED}"),
            ack: format!("DELETE FROM queue_messages WHERE {OWNED}"),
            nack: format!(
                "UPDATE queue_messages SET visible_at = {now} + $4, last_error = $5, \
                 receipt = NULL WHERE {OWNED}"
            ),
            reschedule: format!(
                "UPDATE queue_messages SET visible_at = {now} + $4, last_error = $5, \
                 receipt = NULL, receive_count = 0 WHERE {OWNED}"
            ),
            release: format!(
                "UPDATE queue_messages SET visible_at = {now} + $4, receipt = NULL, \
                 receive_count = CASE WHEN receive_count > 0 THEN receive_count - 1 ELSE 0 END \
                 WHERE {OWNED}"
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
