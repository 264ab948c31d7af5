-- The audit log (issue 18): one row per recorded action, never updated or deleted (the code has
-- no such path; `audit::guard` adds a trigger refusing UPDATE and DELETE at start-up, since a
-- trigger's syntax is not portable). `org_id` is NULL for a sign-in failure whose credential
-- names no organisation; `count` > 1 on a sign-in failure row stands for that many failures from
-- one address within a minute (the write rate is bounded). Portable SQL: SQLite and Postgres.
CREATE TABLE IF NOT EXISTS audit_log (
    id          TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    org_id      TEXT,
    user_id     TEXT,
    api_key_id  TEXT,
    client_ip   TEXT,
    action      TEXT NOT NULL,
    record_kind TEXT,
    record_id   TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'refused')),
    reason      TEXT,
    count       BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_org ON audit_log (org_id, created_at, seq);
