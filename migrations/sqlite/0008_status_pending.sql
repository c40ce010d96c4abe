-- Employers whose statuses wait to be recomputed. A report batch of more than one chunk leaves
-- its employers here rather than recomputing their statuses inside its own transaction: each
-- status row enters the ten indexes of compliance_status (the ranking of ListNonCompliant),
-- which cost a batch more than everything else it wrote put together. The status worker
-- recomputes queued employers once the batch has committed; until then a status read of a
-- queued employer is computed from its reports (see `compliance_statuses`).
CREATE TABLE status_pending (
    employer_id   BLOB PRIMARY KEY,
    -- The agency whose reports queued the employer last: the source of the STATUS_CHANGED
    -- events that follow.
    source_agency TEXT NOT NULL
) WITHOUT ROWID;
