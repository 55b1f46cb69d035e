"""The admin API key `ssmd up` shows once, at the first start of a data directory.

Only the SHA-256 of a secret is stored, so a later start cannot show the key again: it
says how to make a new one instead. "First start" = the admin client has no key yet
(not a marker file), so a fresh data dir, or one whose keys were all revoked, gets one.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ssmd.meta import keys
from ssmd.model.time import now_ns
from ssmd.spec import Environment


@dataclass(frozen=True)
class AdminKey:
    client_id: str
    token: str | None
    """The full token when created now; None when the client already had a live key."""


def admin_client(env: Environment) -> str | None:
    """The first client of the definition holding the `admin` scope."""
    for client in env.clients:
        if "admin" in client.scopes and not client.revoked:
            return client.id
    return None


def ensure_admin_key(conn: psycopg.Connection, env: Environment) -> AdminKey | None:
    """Create a key for the admin client unless it has a live one; None without one."""
    client = admin_client(env)
    if client is None:
        return None
    now = now_ns()
    live = [
        k for k in keys.list_keys(conn, env=env.metadata.name, client_id=client)
        if k.state(now) in ("active", "grace")
    ]  # fmt: skip
    if live:
        return AdminKey(client, None)
    issued = keys.create(conn, env.metadata.name, client, "ssmd-up")
    return AdminKey(client, issued.token)
