-- Server secrets shared by every process on one database, created on first use: `download-links`
-- signs the expiring download URLs of results on local storage (HMAC-SHA256). Portable SQL.
CREATE TABLE IF NOT EXISTS signing_keys (
    name        TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
