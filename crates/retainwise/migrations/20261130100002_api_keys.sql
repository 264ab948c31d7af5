-- API keys for scripts and integrations. Only a SHA-256 of each key is stored; the key itself is
-- shown once, when it is created.
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id);
