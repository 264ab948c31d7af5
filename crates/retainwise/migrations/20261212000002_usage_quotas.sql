-- Metering and quotas per organisation. Portable SQL: runs as is on SQLite and Postgres.
-- A quota set by the operator (`retainwise org quota`); without a row, RETAINWISE_DEFAULT_QUOTA_ROWS
-- applies, and without that, none.
CREATE TABLE IF NOT EXISTS org_quotas (
    org_id         TEXT PRIMARY KEY,
    rows_per_month BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
-- Rows scored per organisation per calendar month (UTC, 'YYYY-MM'), added once per prediction
-- in the transaction that records it COMPLETED. notified_percent: the highest quota threshold
-- (80, 100) whose `usage.threshold` webhook event was queued this month (0: none), so each
-- fires once a month.
CREATE TABLE IF NOT EXISTS usage_months (
    org_id           TEXT NOT NULL,
    month            TEXT NOT NULL,
    rows_scored      BIGINT NOT NULL,
    notified_percent BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, month)
);
-- quota_rows: the file's data rows counted at upload under a quota, held against the quota
-- while the prediction is QUEUED or RUNNING (NULL: no quota applied then).
-- metered_month: the month its scored rows were added to; set once, so a prediction is never
-- metered twice.
ALTER TABLE predictions ADD COLUMN quota_rows BIGINT;
ALTER TABLE predictions ADD COLUMN metered_month TEXT;
