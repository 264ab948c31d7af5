-- Date columns: a model that reads dates counts them as days before the scored file's reference
-- date, its latest date unless the upload gives one (`reference_date` form field, YYYY-MM-DD).
-- NULL: not given. Portable SQL: runs as is on SQLite and Postgres.
ALTER TABLE predictions ADD COLUMN reference_date TEXT;
