-- A report batch queues its employers for the status worker one chunk (up to 1,000 employers)
-- per row instead of one row per employer: a million-report batch wrote a million queue rows,
-- each into the primary key's index at a random place, and that cost it a sixth of its time.
-- A status read no longer asks the queue whether it may answer from the stored status: it
-- computes the status from the reports, as the worker will (see `compliance_statuses`).
ALTER TABLE status_pending RENAME TO status_pending_by_employer;

CREATE TABLE status_pending (
    id            BIGSERIAL PRIMARY KEY,
    -- The queued employers' ids, 16 bytes each, one after the other.
    employers     BYTEA NOT NULL,
    -- The agency whose reports queued them: the source of the STATUS_CHANGED events that follow.
    source_agency TEXT NOT NULL
);

INSERT INTO status_pending (employers, source_agency)
    SELECT uuid_send(employer_id), source_agency FROM status_pending_by_employer
    ORDER BY employer_id;

DROP TABLE status_pending_by_employer;

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
