"""The gateway's Postgres: one small connection pool, used from worker threads.

Why a pool of sync connections behind `anyio.to_thread`: the metadata stores
(`ssmd.meta.*`) are synchronous psycopg code, and the gateway's event loop must never
block on them. The first connection goes through `ssmd.meta.connect`, which applies any
pending migrations, so a gateway never needs a manual migration step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
import psycopg
from psycopg_pool import ConnectionPool

from ssmd.meta import connect

T = TypeVar("T")


class MetaPool:
    """`await pool.run(fn)` calls fn(conn) in a thread and commits (rolls back on error)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self.url = url
        connect(url).close()  # migrate once, before anything reads
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": False, "application_name": "ssmd-gateway"},
            open=True,
            timeout=5.0,
        )

    def run_sync(self, fn: Callable[[psycopg.Connection], T]) -> T:
        with self._pool.connection() as conn:
            return fn(conn)  # the pool commits on success, rolls back on error

    async def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    def close(self) -> None:
        self._pool.close()
