-- Several replicas on one database (as migrations/sqlite/0004_replicas.sql).
--
-- Leases: the replica that judges a running analysis, until when, and a fence that grows
-- with every new holder. An interval commits only with the holder's fence, so a replica
-- that lost its lease (paused, cut off, presumed dead) cannot write.
ALTER TABLE analyses ADD COLUMN lease_owner TEXT;
ALTER TABLE analyses ADD COLUMN lease_until_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE analyses ADD COLUMN lease_fence BIGINT NOT NULL DEFAULT 0;
CREATE INDEX analyses_lease ON analyses (status, lease_owner);

-- Outbox claims: the replica sending a notification, until when. Another replica takes
-- a row only once its claim has expired (its sender died mid-send).
ALTER TABLE notifications ADD COLUMN claimed_by TEXT;
ALTER TABLE notifications ADD COLUMN claim_until_ms BIGINT NOT NULL DEFAULT 0;

-- The replicas alive, as their heartbeats say.
CREATE TABLE replicas (
    id            TEXT PRIMARY KEY,
    started_ms    BIGINT NOT NULL,
    seen_ms       BIGINT NOT NULL
);

-- Partial windows: what one replica received of one interval of an analysis (OTLP
-- histograms and counts, mergeable), until the replica that judges the interval merges
-- them and deletes them in the transaction that records it.
CREATE TABLE partials (
    analysis_id   TEXT NOT NULL REFERENCES analyses (id),
    seq           BIGINT NOT NULL,
    replica       TEXT NOT NULL,
    written_ms    BIGINT NOT NULL,
    data          TEXT NOT NULL,
    PRIMARY KEY (analysis_id, seq, replica)
);
