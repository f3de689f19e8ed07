-- Analyses and their interval results: the schema of migrations/sqlite/0001_init.sql in
-- PostgreSQL's types. JSON columns hold serde types from the judge and analysis modules
-- as text (read back byte for byte); histograms travel inside them, so a restart loses
-- nothing. Every integer is BIGINT: the store reads them all as 64-bit.
CREATE TABLE analyses (
    -- Byte order, as SQLite's: the list pages on (created_ms, id), whatever the
    -- database's locale.
    id            TEXT COLLATE "C" PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    request       TEXT NOT NULL,
    model         TEXT NOT NULL,
    status        TEXT NOT NULL,
    interval_ms   BIGINT NOT NULL,
    lifetime_ms   BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL,
    next_due_ms   BIGINT NOT NULL,
    decided_ms    BIGINT,
    intervals     BIGINT NOT NULL DEFAULT 0,
    score         DOUBLE PRECISION,
    judgment      TEXT,
    cumulative    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX analyses_status ON analyses (status, next_due_ms);

CREATE TABLE intervals (
    analysis_id   TEXT NOT NULL REFERENCES analyses (id),
    seq           BIGINT NOT NULL,
    start_ms      BIGINT NOT NULL,
    end_ms        BIGINT NOT NULL,
    data          TEXT NOT NULL,
    judgment      TEXT NOT NULL,
    PRIMARY KEY (analysis_id, seq)
);
