"""What the keys screen changes: the CLI's own code paths, so a revoke or a create from
the TUI is the same transaction and the same audit entry as `ssmd key revoke|create`."""

from __future__ import annotations

from ssmd.cli.pg import meta_session
from ssmd.meta import keys
from ssmd.meta.keys import ApiKey, IssuedKey


def revoke_key(pg_url: str, key_id: str, actor: str) -> ApiKey:
    """Revoke now; raises CliError (Postgres down) or KeyRefused (e.g. already revoked)."""
    with meta_session(pg_url) as conn:
        return keys.revoke(conn, key_id, actor)


def create_key(pg_url: str, env: str, client_id: str, scopes: list[str], actor: str) -> IssuedKey:
    """Issue a key (scopes empty = all the client's); the token exists only in the result."""
    with meta_session(pg_url) as conn:
        return keys.create(conn, env, client_id, actor, scopes=scopes or None)
