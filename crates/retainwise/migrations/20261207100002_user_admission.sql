-- One row per user that has queued a job: the lock that makes a per-user cap atomic. A request
-- that queues a job first writes this row in its transaction (an upsert: a row lock on
-- Postgres, the write lock on SQLite), then counts the user's active jobs and inserts its own,
-- so two requests of one user are admitted one after the other, never both on a stale count.
-- Portable SQL: runs as is on SQLite and Postgres.
CREATE TABLE IF NOT EXISTS user_admission (
    user_id    TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL
);
