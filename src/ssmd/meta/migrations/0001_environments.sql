-- Environments and their immutable versions (DESIGN.md §4: apply stores a new version).
-- Times are integer ns since the Unix epoch, UTC (DESIGN.md §1.5).

CREATE TABLE environments (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]*$'),
    created_ns  bigint NOT NULL
);

CREATE TABLE env_versions (
    env         text NOT NULL REFERENCES environments (name),
    version     integer NOT NULL CHECK (version >= 1),
    spec        jsonb NOT NULL,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    author      text NOT NULL,
    created_ns  bigint NOT NULL,
    message     text NOT NULL DEFAULT '',
    PRIMARY KEY (env, version)
);

-- A version, once stored, is history: refuse UPDATE and DELETE outright.
CREATE FUNCTION ssmd_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are immutable (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER env_versions_immutable
    BEFORE UPDATE OR DELETE ON env_versions
    FOR EACH ROW EXECUTE FUNCTION ssmd_refuse_change();

CREATE TRIGGER env_versions_no_truncate
    BEFORE TRUNCATE ON env_versions
    FOR EACH STATEMENT EXECUTE FUNCTION ssmd_refuse_change();
