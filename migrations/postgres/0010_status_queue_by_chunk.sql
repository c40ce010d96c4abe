-- A report batch of more than one chunk queues its employers for the status worker one chunk
-- (up to 1,000 employers) per row: as a row per employer in status_pending, a million-report
-- batch wrote a million queue rows into the primary key's index at random places, a sixth of
-- its time. The worker moves each entry's employers into status_pending once the batch has
-- committed, and goes through them there in id order as before: employers next to each other
-- share the pages of every table and index the worker reads and writes.
CREATE TABLE status_queue (
    id            BIGSERIAL PRIMARY KEY,
    -- The queued employers' ids, 16 bytes each, one after the other.
    employers     BYTEA NOT NULL,
    -- The agency whose reports queued them: the source of the STATUS_CHANGED events that follow.
    source_agency TEXT NOT NULL
);

-- Current reports of an employer are found through the (employer_id, series, version) key,
-- whose first column this index repeated: nearly every report is current (a new month is a
-- new series, and only corrections supersede), so the partial index saved reads nothing and
-- cost every stored report one more index entry.
DROP INDEX reports_employer_current;

-- Coverage starts from the current workforce reports of a period and finds the registrations
-- it compares them with through the same key. Registration and layoff reports no longer enter
-- this index, and a query for an employer's current reports, which names no kind, can no
-- longer take it for an index of current reports: PostgreSQL did, with the statistics of a
-- table a batch had grown inside its own transaction, and read all of it for every chunk.
DROP INDEX reports_coverage;
CREATE INDEX reports_workforce_coverage ON reports (period, province_code, region_code)
    WHERE kind = 'workforce' AND NOT superseded;
