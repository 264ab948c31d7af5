-- A prediction of a file with more rows than RETAINWISE_CHUNK_ROWS is scored in pieces: its
-- coordinator (the worker that took it) cuts the file at record starts and, in one
-- transaction, sets `chunks_total` and `chunk_plan` (the model, reference date and head size
-- every piece reads with, JSON) and queues one `prediction_chunks` row and message per piece.
-- Each piece that completes adds one to `chunks_done` in the transaction that records it; the
-- one that makes it `chunks_total` queues the merge. A piece is a job with the lifecycle
-- columns of every job table; `piece` is its place in the file (JSON: start byte, first row,
-- first line, rows) and `read_to` the byte its range read ends at. Portable SQL.
ALTER TABLE predictions ADD COLUMN chunks_total BIGINT;
ALTER TABLE predictions ADD COLUMN chunks_done BIGINT NOT NULL DEFAULT 0;
ALTER TABLE predictions ADD COLUMN chunk_plan TEXT;

CREATE TABLE IF NOT EXISTS prediction_chunks (
    id               TEXT PRIMARY KEY,
    prediction_id    TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    piece            TEXT NOT NULL,
    read_to          BIGINT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT,
    queue_message_id TEXT,
    rows_processed   BIGINT NOT NULL DEFAULT 0,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    updated_at       BIGINT NOT NULL,
    error_message    TEXT,
    dead_lettered_at BIGINT,
    UNIQUE (prediction_id, seq)
);
