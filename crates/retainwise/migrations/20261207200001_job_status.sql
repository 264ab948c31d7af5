-- Job state is data: a fifth status, CANCELLED, and a `dead_lettered_at` column in place of the
-- `dead-lettered:` prefix of `error_message` (the text stays, for the owner to read; the state
-- is the column). A CHECK constraint cannot be altered in SQLite, so both job tables are
-- rebuilt: create the new table, copy, drop the old one, rename. Portable SQL: runs as is on
-- SQLite and Postgres (no table refers to either one).

CREATE TABLE predictions_v2 (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    upload_id        TEXT NOT NULL REFERENCES uploads (id),
    status           TEXT NOT NULL
                     CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT,
    queue_message_id TEXT,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    updated_at       BIGINT NOT NULL,
    rows_total       BIGINT,
    rows_processed   BIGINT NOT NULL DEFAULT 0,
    rows_rejected    BIGINT NOT NULL DEFAULT 0,
    summary          TEXT,
    result_key       TEXT,
    report_key       TEXT,
    error_message    TEXT,
    model_id         TEXT NOT NULL,
    reference_date   TEXT,
    dead_lettered_at BIGINT
);
-- Every column by position (`p.*`), so that a table with a column this file does not know
-- makes the copy fail (more values than columns) instead of dropping that column's data.
INSERT INTO predictions_v2
SELECT p.*,
    CASE WHEN p.status = 'FAILED' AND p.error_message LIKE 'dead-lettered:%'
         THEN COALESCE(p.completed_at, p.updated_at) END
FROM predictions p;
DROP TABLE predictions;
ALTER TABLE predictions_v2 RENAME TO predictions;
CREATE INDEX IF NOT EXISTS predictions_user_queued ON predictions (user_id, queued_at);

CREATE TABLE model_trainings_v2 (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    upload_id        TEXT NOT NULL REFERENCES uploads (id),
    status           TEXT NOT NULL
                     CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT,
    queue_message_id TEXT,
    label            TEXT NOT NULL,
    id_column        TEXT,
    name             TEXT NOT NULL,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    updated_at       BIGINT NOT NULL,
    model_id         TEXT,
    error_message    TEXT,
    dead_lettered_at BIGINT
);
INSERT INTO model_trainings_v2
SELECT t.*,
    CASE WHEN t.status = 'FAILED' AND t.error_message LIKE 'dead-lettered:%'
         THEN COALESCE(t.completed_at, t.updated_at) END
FROM model_trainings t;
DROP TABLE model_trainings;
ALTER TABLE model_trainings_v2 RENAME TO model_trainings;
CREATE INDEX IF NOT EXISTS model_trainings_user_queued ON model_trainings (user_id, queued_at);
