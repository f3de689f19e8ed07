-- Which revision of a Flagger canary the gate is judging, for Flagger releases that send
-- no checksum (before v1.34): the gate keys that canary's analysis on this number, and a
-- post-rollout call moves it on, so the next revision gets an analysis of its own.
CREATE TABLE gate_revisions (
    canary        TEXT PRIMARY KEY,
    revision      BIGINT NOT NULL
);

-- When someone last asked for a running analysis (a create with its key, a read of its
-- verdict or detail, a gate call): an analysis created with `abandon_after` is cancelled
-- once nobody has asked for that many intervals. Null: not asked since its creation.
ALTER TABLE analyses ADD COLUMN asked_ms BIGINT;
