-- Compliance reports, the statuses computed from them and the change feed.
--
-- Reports are never updated except to mark them superseded by a correction (the next version of
-- the same series); statuses are recomputed in the transaction that stores a report.
CREATE TABLE reports (
    id              UUID PRIMARY KEY,
    employer_id     UUID NOT NULL REFERENCES employers (id),
    kind            TEXT NOT NULL,
    programme_group TEXT,
    -- YYYY-MM: sorts like the periods.
    period          TEXT NOT NULL,
    -- What versions share: kind, group and period, or the layoff document.
    series          TEXT NOT NULL,
    version         BIGINT NOT NULL,
    supersedes      UUID,
    superseded      BOOLEAN NOT NULL,
    source_agency   TEXT NOT NULL,
    submitted_at    TIMESTAMPTZ NOT NULL,
    -- The figures as JSON; the columns below repeat what aggregates need.
    figures         TEXT NOT NULL,
    workers         BIGINT NOT NULL,
    arrears_amount  BIGINT NOT NULL,
    -- The employer's region when the report was stored: coverage counts it there.
    region_code     TEXT NOT NULL,
    province_code   TEXT NOT NULL,
    UNIQUE (employer_id, series, version)
);
CREATE INDEX reports_employer_current ON reports (employer_id) WHERE NOT superseded;
CREATE INDEX reports_coverage ON reports (period, kind, province_code, region_code)
    WHERE NOT superseded;

-- One row per employer and programme group once any report concerns it. The sort keys of
-- ListNonCompliant are columns with partial indexes over non-compliant rows, per region level,
-- so a page is an index range scan whatever the table's size.
CREATE TABLE compliance_status (
    employer_id     UUID NOT NULL REFERENCES employers (id),
    programme_group TEXT NOT NULL,
    non_compliant   BOOLEAN NOT NULL,
    -- Bit mask of the categories that hold (bit n = category n of the domain enum).
    categories      BIGINT NOT NULL,
    gap             BIGINT NOT NULL,
    arrears_amount  BIGINT NOT NULL,
    priority        BIGINT NOT NULL,
    region_code     TEXT NOT NULL,
    province_code   TEXT NOT NULL,
    size_class      TEXT,
    -- The whole status as JSON (categories, figures, the reports it derives from).
    detail          TEXT NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (employer_id, programme_group)
);
CREATE INDEX status_gap ON compliance_status (programme_group, gap DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_arrears ON compliance_status (programme_group, arrears_amount DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_priority ON compliance_status (programme_group, priority DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_province_gap
    ON compliance_status (programme_group, province_code, gap DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_province_arrears
    ON compliance_status (programme_group, province_code, arrears_amount DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_province_priority
    ON compliance_status (programme_group, province_code, priority DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_region_gap
    ON compliance_status (programme_group, region_code, gap DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_region_arrears
    ON compliance_status (programme_group, region_code, arrears_amount DESC, employer_id)
    WHERE non_compliant;
CREATE INDEX status_region_priority
    ON compliance_status (programme_group, region_code, priority DESC, employer_id)
    WHERE non_compliant;

-- The change feed. A change writes its event to feed_pending in its own transaction; the
-- sequencer (one replica at a time: it locks the feed_head row) moves pending events to
-- feed_events, numbering them after feed_head.
-- Events are numbered in the order the sequencer sees them committed, so a reader that has seen
-- cursor n can never later find an event below n appear.
CREATE TABLE feed_pending (
    id            BIGSERIAL PRIMARY KEY,
    event_type    TEXT NOT NULL,
    time_us       BIGINT NOT NULL,
    employer_id   TEXT NOT NULL,
    region_code   TEXT NOT NULL,
    -- The scope a subscriber needs besides feed.read, and the agency kinds it is limited to
    -- (space-separated, empty for all).
    read_scope    TEXT NOT NULL,
    audience      TEXT NOT NULL,
    source_agency TEXT NOT NULL,
    payload       TEXT NOT NULL
);

CREATE TABLE feed_events (
    seq           BIGINT PRIMARY KEY,
    event_type    TEXT NOT NULL,
    time_us       BIGINT NOT NULL,
    employer_id   TEXT NOT NULL,
    region_code   TEXT NOT NULL,
    read_scope    TEXT NOT NULL,
    audience      TEXT NOT NULL,
    source_agency TEXT NOT NULL,
    payload       TEXT NOT NULL
);

CREATE TABLE feed_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO feed_head (id, size) VALUES (1, 0);

-- feed_pending is a queue: rows live for a moment. Vacuum it after every few thousand deletions
-- rather than after a fifth of its peak size, so the sequencer's index scans do not wade
-- through dead rows.
ALTER TABLE feed_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
