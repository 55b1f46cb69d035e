"""Run a coroutine to completion from synchronous code, whatever thread we are on.

Readiness checks and fixture teardowns are synchronous, but may be called while an event
loop is already running in this thread (async tests), where asyncio.run would refuse;
a short-lived worker thread with its own loop works in both cases. The thread is a
daemon: one that got stuck (a server that vanished) must never hold up the exit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
    """asyncio.run(coro) on a fresh daemon thread; its result, or its exception."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append((True, asyncio.run(coro)))
        except BaseException as exc:  # handed to the caller below
            outcome.append((False, exc))

    thread = threading.Thread(target=work, name="ssmd-aio", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError(f"coroutine did not finish within {timeout}s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value
