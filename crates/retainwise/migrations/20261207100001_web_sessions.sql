-- Web sign-in sessions: the browser holds a random id, the database only its SHA-256, so the
-- cookie never carries an API key and a database leak does not leak live sessions.
-- api_key_id: the key signed in with (NULL for a JWT); revoking the key ends its sessions.
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    api_key_id  TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (user_id);
CREATE INDEX IF NOT EXISTS web_sessions_expiry ON web_sessions (expires_at);
