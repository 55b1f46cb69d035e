"""Explicit time: integer nanoseconds since the Unix epoch, UTC (DESIGN.md §5)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

NS = 1_000_000_000
_FRACTION = re.compile(r"(?<=\d\d:\d\d:\d\d)[.,](\d{1,9})")


def now_ns() -> int:
    """Wall-clock time now, ns."""
    return time.time_ns()


def parse_time(text: str | int) -> int:
    """Parse ns since the epoch, or an ISO-8601 time (naive means UTC), into ns.

    Raises ValueError with an example of each accepted form.
    """
    if isinstance(text, int):
        return text
    raw = text.strip()
    if raw.lstrip("-").isdigit():
        return int(raw)
    # datetime stops at microseconds; take the fraction ourselves so ns survive.
    fraction = _FRACTION.search(raw)
    frac_ns = int(fraction.group(1).ljust(9, "0")) if fraction else 0
    if fraction:
        raw = raw[: fraction.start()] + raw[fraction.end() :]
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ns since the epoch like 1700000000000000000, "
            "or ISO-8601 like 2026-11-25T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    delta = parsed - epoch
    return (delta.days * 86_400 + delta.seconds) * NS + frac_ns


def format_ns(ns: int) -> str:
    """ISO-8601 UTC with nanoseconds, e.g. 2026-11-25T12:00:00.000000001Z."""
    seconds, frac = divmod(ns, NS)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}Z"
