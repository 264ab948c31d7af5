-- retainwise-queue: the claim path, rebuilt around what a claim writes.
--
-- A claim rewrites receipt, receive_count and visible_at. Every index on one of those columns made
-- each claim insert a new entry into it, and the old "ready" index kept leased messages in it, so
-- each claim also walked past every message in flight (a heap visit each) before reaching a free
-- one. Now:
-- * queue_messages_ready holds only messages nobody leases (receipt IS NULL): visible ones and
--   ones delayed by a nack or a redrive. A claim leaves it without an index insertion there.
-- * queue_messages_leased holds leased messages by lease expiry: a claim finds expired leases
--   (crashed workers) with one range scan, and "when does the next lease run out?" is one probe.
-- * The claim moves messages that used up their receives to the dead-letter store itself, so the
--   sweep's index on receive_count is gone.
DROP INDEX IF EXISTS queue_messages_retries;
DROP INDEX IF EXISTS queue_messages_visible;
DROP INDEX IF EXISTS queue_messages_ready;
CREATE INDEX IF NOT EXISTS queue_messages_ready
    ON queue_messages (queue, priority DESC, sent_at, id) WHERE dead_at IS NULL AND receipt IS NULL;
CREATE INDEX IF NOT EXISTS queue_messages_leased
    ON queue_messages (queue, visible_at) WHERE dead_at IS NULL AND receipt IS NOT NULL;
