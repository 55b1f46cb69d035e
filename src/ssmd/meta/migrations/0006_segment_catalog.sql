-- The raw segment catalog (DESIGN.md §2, §7): one row per closed journal segment the
-- shipper has seen, keyed by its object key (= its path under the data dir, `raw/…`).
-- Written by ssmd.storage.catalog; retention deletes objects only for verified rows.

CREATE TABLE segment_catalog (
    key               text PRIMARY KEY,
    env               text NOT NULL,
    feed              text NOT NULL,
    shard             integer NOT NULL,
    conn              integer NOT NULL,
    start_ns          bigint NOT NULL,
    first_t           bigint,
    last_t            bigint,
    lines             bigint,
    size              bigint NOT NULL,
    sha256            text,
    manifest          jsonb,
    etag              text,
    shipped_ns        bigint,
    verified          boolean NOT NULL DEFAULT false,
    verified_ns       bigint,
    local_deleted_ns  bigint,
    object_deleted_ns bigint,
    quarantined_ns    bigint,
    quarantine_reason text,
    quarantine_path   text,
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text NOT NULL DEFAULT '',
    updated_ns        bigint NOT NULL,
    CHECK (NOT verified OR (shipped_ns IS NOT NULL AND verified_ns IS NOT NULL)),
    CHECK (NOT (verified AND quarantine_reason IS NOT NULL))
);

CREATE INDEX segment_catalog_feed_time ON segment_catalog (env, feed, start_ns);
CREATE INDEX segment_catalog_verified_end ON segment_catalog (env, last_t) WHERE verified;
