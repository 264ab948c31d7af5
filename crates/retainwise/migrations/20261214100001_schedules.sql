-- Scheduled re-scoring (`schedules/`). Portable SQL: SQLite and Postgres; times are epoch ms.
-- A schedule: an organisation's 5-field cron expression (UTC) and what it re-scores: `latest`
-- (the latest upload whose prediction completed) or an object key under uploads/{org}/.
-- after_ms: slots at or before it are not run (its creation, resumption, or the last slot
-- handled), so a worker that was down runs only the latest slot it missed.
CREATE TABLE IF NOT EXISTS schedules (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    cron        TEXT NOT NULL,
    source      TEXT NOT NULL,
    paused      BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    after_ms    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_org ON schedules (org_id, created_at);
-- One row per (schedule, slot), written in the transaction that queues the slot's prediction
-- (INSERT … ON CONFLICT DO NOTHING): one run per slot however many workers tick. SKIPPED with
-- the reason when the slot could not be queued (source missing, quota, job cap); missed: the
-- earlier slots passed over while no worker ran.
CREATE TABLE IF NOT EXISTS schedule_runs (
    schedule_id   TEXT NOT NULL,
    slot          BIGINT NOT NULL,
    org_id        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('QUEUED', 'SKIPPED')),
    prediction_id TEXT,
    reason        TEXT,
    missed        BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    UNIQUE (schedule_id, slot)
);
