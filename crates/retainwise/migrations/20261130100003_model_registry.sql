-- Models as data: trained models live in object storage (`models/{model_id}.json`), are listed
-- here, and one of them is active per user (or for everyone). A training is a job like a
-- prediction: queued with its upload, run by a worker under a lease, COMPLETED with the model id
-- it produced or FAILED with a reason.

-- NULL owner: installed by the operator (the embedded model, `retainwise model add`), usable by all.
ALTER TABLE models ADD COLUMN owner_id TEXT;
-- NULL artifact: the model the process was started with (embedded or --model), not in storage.
ALTER TABLE models ADD COLUMN artifact_key TEXT;

CREATE TABLE IF NOT EXISTS model_trainings (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    upload_id        TEXT NOT NULL REFERENCES uploads (id),
    status           TEXT NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED')),
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_token      TEXT,
    queue_message_id TEXT,
    label            TEXT NOT NULL,
    id_column        TEXT,
    name             TEXT NOT NULL,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    completed_at     BIGINT,
    updated_at       BIGINT NOT NULL,
    model_id         TEXT,
    error_message    TEXT
);
CREATE INDEX IF NOT EXISTS model_trainings_user_queued ON model_trainings (user_id, queued_at);

-- scope: a user id, or '*' for the installation-wide default. A user's own row wins over '*';
-- with neither, the model the process was started with is active.
CREATE TABLE IF NOT EXISTS active_models (
    scope      TEXT PRIMARY KEY,
    model_id   TEXT NOT NULL REFERENCES models (id),
    updated_at BIGINT NOT NULL
);
