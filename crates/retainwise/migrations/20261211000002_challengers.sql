-- Champion and challenger (`outcomes/challenger.rs`): one challenger model per owner, and the
-- challenger's shadow scores of each prediction (the results object of the same file scored by
-- it). owner_id is the key predictions are scoped by. Portable SQL: SQLite and Postgres.
CREATE TABLE IF NOT EXISTS challengers (
    owner_id   TEXT PRIMARY KEY,
    model_id   TEXT NOT NULL REFERENCES models (id),
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS shadow_scores (
    prediction_id TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    model_id      TEXT NOT NULL,
    result_key    TEXT NOT NULL,
    rows_scored   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
