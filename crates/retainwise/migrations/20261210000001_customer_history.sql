-- Customers across runs. `customer_runs` has one row per completed scoring whose customers are
-- remembered (a file without a customer-id column is listed with 0 customers and a note: its
-- row numbers name no customer across files). `customer_history` has one row per customer
-- per prediction: the probability in millionths (the results' 6 decimals, exact), the risk
-- level, the compact drivers (JSON) and the time of scoring. A customer id repeated in one
-- file is remembered by its first scored row; a row whose id is longer than 512 bytes is not
-- remembered (Postgres cannot index such a key), only counted in `not_remembered`. `owner_id` is the key predictions are scoped by
-- (today the user id); only `history::Owner` decides it. Portable SQL.
CREATE TABLE IF NOT EXISTS customer_runs (
    prediction_id TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    model_id      TEXT NOT NULL,
    customers     BIGINT NOT NULL,
    scored_at     BIGINT NOT NULL,
    note          TEXT,
    not_remembered BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS customer_runs_owner ON customer_runs (owner_id, scored_at);

CREATE TABLE IF NOT EXISTS customer_history (
    prediction_id   TEXT NOT NULL,
    customer_id     TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    model_id        TEXT NOT NULL,
    probability_ppm BIGINT NOT NULL,
    risk_level      TEXT NOT NULL,
    drivers         TEXT NOT NULL,
    scored_at       BIGINT NOT NULL,
    row_number      BIGINT NOT NULL,
    PRIMARY KEY (prediction_id, customer_id)
);
CREATE INDEX IF NOT EXISTS customer_history_customer
    ON customer_history (owner_id, customer_id, scored_at);

-- Comparisons already made (`GET /api/predictions/{id}/changes`, the dashboard's panel): both
-- predictions are COMPLETED, so their rows never change and neither does the answer, which is
-- kept as JSON per (prediction, since, list limit) and read back instead of made again.
CREATE TABLE IF NOT EXISTS customer_changes (
    prediction_id       TEXT NOT NULL,
    since_prediction_id TEXT NOT NULL,
    list_limit          BIGINT NOT NULL,
    owner_id            TEXT NOT NULL,
    body                TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (prediction_id, since_prediction_id, list_limit)
);
CREATE INDEX IF NOT EXISTS customer_changes_since ON customer_changes (since_prediction_id);
