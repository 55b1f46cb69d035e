"""One venue's "wait until" shared by its WebSocket sessions and REST fetcher.

Rate limits are per IP, not per socket: when Binance answers 418 to a depth snapshot,
the next WebSocket handshake to the same venue must wait too, or the ban grows. Every
session and fetcher of a venue therefore shares one gate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateGate:
    """`block(seconds)` closes the gate; `await wait()` opens when every block expired."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self.reason = ""
        self.blocks = 0

    def block(self, seconds: float, reason: str = "") -> None:
        """Extend the closed period to at least `seconds` from now (never shortens it)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._until:
            self._until = until
            self.reason = reason
        self.blocks += 1

    def remaining(self) -> float:
        return max(0.0, self._until - self._clock())

    async def wait(self) -> float:
        """Sleep until the gate is open; returns the seconds waited."""
        waited = 0.0
        while (left := self.remaining()) > 0:
            await asyncio.sleep(left)
            waited += left
        return waited
