"""Pure decisions of the session layer: reconnect backoff, pacing, rate-limit waits.

No clocks and no randomness are read here: callers pass `now` and a uniform draw, so
every rule is a plain function a property test can drive.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass

BANNED_DEFAULT_S = 120.0
"""Binance's 418 (IP banned after ignoring 429s) lasts 2 min to 3 days; without a
Retry-After we assume the minimum and let backoff grow from there."""


@dataclass(frozen=True)
class BackoffPolicy:
    """Capped exponential backoff with full jitter (delay ~ U(0, min(cap, base·2^attempt))).

    Full jitter, not "equal" or none: after a venue outage every connector of every
    shard reconnects at once; spreading them uniformly over the whole window is what
    keeps them from hitting the venue's connection rate limit together.
    """

    base: float = 0.5
    """Seconds; the ceiling of the first retry's window."""
    cap: float = 30.0
    """Seconds; no window grows beyond this."""
    stable_after: float = 30.0
    """A connection that lived this long resets the attempt counter."""

    def ceiling(self, attempt: int) -> float:
        """The window's upper bound for retry number `attempt` (0-based)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # 2**attempt overflows floats near 1024; the cap is reached long before.
        exp = min(attempt, 1023)
        return min(self.cap, self.base * math.ldexp(1.0, exp))

    def delay(self, attempt: int, u: float) -> float:
        """The wait before retry `attempt`, given a uniform draw u in [0, 1)."""
        if not 0.0 <= u < 1.0:
            raise ValueError(f"u must be in [0, 1), not {u}")
        return u * self.ceiling(attempt)


def retry_after(status: int, headers: Mapping[str, str], now_wall: float) -> float | None:
    """Seconds the server told us to wait, or None when it did not tell us to wait.

    429 (too many requests) and 418 (Binance: banned for ignoring 429s) honour
    Retry-After, as delta-seconds or an HTTP date; 503 honours it only when present.
    A 418 without the header still waits BANNED_DEFAULT_S; a 429 without it waits 1 s.
    """
    raw = None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value.strip()
            break
    told = _parse_retry_after(raw, now_wall) if raw else None
    if status == 418:
        return told if told is not None else BANNED_DEFAULT_S
    if status == 429:
        return told if told is not None else 1.0
    if status == 503:
        return told
    return None


def _parse_retry_after(raw: str, now_wall: float) -> float | None:
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_wall)


class TokenBucket:
    """Subscribe pacing: at most `rate` messages per second with bursts of `burst`.

    `take(now)` answers how long to wait before sending one message (0 = now) and books
    the token, so successive calls space messages exactly 1/rate apart once the burst
    is spent. Venues publish such limits (e.g. Binance: 5 incoming messages/s).
    """

    def __init__(self, rate: float, burst: int = 1, now: float = 0.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """Seconds to wait before the next message may go; the token is consumed."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate
