-- The column that groups a history file's rows (one customer's rows stay in one fold of the
-- cross-validation); NULL: each row is its own group.
ALTER TABLE model_trainings ADD COLUMN group_column TEXT;
