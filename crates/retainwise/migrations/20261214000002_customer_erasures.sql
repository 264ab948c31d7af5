-- Erasure of one end customer at the organisation's request. `customer_erasures` is a job
-- table (the lifecycle columns of every job) whose row records the erasure without the id in
-- clear: `customer_hash` is HMAC-SHA256 of the trimmed id under the organisation's secret salt
-- (`signing_keys`, `customer-salt:{org}`). `customer_id` holds the id only while the job needs
-- it and is emptied in the transaction that records COMPLETED. `prediction_erasures` notes, per
-- prediction, an erasure that removed a row from it (`erased`: its counts and summary stay as
-- computed) or found the erased customer again in a file uploaded later (`returned`).
-- `predictions.erased_customers` counts the `erased` notes: the version of its results object,
-- which the customers index is cached by. Portable SQL: SQLite and Postgres.
CREATE TABLE IF NOT EXISTS customer_erasures (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    customer_hash     TEXT NOT NULL,
    customer_id       TEXT,
    requested_by      TEXT NOT NULL,
    status            TEXT NOT NULL
                      CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    attempt           BIGINT NOT NULL DEFAULT 0,
    lease_token       TEXT,
    queue_message_id  TEXT,
    queued_at         BIGINT NOT NULL,
    started_at        BIGINT,
    completed_at      BIGINT,
    updated_at        BIGINT NOT NULL,
    error_message     TEXT,
    dead_lettered_at  BIGINT,
    rows_removed      BIGINT,
    objects_rewritten BIGINT
);
CREATE INDEX IF NOT EXISTS customer_erasures_hash ON customer_erasures (user_id, customer_hash);

-- Each object an erasure replaced or deleted, with the records it removed: written before the
-- object is replaced, once per (erasure, object), so the totals an erasure shows are exact
-- whatever attempt did the work.
CREATE TABLE IF NOT EXISTS erasure_objects (
    erasure_id TEXT NOT NULL,
    object_key TEXT NOT NULL,
    records    BIGINT NOT NULL,
    PRIMARY KEY (erasure_id, object_key)
);

CREATE TABLE IF NOT EXISTS prediction_erasures (
    prediction_id TEXT NOT NULL,
    erasure_id    TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('erased', 'returned')),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (prediction_id, erasure_id)
);

ALTER TABLE predictions ADD COLUMN erased_customers BIGINT NOT NULL DEFAULT 0;
