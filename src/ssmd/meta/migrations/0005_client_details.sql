-- More of the definition's client fields, mirrored for the gateway: a description, the
-- transforms applied to its streams, and a rolling history window per entitlement.

ALTER TABLE clients ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN transforms text[] NOT NULL DEFAULT '{}';
ALTER TABLE entitlements ADD COLUMN lookback_ns bigint NOT NULL DEFAULT 0
    CHECK (lookback_ns >= 0);
