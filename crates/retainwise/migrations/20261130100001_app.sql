-- Application tables. Portable SQL for SQLite and Postgres: ids are TEXT (UUIDs), times are
-- BIGINT Unix epoch milliseconds, JSON documents are TEXT.

CREATE TABLE IF NOT EXISTS uploads (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    filename    TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_user_created ON uploads (user_id, created_at);

CREATE TABLE IF NOT EXISTS models (
    id          TEXT PRIMARY KEY,
    card        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS predictions (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    upload_id        TEXT NOT NULL REFERENCES uploads (id),
    status           TEXT NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED')),
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
    model_id         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_user_queued ON predictions (user_id, queued_at);
