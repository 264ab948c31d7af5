-- A person's column choices sent with an upload (JSON: model input -> header as written, or
-- null for "no column"), applied by the worker before the automatic mapping. NULL: none.
ALTER TABLE predictions ADD COLUMN column_mapping TEXT;
