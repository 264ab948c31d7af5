-- Deleting a prediction or an organisation, and retention, as jobs. Portable SQL: runs as is on
-- SQLite and Postgres.

-- A prediction's tombstone and what retention removed. deletion_id: the deletion job asked for
-- it (set in the transaction that queues that job); deleted_at / deleted_by: when the job had
-- removed everything, and who asked. upload_deleted_at / results_deleted_at: when retention
-- removed the uploaded file / the results and report, with the days it kept them then.
ALTER TABLE predictions ADD COLUMN deletion_id TEXT;
ALTER TABLE predictions ADD COLUMN deleted_at BIGINT;
ALTER TABLE predictions ADD COLUMN deleted_by TEXT;
ALTER TABLE predictions ADD COLUMN upload_deleted_at BIGINT;
ALTER TABLE predictions ADD COLUMN upload_retention_days BIGINT;
ALTER TABLE predictions ADD COLUMN results_deleted_at BIGINT;
ALTER TABLE predictions ADD COLUMN results_retention_days BIGINT;

-- A deletion job (the lifecycle columns of every job table). user_id: the organisation it
-- deletes in; target: what it deletes, target_id its id (the organisation's own id for a whole
-- organisation). removed: what it removed (JSON: objects and rows per table), with COMPLETED.
-- An organisation's deletion keeps its own row (and the audit log its entries): the record
-- that it happened, when and by whom.
CREATE TABLE IF NOT EXISTS deletions (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    target           TEXT NOT NULL CHECK (target IN ('prediction', 'organisation')),
    target_id        TEXT NOT NULL,
    requested_by     TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT,
    queue_message_id TEXT,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    updated_at       BIGINT NOT NULL,
    error_message    TEXT,
    dead_lettered_at BIGINT,
    removed          TEXT
);
CREATE INDEX IF NOT EXISTS deletions_target ON deletions (target, target_id);

-- Retention set for one organisation (`retainwise org retention`, `PUT /api/org/retention`);
-- without a row, RETAINWISE_RETENTION_UPLOAD_DAYS / RETAINWISE_RETENTION_RESULT_DAYS apply.
CREATE TABLE IF NOT EXISTS org_retention (
    org_id      TEXT PRIMARY KEY,
    upload_days BIGINT NOT NULL CHECK (upload_days >= 1),
    result_days BIGINT NOT NULL CHECK (result_days >= 1),
    updated_at  BIGINT NOT NULL
);

-- One retention job per organisation per UTC day (`day`, YYYY-MM-DD): the UNIQUE key makes a
-- fleet of workers queue it once (INSERT … ON CONFLICT DO NOTHING in the transaction that
-- queues it). as_of: the time it judges "due" by (the end of `day`). With COMPLETED, how many
-- uploads and results it removed.
CREATE TABLE IF NOT EXISTS retention_runs (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    day              TEXT NOT NULL,
    as_of            BIGINT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT,
    queue_message_id TEXT,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    updated_at       BIGINT NOT NULL,
    error_message    TEXT,
    dead_lettered_at BIGINT,
    uploads_removed  BIGINT,
    results_removed  BIGINT,
    UNIQUE (user_id, day)
);
