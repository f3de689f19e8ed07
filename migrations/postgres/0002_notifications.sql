-- Notifications: who hears about an analysis, and the outbox of what is to be sent (as
-- migrations/sqlite/0002_notifications.sql).
--
-- `recipients` is fixed when the analysis is created (the notifiers it asked for, or the
-- configured default, and the events each of them wants). The outbox rows are written in
-- the transaction that makes the state change they announce, so a verdict and its
-- notifications commit together; the deliverer sends them and records every attempt.
CREATE TABLE recipients (
    analysis_id   TEXT NOT NULL REFERENCES analyses (id),
    notifier      TEXT NOT NULL,
    event         TEXT NOT NULL,
    PRIMARY KEY (analysis_id, notifier, event)
);
CREATE INDEX recipients_event ON recipients (event, analysis_id);

CREATE TABLE notifications (
    -- Grows with every row, never reused (as SQLite's AUTOINCREMENT): a row's place in
    -- the outbox's order.
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    analysis_id     TEXT NOT NULL REFERENCES analyses (id),
    notifier        TEXT NOT NULL,
    event           TEXT NOT NULL,
    -- What caused the event beyond the analysis itself (the superseding analysis's id).
    cause           TEXT,
    -- pending, delivered or failed (given up: a permanent refusal or too many attempts).
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_ms      BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    done_ms         BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    UNIQUE (analysis_id, notifier, event)
);
CREATE INDEX notifications_due ON notifications (state, next_attempt_ms);

CREATE TABLE notification_attempts (
    notification_id BIGINT NOT NULL REFERENCES notifications (id),
    attempt         BIGINT NOT NULL,
    at_ms           BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    -- HTTP status of the answer; null when none came (connection refused, timeout).
    status          BIGINT,
    outcome         TEXT NOT NULL,
    error           TEXT,
    PRIMARY KEY (notification_id, attempt)
);
