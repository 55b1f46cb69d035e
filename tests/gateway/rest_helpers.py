"""Seeding the metadata store for the gateway's REST/auth/usage tests: one environment,
its clients (from the definition's shape) and API keys, through the real stores."""

from __future__ import annotations

from typing import Any

from ssmd.meta import clients, connect, keys
from ssmd.model.time import now_ns

DAY = 86_400 * 10**9


def seed_clients(pg_url: str, env: str, specs: list[dict[str, Any]]) -> None:
    with connect(pg_url) as conn:
        clients.sync_clients(conn, env, specs, actor="test")


def issue(
    pg_url: str,
    env: str,
    client_id: str,
    *,
    scopes: list[str] | None = None,
    expires_ns: int | None = None,
) -> keys.IssuedKey:
    with connect(pg_url) as conn:
        return keys.create(conn, env, client_id, "test", scopes=scopes, expires_ns=expires_ns)


def revoke(pg_url: str, key_id: str) -> None:
    with connect(pg_url) as conn:
        keys.revoke(conn, key_id, "test")


def expire_now(pg_url: str, key_id: str) -> None:
    """Make a key expired (create refuses a past expiry)."""
    with connect(pg_url) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_ns = %s WHERE key_id = %s", (now_ns() - 1, key_id)
        )
