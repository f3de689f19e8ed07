-- Kayenta canary configs stored through Kayenta's REST API (`/canaryConfig`): the config
-- as sent (JSON text), its name and applications for the listing, and when it was made
-- and last changed (milliseconds since the epoch).
CREATE TABLE kayenta_configs (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    applications  TEXT NOT NULL,
    config        TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

-- What each Kayenta execution (`POST /canary/{configId}`) was started with, by the key of
-- the analysis it created: application, account names, config id and the request as
-- sent (JSON text), which the status echoes as Kayenta does.
CREATE TABLE kayenta_executions (
    key           TEXT PRIMARY KEY,
    context       TEXT NOT NULL
);
