-- retainwise-queue: every claim rewrites visible_at, receive_count and receipt. Each index on one
-- of those columns made every claim insert a new entry into it (and barred HOT updates), which
-- cost more than the claim's own work. The claim now moves messages that used up their receives
-- to the dead-letter store itself, so the sweep no longer needs its index, and "when is the next
-- message visible?" looks at the head of queue_messages_ready instead (a bounded scan).
DROP INDEX IF EXISTS queue_messages_retries;
DROP INDEX IF EXISTS queue_messages_visible;
