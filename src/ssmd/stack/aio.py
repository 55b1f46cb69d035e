"""Run a coroutine to completion from synchronous code, whatever thread we are on.

Readiness checks and fixture teardowns are synchronous, but may be called while an event
loop is already running in this thread (async tests), where asyncio.run would refuse;
a short-lived worker thread with its own loop works in both cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
    """asyncio.run(coro) on a fresh thread; returns its result or raises its exception."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssmd-aio")
    try:
        return pool.submit(asyncio.run, coro).result(timeout)
    finally:
        pool.shutdown(wait=False)  # on timeout, do not block on the stuck loop
