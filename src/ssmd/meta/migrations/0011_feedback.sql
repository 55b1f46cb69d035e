-- Feedback from agents and people (DESIGN.md §2; issue 8 item 3): typed reports,
-- deduplicated by fingerprint — one row per distinct issue per environment, counting
-- repeats. `extra` and `external_ref` leave room for the full loop (tracker forwarding,
-- resolution sync) without another table shape change.

CREATE TABLE feedback (
    id             bigserial PRIMARY KEY,
    env            text NOT NULL,
    fingerprint    text NOT NULL,
    kind           text NOT NULL
                   CHECK (kind IN ('data_quality', 'feature_request', 'bug', 'unknown')),
    subtype        text NOT NULL DEFAULT ''
                   CHECK (subtype IN ('', 'bad_tick', 'gap', 'duplicate', 'stale', 'schema')),
    summary        text NOT NULL CHECK (summary <> ''),
    details        text NOT NULL DEFAULT '',
    feed           text NOT NULL DEFAULT '',
    symbol         text NOT NULL DEFAULT '',
    from_ns        bigint,
    to_ns          bigint,
    evidence       jsonb NOT NULL DEFAULT '{}',
    status         text NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'acknowledged', 'resolved', 'wontfix')),
    count          integer NOT NULL DEFAULT 1 CHECK (count >= 1),
    first_seen_ns  bigint NOT NULL,
    last_seen_ns   bigint NOT NULL,
    reporters      text[] NOT NULL DEFAULT '{}',
    source         text NOT NULL DEFAULT '',
    external_ref   text,
    extra          jsonb NOT NULL DEFAULT '{}',
    UNIQUE (env, fingerprint)
);

CREATE INDEX feedback_open ON feedback (env, status, last_seen_ns);
CREATE INDEX feedback_feed ON feedback (env, feed);
