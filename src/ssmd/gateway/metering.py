"""Usage metering: per client, per UTC day, per kind — messages, bytes, requests — with
the client's licensing class (display / non-display / trading).

The hot path only adds to an in-memory dict under a lock (`Meter.record`, O(1), safe
from any thread or task); `flush()` writes the accumulated counters to Postgres in one
transaction as additive upserts, so many gateways can share the table and a flush that
fails leaves its counters pending for the next one (nothing is lost on a Postgres blip;
a crash loses at most one flush interval).

    meter = Meter(pool, env="dev")                     # pool: gateway.db.MetaPool
    meter.record(principal, "stream", messages=1, bytes=len(frame))   # WebSocket
    meter.record(principal, "rest:trades", messages=rows, bytes=len(body), requests=1)
    await meter.run(stop_event)                        # flushes every interval, and at stop
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from ssmd.model.time import now_ns

if TYPE_CHECKING:
    from collections.abc import Callable

    from ssmd.gateway.auth import Principal
    from ssmd.gateway.db import MetaPool

log = logging.getLogger("ssmd.gateway.metering")

Key = tuple[str, str, date, str, str]
"""(env, client_id, day, kind, class)"""


def day_of(ns: int) -> date:
    return datetime.fromtimestamp(ns // 10**9, tz=UTC).date()


class Meter:
    """In-memory usage counters, flushed to the `usage` table in batches."""

    def __init__(
        self,
        pool: MetaPool | None,
        env: str,
        *,
        interval_s: float = 10.0,
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self.pool = pool
        self.env = env
        self.interval_s = interval_s
        self.clock = clock
        self._pending: dict[Key, list[int]] = {}
        self._lock = threading.Lock()
        self.flushed_rows = 0
        self.last_error = ""

    def record(
        self,
        principal: Principal,
        kind: str,
        messages: int = 0,
        bytes: int = 0,
        *,
        requests: int = 0,
    ) -> None:
        """Count usage now. `kind`: 'stream', 'rest:<endpoint>', 'export', … (free text)."""
        key = (self.env, principal.client_id, day_of(self.clock()), kind, principal.type)
        with self._lock:
            c = self._pending.get(key)
            if c is None:
                self._pending[key] = [requests, messages, bytes]
            else:
                c[0] += requests
                c[1] += messages
                c[2] += bytes

    def pending(self) -> dict[Key, tuple[int, int, int]]:
        """(requests, messages, bytes) not yet flushed."""
        with self._lock:
            return {k: (v[0], v[1], v[2]) for k, v in self._pending.items()}

    def _take(self) -> dict[Key, list[int]]:
        with self._lock:
            batch, self._pending = self._pending, {}
        return batch

    def _giveback(self, batch: dict[Key, list[int]]) -> None:
        with self._lock:
            for key, (r, m, b) in batch.items():
                c = self._pending.setdefault(key, [0, 0, 0])
                c[0] += r
                c[1] += m
                c[2] += b

    def flush_sync(self) -> int:
        """Write pending counters; the rows upserted (0 with nothing pending)."""
        batch = self._take()
        if not batch or self.pool is None:
            if self.pool is None:
                self._giveback(batch)
            return 0
        try:
            self.pool.run_sync(lambda conn: write(conn, batch, self.clock()))
        except Exception as exc:
            self._giveback(batch)
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        self.last_error = ""
        self.flushed_rows += len(batch)
        return len(batch)

    async def flush(self) -> int:
        return await asyncio.to_thread(self.flush_sync)

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `interval_s` until `stop` is set, then a last time."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            try:
                await self.flush()
            except Exception:
                log.warning("usage flush failed; counters kept for the next one", exc_info=True)


def write(conn: psycopg.Connection, batch: dict[Key, list[int]], ts_ns: int) -> None:
    """Additive upserts of one batch (the caller's transaction)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO usage (env, client_id, day, kind, class, requests, messages, bytes,"
            " updated_ns) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (env, client_id, day, kind, class) DO UPDATE SET"
            " requests = usage.requests + excluded.requests,"
            " messages = usage.messages + excluded.messages,"
            " bytes = usage.bytes + excluded.bytes, updated_ns = excluded.updated_ns",
            [(*key, *counts, ts_ns) for key, counts in sorted(batch.items())],
        )


def month_range(month: str) -> tuple[date, date]:
    """'YYYY-MM' → [first day, first day of next month); ValueError otherwise."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"not a month: {month!r} (use YYYY-MM, e.g. 2026-11)") from None
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, nxt


def report(conn: psycopg.Connection, month: str, env: str | None = None) -> list[dict[str, Any]]:
    """Per (env, client, class, kind) sums over one month, ordered by env, client, kind."""
    first, nxt = month_range(month)
    rows = conn.execute(
        "SELECT env, client_id, class, kind, sum(requests)::bigint, sum(messages)::bigint,"
        " sum(bytes)::bigint, count(DISTINCT day)::int FROM usage"
        " WHERE day >= %s AND day < %s AND (%s::text IS NULL OR env = %s)"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 4, 3",
        (first, nxt, env, env),
    ).fetchall()
    return [
        {
            "env": r[0],
            "client": r[1],
            "class": r[2],
            "kind": r[3],
            "requests": r[4],
            "messages": r[5],
            "bytes": r[6],
            "days": r[7],
        }
        for r in rows
    ]
