-- Outcomes: what really happened to a customer (churned or still a customer, on a date),
-- matched to earlier scores by customer id to measure live accuracy. One row per owner and
-- customer: a later outcome (by date; on the same date, the one recorded last) supersedes the
-- stored one. owner_id is the key predictions are scoped by (`outcomes::owner`).
-- Portable SQL: runs as is on SQLite and Postgres.
CREATE TABLE IF NOT EXISTS outcomes (
    owner_id     TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    churned      BIGINT NOT NULL CHECK (churned IN (0, 1)),
    outcome_date TEXT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    source       TEXT NOT NULL,
    PRIMARY KEY (owner_id, customer_id)
);
