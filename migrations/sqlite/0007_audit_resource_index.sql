-- The records an entry touched move into the entry's row, as a JSON array of ids, and the index
-- from record to entries moves out of this file into `<this file>-audit-index`, which a
-- background task fills from these arrays (see `src/store/sqlite.rs`). An index keyed by
-- record puts every entry on a different page of its B-tree; kept here, those pages were most
-- of what each group commit wrote and synced, and most of what each checkpoint copied back.
-- The rows below are appended in sequence order only.
ALTER TABLE audit_log ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';

UPDATE audit_log
SET resources = (
    SELECT json_group_array(resource_id)
    FROM (SELECT resource_id FROM audit_resources r WHERE r.seq = audit_log.seq ORDER BY resource_id)
)
WHERE seq IN (SELECT seq FROM audit_resources);

DROP TABLE audit_resources;
