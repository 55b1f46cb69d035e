"""Connecting to the metadata Postgres; every connection is migrated before use.

Why one entry point: no component may ever need a manual migration step, so `connect`
applies pending migrations (under an advisory lock) before handing the connection out.
Transactions belong to the caller: stores never commit. Use the connection as a context
manager (`with connect(url) as conn:`) so the work commits on success and rolls back on
error, or call `conn.commit()` yourself.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg

CONNECT_TIMEOUT_S = 3
"""Short on purpose: an unreachable Postgres should fail a command fast, not hang it."""


class MetaUnreachable(ConnectionError):
    """Postgres cannot be reached; the message names where (no password) and how to start it."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(
            f"Postgres unreachable at {where}: {reason} "
            "(start the local stack with `ssmd up`, or set SSMD_PG_URL / --pg-url)"
        )
        self.where = where
        self.reason = reason


def redact_url(url: str) -> str:
    """The URL with any password removed, safe to print (URL or key=value conninfo)."""
    if "://" not in url:
        parts = [p for p in url.split() if not p.lower().startswith("password=")]
        return " ".join(parts)
    split = urlsplit(url)
    netloc = split.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = "&".join(
        q for q in split.query.split("&") if q and not q.lower().startswith("password=")
    )
    return urlunsplit((split.scheme, netloc, split.path, query, split.fragment))


def _reason(exc: BaseException) -> str:
    """libpq's answer without the preamble: 'Connection refused', 'FATAL: ...'."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return " ".join(lines[0].rsplit(" failed: ", 1)[-1].split())


def connect(
    url: str, *, migrate: bool = True, application_name: str = "ssmd"
) -> psycopg.Connection:
    """Open a connection (autocommit off), migrated to the latest schema unless told not to.

    Raises MetaUnreachable when the server cannot be reached, MigrationError when the
    applied migrations disagree with the ones this code ships.
    """
    try:
        conn = psycopg.connect(
            url,
            autocommit=False,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.OperationalError as exc:
        raise MetaUnreachable(redact_url(url), _reason(exc)) from exc
    if migrate:
        from ssmd.meta.migrate import migrate as run_migrations

        try:
            run_migrations(conn)
        except BaseException:
            conn.close()
            raise
    return conn
