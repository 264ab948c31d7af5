-- The column holding each row's own observation date (date columns count days back from it);
-- NULL: one reference date for the whole file.
ALTER TABLE model_trainings ADD COLUMN observation_date_column TEXT;
