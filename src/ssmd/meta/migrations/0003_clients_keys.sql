-- Clients and entitlements, mirrored from the environment definition on apply, and the
-- API keys that authenticate them (DESIGN.md §8). Keys store only SHA-256 of the secret.

CREATE TABLE clients (
    env          text NOT NULL REFERENCES environments (name),
    client_id    text NOT NULL CHECK (client_id <> ''),
    type         text NOT NULL CHECK (type IN ('display', 'non-display', 'trading')),
    scopes       text[] NOT NULL DEFAULT '{}',
    active       boolean NOT NULL DEFAULT true,
    created_ns   bigint NOT NULL,
    updated_ns   bigint NOT NULL,
    PRIMARY KEY (env, client_id)
);

-- The client's entitlements as the definition lists them, in order.
CREATE TABLE entitlements (
    env           text NOT NULL,
    client_id     text NOT NULL,
    position      integer NOT NULL CHECK (position >= 0),
    feeds         text[] NOT NULL DEFAULT '{}',
    symbols       text[] NOT NULL DEFAULT '{}',
    record_types  text[] NOT NULL DEFAULT '{}',
    date_from_ns  bigint,
    date_to_ns    bigint,
    expires_ns    bigint,
    PRIMARY KEY (env, client_id, position),
    FOREIGN KEY (env, client_id) REFERENCES clients (env, client_id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
    key_id         text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    env            text NOT NULL,
    client_id      text NOT NULL,
    secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes         text[] NOT NULL DEFAULT '{}',
    created_ns     bigint NOT NULL,
    created_by     text NOT NULL,
    expires_ns     bigint,
    revoked_ns     bigint,
    replaced_by    text REFERENCES api_keys (key_id),
    last_used_ns   bigint,
    FOREIGN KEY (env, client_id) REFERENCES clients (env, client_id)
);

CREATE INDEX api_keys_client ON api_keys (env, client_id);
