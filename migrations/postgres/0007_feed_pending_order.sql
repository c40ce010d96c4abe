-- Pending feed events carry the id of the transaction that queued them, and the sequencer
-- reads the queue in (transaction, id) order. Every transaction older than the oldest one still
-- running is over, so the queue below that point can only shrink: the sequencer resumes each
-- round where the previous one stopped instead of at the queue's oldest id. Read by id, every
-- round walked the index entries of all the events it had already moved and deleted for as
-- long as any older transaction (such as a long report batch) kept them from being cleaned up.
ALTER TABLE feed_pending ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX feed_pending_order ON feed_pending (xid, id);
