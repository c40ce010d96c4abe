-- Agencies, their public keys and grants. The whole set is small and read into every replica's
-- memory; auth_version tells replicas when to read it again.
CREATE TABLE agencies (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    display_name TEXT NOT NULL,
    home_region  TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   TEXT NOT NULL,
    disabled_at  TIMESTAMPTZ,
    disabled_by  TEXT
);

CREATE TABLE agency_keys (
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    kid        TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TIMESTAMPTZ,
    revoked_by TEXT,
    PRIMARY KEY (agency_id, kid)
);

CREATE TABLE grants (
    id         UUID PRIMARY KEY,
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    scope      TEXT NOT NULL,
    -- Space-separated region codes and programme names; empty means no limit.
    regions    TEXT NOT NULL DEFAULT '',
    programmes TEXT NOT NULL DEFAULT '',
    expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    granted_by TEXT NOT NULL,
    revoked_at TIMESTAMPTZ,
    revoked_by TEXT
);
CREATE INDEX grants_agency ON grants (agency_id, id);

-- Client assertion ids seen, kept until the assertion expires, so none is accepted twice.
CREATE TABLE assertion_jtis (
    agency_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agency_id, jti)
);
CREATE INDEX assertion_jtis_expiry ON assertion_jtis (expires_at);

CREATE TABLE auth_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO auth_version (id, version) VALUES (1, 0);
