-- The security master: stable integer iids and effective-dated attribute history.
-- An iid comes from an identity sequence and is never reused: instruments are never
-- deleted, they change status. Sizes are int64 fixed-point at 1e-9 (ssmd.model.fixed).

CREATE TABLE instruments (
    iid           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    venue         text NOT NULL CHECK (venue <> ''),
    venue_symbol  text NOT NULL CHECK (venue_symbol <> ''),
    created_ns    bigint NOT NULL,
    UNIQUE (venue, venue_symbol)
);

-- One row per period during which the attributes held: [valid_from, valid_to).
-- valid_to NULL means "still current". At most one open row per iid.
CREATE TABLE instrument_versions (
    iid          bigint NOT NULL REFERENCES instruments (iid),
    valid_from   bigint NOT NULL,
    valid_to     bigint,
    symbol       text NOT NULL CHECK (symbol <> ''),
    kind         text NOT NULL CHECK (kind IN ('spot', 'perp', 'future', 'option', 'binary')),
    base         text NOT NULL DEFAULT '',
    quote        text NOT NULL DEFAULT '',
    tick_size    bigint NOT NULL DEFAULT 0 CHECK (tick_size >= 0),
    lot_size     bigint NOT NULL DEFAULT 0 CHECK (lot_size >= 0),
    status       text NOT NULL DEFAULT 'open' CHECK (status <> ''),
    expiry_ns    bigint NOT NULL DEFAULT 0,
    settlement   text NOT NULL DEFAULT '',
    extra        jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_ns  bigint NOT NULL,
    PRIMARY KEY (iid, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

CREATE UNIQUE INDEX instrument_versions_one_open ON instrument_versions (iid)
    WHERE valid_to IS NULL;
CREATE INDEX instrument_versions_symbol ON instrument_versions (symbol);
