-- retainwise-queue: every logical queue's messages, live and dead-lettered, in one table.
-- Portable SQLite + Postgres: TEXT and BIGINT only; times are unix epoch milliseconds taken from the
-- database clock, so workers on several machines agree on when a lease expires.
CREATE TABLE IF NOT EXISTS queue_messages (
    id            TEXT   NOT NULL PRIMARY KEY, -- UUID v7 (time-ordered: tie-break for FIFO)
    queue         TEXT   NOT NULL,             -- QueueConfig::name
    body          TEXT   NOT NULL,
    priority      BIGINT NOT NULL,             -- 0 normal, 1 high; received high first
    sent_at       BIGINT NOT NULL,             -- re-stamped by redrive
    visible_at    BIGINT NOT NULL,             -- receivable when visible_at <= now
    receive_count BIGINT NOT NULL,
    receipt       TEXT,                        -- token of the current lease; NULL when not leased
    last_error    TEXT,
    dead_at       BIGINT                       -- NULL while live; set when dead-lettered
);

-- Claim order for live messages: the claim walks this in order and stops after LIMIT visible
-- rows, so its cost does not grow with the backlog (sorting every visible row would).
CREATE INDEX IF NOT EXISTS queue_messages_ready
    ON queue_messages (queue, priority DESC, sent_at, id) WHERE dead_at IS NULL;
-- "When does the next message become visible?" (one index probe).
CREATE INDEX IF NOT EXISTS queue_messages_visible
    ON queue_messages (queue, visible_at) WHERE dead_at IS NULL;
-- The dead-letter sweep runs before every claim: it must touch only messages on their last
-- receives, not the whole visible backlog.
CREATE INDEX IF NOT EXISTS queue_messages_retries
    ON queue_messages (queue, receive_count, visible_at) WHERE dead_at IS NULL;
-- Newest dead first.
CREATE INDEX IF NOT EXISTS queue_messages_dead
    ON queue_messages (queue, dead_at) WHERE dead_at IS NOT NULL;
