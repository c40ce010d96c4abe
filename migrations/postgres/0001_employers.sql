-- Employer registry. Ids are UUIDv7, so id order is creation order.
CREATE TABLE employers (
    id                 UUID PRIMARY KEY,
    npwp               TEXT NOT NULL UNIQUE,
    nib                TEXT UNIQUE,
    -- BPJS Ketenagakerjaan NPPs, space-separated, in the caller's order; employer_npp keeps them
    -- unique and searchable.
    bpjs_tk_npp        TEXT NOT NULL DEFAULT '',
    bpjs_kes_code      TEXT,
    name               TEXT NOT NULL,
    -- Lower-cased, space-collapsed name: what case-insensitive search compares against. Collated
    -- bytewise ("C") so ordering and keyset paging match SQLite's and need no locale.
    name_folded        TEXT COLLATE "C" NOT NULL,
    address            TEXT,
    region_code        TEXT NOT NULL,
    -- The two-digit province of region_code, so province filters use an index.
    province_code      TEXT NOT NULL,
    kbli               TEXT,
    size_class         TEXT,
    workforce_declared BIGINT,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    revision           BIGINT NOT NULL
);

CREATE INDEX employers_region_id ON employers (region_code, id);
CREATE INDEX employers_province_id ON employers (province_code, id);
CREATE INDEX employers_kbli_id ON employers (kbli, id);
CREATE INDEX employers_size_id ON employers (size_class, id);
CREATE INDEX employers_name_folded_id ON employers (name_folded, id);

CREATE TABLE employer_npp (
    npp         TEXT PRIMARY KEY,
    employer_id UUID NOT NULL REFERENCES employers (id)
);
CREATE INDEX employer_npp_employer ON employer_npp (employer_id);

-- Results of writes that carried a request_id (AIP-155), so a retry returns the first result.
CREATE TABLE idempotency_keys (
    caller         TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    method         TEXT NOT NULL,
    request_digest BYTEA NOT NULL,
    response       TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, request_id)
);
