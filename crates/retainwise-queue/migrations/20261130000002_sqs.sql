-- retainwise-queue, SQS backend: the transactional outbox and the lease (fencing) table, one row
-- per message, in the application's own SQL database. SQS holds the messages; this table holds
-- what SQS cannot: messages not yet published (the outbox), the current receipt of each delivery
-- (SQS may accept a stale receipt handle, the contract may not) and the last error.
-- Portable SQLite + Postgres: TEXT and BIGINT only; times are unix epoch milliseconds (app clock).
CREATE TABLE IF NOT EXISTS queue_sqs_messages (
    id              TEXT   NOT NULL PRIMARY KEY, -- UUID v7, also the message attribute RetainwiseId
    queue_url       TEXT   NOT NULL,             -- the source queue
    body            TEXT   NOT NULL,
    priority        BIGINT NOT NULL,             -- 0 normal, 1 high (an attribute only: SQS has no priority)
    sent_at         BIGINT NOT NULL,             -- outbox insert, then SQS SentTimestamp, re-stamped by redrive
    published_at    BIGINT,                      -- NULL: still in the outbox
    next_attempt_at BIGINT NOT NULL,             -- outbox: when the relay may (re)try publishing
    attempts        BIGINT NOT NULL,             -- outbox: failed publish attempts so far
    receipt         TEXT,                        -- token of the current delivery; NULL when not leased
    handle          TEXT,                        -- the SQS receipt handle of that delivery
    receive_count   BIGINT NOT NULL,             -- ApproximateReceiveCount of the latest delivery
    visible_at      BIGINT,                      -- set by nack: hidden until then (stats: delayed)
    last_error      TEXT,
    dead_at         BIGINT                       -- set when this library dead-lettered it
);

-- The relay's scan for pending outbox rows.
CREATE INDEX IF NOT EXISTS queue_sqs_messages_outbox
    ON queue_sqs_messages (queue_url, next_attempt_at) WHERE published_at IS NULL;
-- Oldest live message (stats).
CREATE INDEX IF NOT EXISTS queue_sqs_messages_live
    ON queue_sqs_messages (queue_url, sent_at) WHERE dead_at IS NULL;
