-- The list pages through analyses oldest first on (created_ms, id), with or without a
-- status filter; these indexes make each page a range scan instead of a sort of the table.
CREATE INDEX analyses_created ON analyses (created_ms, id);
CREATE INDEX analyses_status_created ON analyses (status, created_ms, id);

-- One row the readiness probe rewrites to learn whether the database takes writes again
-- after a failed write.
CREATE TABLE store_probe (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    at_ms         BIGINT NOT NULL
);

-- Whether a text is a JSON document, as SQLite's json_valid: the list reads fields out of
-- the JSON columns, and a malformed document must quarantine its row, not fail the page.
-- (PostgreSQL 16 has `IS JSON`; this also runs on older servers.)
CREATE FUNCTION augury_json_valid(doc TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    PERFORM doc::json;
    RETURN TRUE;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN FALSE;
END
$$;
