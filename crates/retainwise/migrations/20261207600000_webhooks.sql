-- Signed webhooks. An endpoint is a user's URL, the events it wants (comma-separated) and its
-- signing secret (`whsec_…`, kept to sign every delivery); a removed endpoint is disabled, not
-- deleted, so its deliveries keep their history. A delivery is one event for one endpoint, a
-- job with the lifecycle columns of every job table; its id is the `webhook-id` header, the
-- same on every retry, and its body is fixed when it is queued. Portable SQL.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_user ON webhook_endpoints (user_id);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event            TEXT NOT NULL,
    subject_id       TEXT NOT NULL,
    body             TEXT NOT NULL,
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
    last_status_code BIGINT
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);
