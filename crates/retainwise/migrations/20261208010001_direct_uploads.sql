-- Uploads sent straight to storage (`POST /api/uploads`): declared before the bytes arrive, so
-- the size and optional SHA-256 can be checked on completion; `multipart_id` is the S3 multipart
-- upload's id (NULL for a single PUT and on local storage, where parts are files under
-- `incoming/`). Settings given at creation are applied when the prediction is queued. A
-- PENDING row past `expires_at` is swept: its bytes removed, its status EXPIRED. Portable SQL.
CREATE TABLE IF NOT EXISTS direct_uploads (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    filename       TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL,
    sha256         TEXT,
    part_size      BIGINT NOT NULL,
    parts          BIGINT NOT NULL,
    multipart_id   TEXT,
    reference_date TEXT,
    column_mapping TEXT,
    explanation    TEXT NOT NULL DEFAULT 'top' CHECK (explanation IN ('top', 'none', 'all')),
    high_priority  BIGINT NOT NULL DEFAULT 0,
    status         TEXT NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED', 'EXPIRED')),
    prediction_id  TEXT,
    error_message  TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    completed_at   BIGINT
);
CREATE INDEX IF NOT EXISTS direct_uploads_user ON direct_uploads (user_id, created_at);
CREATE INDEX IF NOT EXISTS direct_uploads_expiry ON direct_uploads (status, expires_at);
