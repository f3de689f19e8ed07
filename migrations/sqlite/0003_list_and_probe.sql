-- The list pages through analyses oldest first on (created_ms, id), with or without a
-- status filter; these indexes make each page a range scan instead of a sort of the table.
CREATE INDEX analyses_created ON analyses (created_ms, id);
CREATE INDEX analyses_status_created ON analyses (status, created_ms, id);

-- One row the readiness probe rewrites to learn whether the database takes writes again
-- after a failed write (a full disk, an I/O error).
CREATE TABLE store_probe (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms         INTEGER NOT NULL
);
