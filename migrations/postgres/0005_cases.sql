-- Inspections, sanction tracks and referrals ("cases"). Each row holds the whole case as JSON
-- (`detail`, with its history); the other columns repeat what listings filter and sort on.
-- A case is updated only through its revision (the etag), so concurrent steps cannot both apply.
--
-- Feed events of cases name the agencies party to them in feed_pending/feed_events.audience as
-- `agency:<id>` tokens beside the agency kinds.
CREATE TABLE cases (
    id                 UUID PRIMARY KEY,
    -- inspection | sanction | referral
    kind               TEXT NOT NULL,
    employer_id        UUID NOT NULL REFERENCES employers (id),
    region_code        TEXT NOT NULL,
    province_code      TEXT NOT NULL,
    -- The agency that opened it (inspecting office, BPJS agency).
    owner_agency       TEXT NOT NULL,
    -- The other party: a referral's Kejari, an inspection's joint BPJS agency.
    counterpart_agency TEXT,
    programme_group    TEXT,
    -- A referral's SKK number.
    reference          TEXT,
    status             TEXT NOT NULL,
    is_open            BOOLEAN NOT NULL,
    opened_at          TIMESTAMPTZ NOT NULL,
    closed_at          TIMESTAMPTZ,
    -- YYYY-MM-DD: the next date the employer must act by, if any.
    due_on             TEXT,
    amount_recovered   BIGINT NOT NULL,
    revision           BIGINT NOT NULL,
    detail             TEXT NOT NULL
);
CREATE UNIQUE INDEX cases_reference ON cases (kind, reference) WHERE reference IS NOT NULL;
-- One open sanction track per employer and programme group.
CREATE UNIQUE INDEX cases_open_sanction ON cases (employer_id, programme_group)
    WHERE kind = 'sanction' AND is_open;
CREATE INDEX cases_kind_id ON cases (kind, id);
CREATE INDEX cases_employer ON cases (employer_id, kind, id);
CREATE INDEX cases_region ON cases (kind, region_code, id);
CREATE INDEX cases_province ON cases (kind, province_code, id);
CREATE INDEX cases_owner ON cases (owner_agency, kind, id);
CREATE INDEX cases_counterpart ON cases (counterpart_agency, kind, id);
CREATE INDEX cases_opened ON cases (kind, opened_at);
