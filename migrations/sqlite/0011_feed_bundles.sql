-- A report batch of more than one chunk queues the feed events of each chunk as one row, a
-- bundle of up to two thousand events, which the sequencer unpacks and numbers in order. As a
-- row per event, a million-report batch wrote a million queue rows or more in its transaction; the
-- sequencer then moved each of them again into feed_events.
--
-- A row is either one event (the columns below `id`, `bundle` null) or a bundle (`bundle` set,
-- the event columns null); `events` counts its events, so a round can stop near its size limit
-- without reading the bundles. SQLite cannot drop a NOT NULL constraint in place, so the queue
-- is rebuilt; AUTOINCREMENT keeps numbering its rows after the highest id it held.
CREATE TABLE feed_pending_bundled (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type    TEXT,
    time_us       INTEGER,
    employer_id   TEXT,
    region_code   TEXT,
    -- The scope a subscriber needs besides feed.read, and the agency kinds it is limited to
    -- (space-separated, empty for all).
    read_scope    TEXT,
    audience      TEXT,
    source_agency TEXT,
    payload       TEXT,
    events        INTEGER NOT NULL DEFAULT 1,
    -- Each event's type, region and report id, protobuf-encoded (`FeedBundle` in
    -- src/store/compliance.rs); the sequencer reads the reports back.
    bundle        BLOB,
    CHECK (
        CASE WHEN bundle IS NULL
            THEN events = 1 AND event_type IS NOT NULL AND time_us IS NOT NULL
                AND employer_id IS NOT NULL AND region_code IS NOT NULL
                AND read_scope IS NOT NULL AND audience IS NOT NULL
                AND source_agency IS NOT NULL AND payload IS NOT NULL
            ELSE events > 0 AND COALESCE(event_type, time_us, employer_id, region_code,
                read_scope, audience, source_agency, payload) IS NULL
        END
    )
);
INSERT INTO feed_pending_bundled (id, event_type, time_us, employer_id, region_code, read_scope,
    audience, source_agency, payload)
SELECT id, event_type, time_us, employer_id, region_code, read_scope, audience, source_agency,
    payload
FROM feed_pending;
DELETE FROM sqlite_sequence WHERE name = 'feed_pending_bundled';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'feed_pending_bundled', seq FROM sqlite_sequence WHERE name = 'feed_pending';
DROP TABLE feed_pending;
ALTER TABLE feed_pending_bundled RENAME TO feed_pending;
