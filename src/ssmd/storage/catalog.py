"""The Postgres segment catalog: which raw segments exist, where, and whether verified.

One row per segment, keyed by its object key. The shipper writes a row *before* it
uploads (pending), marks it verified only after the store's bytes were read back and
matched the manifest, and stamps `local_deleted_ns` / `object_deleted_ns` when a tier
lets go of its copy. Retention trusts nothing else: no verified row, no deletion.

Like every meta store, functions never commit; the caller's transaction does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ssmd.capture.journal_manifest import Manifest

__all__ = [
    "CatalogRow",
    "by_keys",
    "end_ns",
    "get",
    "mark_failed",
    "mark_local_deleted",
    "mark_object_deleted",
    "mark_quarantined",
    "mark_verified",
    "rows",
    "upsert_pending",
]


class CatalogRow(msgspec.Struct, kw_only=True, frozen=True):
    """One segment as the catalog knows it (columns of `segment_catalog`)."""

    key: str
    env: str
    feed: str
    shard: int
    conn: int
    start_ns: int
    first_t: int | None
    last_t: int | None
    lines: int | None
    size: int
    sha256: str | None
    etag: str | None
    shipped_ns: int | None
    verified: bool
    verified_ns: int | None
    local_deleted_ns: int | None
    object_deleted_ns: int | None
    quarantined_ns: int | None
    quarantine_reason: str | None
    quarantine_path: str | None
    attempts: int
    last_error: str
    updated_ns: int

    @property
    def end_ns(self) -> int:
        """Time of the newest data in the segment: what retention windows count from."""
        return self.last_t if self.last_t is not None else self.start_ns


_COLS = ", ".join(CatalogRow.__struct_fields__)


def end_ns(m: Manifest) -> int:
    """Time of a manifest's newest line (its start when it holds none)."""
    return m.last_t if m.last_t is not None else m.start_ns


def _row(d: dict[str, Any]) -> CatalogRow:
    return msgspec.convert(d, CatalogRow)


def get(conn: psycopg.Connection, key: str) -> CatalogRow | None:
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(f"SELECT {_COLS} FROM segment_catalog WHERE key = %s", (key,))
        row = found.fetchone()
    return _row(row) if row else None


def by_keys(conn: psycopg.Connection, keys: list[str]) -> dict[str, CatalogRow]:
    """The rows of these keys (absent keys are simply missing from the result)."""
    if not keys:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(f"SELECT {_COLS} FROM segment_catalog WHERE key = ANY(%s)", (keys,))
        return {r["key"]: _row(r) for r in found}


