-- The audit log. Calls append to audit_pending (writes in their own transaction, reads through
-- a shared group-commit transaction); a sequencer moves pending entries into audit_log with
-- contiguous sequence numbers and extends the Merkle tree, whose complete subtrees are kept in
-- audit_nodes so any proof is a handful of reads.
CREATE TABLE audit_pending (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    entry       BLOB NOT NULL,
    time_us     INTEGER NOT NULL,
    agency      TEXT NOT NULL,
    method      TEXT NOT NULL,
    decision    TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    is_write    INTEGER NOT NULL,
    -- Space-separated ids of the records the call touched.
    resources   TEXT NOT NULL
);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY NOT NULL,
    entry       BLOB NOT NULL,
    time_us     INTEGER NOT NULL,
    agency      TEXT NOT NULL,
    method      TEXT NOT NULL,
    decision    TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    is_write    INTEGER NOT NULL
);
CREATE INDEX audit_log_agency ON audit_log (agency, seq);
CREATE INDEX audit_log_method ON audit_log (method, seq);
CREATE INDEX audit_log_time ON audit_log (time_us, seq);

CREATE TABLE audit_resources (
    resource_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (resource_id, seq)
);
CREATE INDEX audit_resources_seq ON audit_resources (seq);

-- Hashes of complete subtrees; key = level << 56 | index.
CREATE TABLE audit_nodes (
    key  INTEGER PRIMARY KEY NOT NULL,
    hash BLOB NOT NULL
);

CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    root BLOB NOT NULL
);
INSERT INTO audit_head (id, size, root)
VALUES (1, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
