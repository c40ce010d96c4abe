-- Employer registry. Ids are UUIDv7 stored as 16-byte blobs, so id order is creation order.
CREATE TABLE employers (
    id                 BLOB PRIMARY KEY NOT NULL,
    npwp               TEXT NOT NULL UNIQUE,
    nib                TEXT UNIQUE,
    -- BPJS Ketenagakerjaan NPPs, space-separated, in the caller's order; employer_npp keeps them
    -- unique and searchable.
    bpjs_tk_npp        TEXT NOT NULL DEFAULT '',
    bpjs_kes_code      TEXT,
    name               TEXT NOT NULL,
    -- Lower-cased, space-collapsed name: what case-insensitive search compares against.
    name_folded        TEXT NOT NULL,
    address            TEXT,
    region_code        TEXT NOT NULL,
    -- The two-digit province of region_code, so province filters use an index.
    province_code      TEXT NOT NULL,
    kbli               TEXT,
    size_class         TEXT,
    workforce_declared INTEGER,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    revision           INTEGER NOT NULL
);

CREATE INDEX employers_region_id ON employers (region_code, id);
CREATE INDEX employers_province_id ON employers (province_code, id);
CREATE INDEX employers_kbli_id ON employers (kbli, id);
CREATE INDEX employers_size_id ON employers (size_class, id);
CREATE INDEX employers_name_folded_id ON employers (name_folded, id);

CREATE TABLE employer_npp (
    npp         TEXT PRIMARY KEY NOT NULL,
    employer_id BLOB NOT NULL REFERENCES employers (id)
);
CREATE INDEX employer_npp_employer ON employer_npp (employer_id);

-- Results of writes that carried a request_id (AIP-155), so a retry returns the first result.
CREATE TABLE idempotency_keys (
    caller         TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    method         TEXT NOT NULL,
    request_digest BLOB NOT NULL,
    response       TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (caller, request_id)
);
