-- A report batch of more than one chunk queues the feed events of each chunk as one row, a
-- bundle of up to two thousand events, which the sequencer unpacks and numbers in order. As a
-- row per event, a million-report batch queued a million rows or more in its transaction (through
-- a temporary table, so the sequencer's index scans did not wade through them uncommitted), a
-- third of its time; the sequencer then moved each of them again into feed_events.
--
-- A row is either one event (the columns below `id`, `bundle` null) or a bundle (`bundle` set,
-- the event columns null); `events` counts its events, so a round can stop near its size limit
-- without reading the bundles.
ALTER TABLE feed_pending
    ALTER COLUMN event_type DROP NOT NULL,
    ALTER COLUMN time_us DROP NOT NULL,
    ALTER COLUMN employer_id DROP NOT NULL,
    ALTER COLUMN region_code DROP NOT NULL,
    ALTER COLUMN read_scope DROP NOT NULL,
    ALTER COLUMN audience DROP NOT NULL,
    ALTER COLUMN source_agency DROP NOT NULL,
    ALTER COLUMN payload DROP NOT NULL,
    ADD COLUMN events BIGINT NOT NULL DEFAULT 1,
    -- Each event's type, region and report id, protobuf-encoded (`FeedBundle` in
    -- src/store/compliance.rs); the sequencer reads the reports back.
    ADD COLUMN bundle BYTEA,
    ADD CONSTRAINT feed_pending_event_or_bundle CHECK (
        CASE WHEN bundle IS NULL
            THEN events = 1 AND event_type IS NOT NULL AND time_us IS NOT NULL
                AND employer_id IS NOT NULL AND region_code IS NOT NULL
                AND read_scope IS NOT NULL AND audience IS NOT NULL
                AND source_agency IS NOT NULL AND payload IS NOT NULL
            ELSE events > 0 AND COALESCE(event_type, time_us::text, employer_id, region_code,
                read_scope, audience, source_agency, payload) IS NULL
        END
    );
-- Stored as written: report ids do not compress, and a bundle lives only until the next
-- sequencing round.
ALTER TABLE feed_pending ALTER COLUMN bundle SET STORAGE EXTERNAL;
