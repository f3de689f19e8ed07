-- Analyses and their interval results. JSON columns hold serde types from the judge
-- and analysis modules; histograms travel inside them, so a restart loses nothing.
CREATE TABLE analyses (
    id            TEXT PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,
    request       TEXT NOT NULL,
    model         TEXT NOT NULL,
    status        TEXT NOT NULL,
    interval_ms   INTEGER NOT NULL,
    lifetime_ms   INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    next_due_ms   INTEGER NOT NULL,
    decided_ms    INTEGER,
    intervals     INTEGER NOT NULL DEFAULT 0,
    score         REAL,
    judgment      TEXT,
    cumulative    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX analyses_status ON analyses (status, next_due_ms);

CREATE TABLE intervals (
    analysis_id   TEXT NOT NULL REFERENCES analyses (id),
    seq           INTEGER NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    data          TEXT NOT NULL,
    judgment      TEXT NOT NULL,
    PRIMARY KEY (analysis_id, seq)
);