def rows(
    conn: psycopg.Connection,
    env: str,
    *,
    feed: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    verified: bool | None = None,
    in_store: bool | None = None,
) -> Iterator[CatalogRow]:
    """Rows of an environment in (start_ns, shard, conn) order.

    `since_ns`/`until_ns` select segments that may hold lines in [since, until);
    `in_store=True` keeps verified rows whose object retention has not deleted.
    """
    where, args = ["env = %s"], [env]
    if feed is not None:
        where.append("feed = %s")
        args.append(feed)
    if since_ns is not None:
        where.append("coalesce(last_t, start_ns) >= %s")
        args.append(since_ns)  # type: ignore[arg-type]
    if until_ns is not None:
        where.append("start_ns < %s")
        args.append(until_ns)  # type: ignore[arg-type]
    if verified is not None:
        where.append("verified = %s")
        args.append(verified)  # type: ignore[arg-type]
    if in_store is not None:
        cond = "verified AND object_deleted_ns IS NULL"
        where.append(cond if in_store else f"NOT ({cond})")
    sql = (
        f"SELECT {_COLS} FROM segment_catalog WHERE {' AND '.join(where)}"
        " ORDER BY start_ns, shard, conn, key"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(sql, args):  # type: ignore[arg-type]
            yield _row(row)


def upsert_pending(conn: psycopg.Connection, m: Manifest, now: int) -> CatalogRow:
    """Record a segment about to be shipped. A verified row is left as it is; any other
    row takes the manifest's values and loses a quarantine mark (the operator put the
    segment back, e.g. after re-sealing it)."""
    data = msgspec.to_builtins(m)
    conn.execute(
        "INSERT INTO segment_catalog (key, env, feed, shard, conn, start_ns, first_t, last_t,"
        " lines, size, sha256, manifest, updated_ns)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (key) DO UPDATE SET first_t = excluded.first_t,"
        " last_t = excluded.last_t, lines = excluded.lines, size = excluded.size,"
        " sha256 = excluded.sha256, manifest = excluded.manifest,"
        " quarantined_ns = NULL, quarantine_reason = NULL, quarantine_path = NULL,"
        " local_deleted_ns = NULL, updated_ns = excluded.updated_ns"
        " WHERE NOT segment_catalog.verified",
        (
            m.key,
            m.env,
            m.feed,
            m.shard,
            m.conn,
            m.start_ns,
            m.first_t,
            m.last_t,
            m.lines,
            m.size,
            m.sha256,
            Jsonb(data),
            now,
        ),
    )
    row = get(conn, m.key)
    assert row is not None
    return row


def mark_verified(conn: psycopg.Connection, key: str, etag: str, shipped_ns: int, now: int) -> None:
    """The store holds exactly the manifest's bytes at `key`."""
    conn.execute(
        "UPDATE segment_catalog SET verified = true, etag = %s, shipped_ns = %s,"
        " verified_ns = %s, last_error = '', updated_ns = %s WHERE key = %s",
        (etag, shipped_ns, now, now, key),
    )


def mark_failed(conn: psycopg.Connection, key: str, error: str, now: int) -> None:
    """One more failed attempt (the segment stays local and pending)."""
    conn.execute(
        "UPDATE segment_catalog SET attempts = attempts + 1, last_error = %s, updated_ns = %s"
        " WHERE key = %s",
        (error[:2000], now, key),
    )


def mark_quarantined(
    conn: psycopg.Connection,
    *,
    key: str,
    env: str,
    feed: str,
    shard: int,
    conn_no: int,
    start_ns: int,
    size: int,
    manifest: Manifest | None,
    reason: str,
    path: str,
    now: int,
) -> None:
    """A segment whose bytes or manifest cannot be trusted, moved aside (never shipped)."""
    m = manifest
    conn.execute(
        "INSERT INTO segment_catalog (key, env, feed, shard, conn, start_ns, first_t, last_t,"
        " lines, size, sha256, manifest, quarantined_ns, quarantine_reason, quarantine_path,"
        " updated_ns) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (key) DO UPDATE SET quarantined_ns = excluded.quarantined_ns,"
        " quarantine_reason = excluded.quarantine_reason,"
        " quarantine_path = excluded.quarantine_path, updated_ns = excluded.updated_ns"
        " WHERE NOT segment_catalog.verified",
        (
            key,
            env,
            feed,
            shard,
            conn_no,
            start_ns,
            m.first_t if m else None,
            m.last_t if m else None,
            m.lines if m else None,
            m.size if m else size,
            m.sha256 if m else None,
            Jsonb(msgspec.to_builtins(m)) if m else None,
            now,
            reason,
            path,
            now,
        ),
    )


def mark_local_deleted(conn: psycopg.Connection, key: str, now: int) -> None:
    conn.execute(
        "UPDATE segment_catalog SET local_deleted_ns = %s, updated_ns = %s WHERE key = %s",
        (now, now, key),
    )


def mark_object_deleted(conn: psycopg.Connection, key: str, now: int) -> None:
    conn.execute(
        "UPDATE segment_catalog SET object_deleted_ns = %s, updated_ns = %s WHERE key = %s",
        (now, now, key),
    )
