-- Usage metering (DESIGN.md §8): what each client consumed, per UTC day, per endpoint or
-- kind (`rest:trades`, `stream`, …) and licensing class (display | non-display | trading,
-- the client's type when the usage happened). The gateway adds to these counters in
-- batches; `ssmd usage report --month` sums them.

CREATE TABLE usage (
    env          text NOT NULL,
    client_id    text NOT NULL,
    day          date NOT NULL,
    kind         text NOT NULL CHECK (kind <> ''),
    class        text NOT NULL CHECK (class IN ('display', 'non-display', 'trading')),
    requests     bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
    messages     bigint NOT NULL DEFAULT 0 CHECK (messages >= 0),
    bytes        bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    updated_ns   bigint NOT NULL,
    PRIMARY KEY (env, client_id, day, kind, class)
);

CREATE INDEX usage_day ON usage (day);
