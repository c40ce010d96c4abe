-- Idempotency records are kept for a retention period, then purged oldest first.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
