-- How much explanation an upload asked for (`none` or `all`, retainwise_model::Explain);
-- NULL: the default, the top drivers (`top`).
ALTER TABLE predictions ADD COLUMN explanation TEXT;
