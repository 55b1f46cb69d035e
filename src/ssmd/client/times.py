"""Times as the gateway takes them: ns since the epoch, exact (no float on the way)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ssmd.model.time import parse_time

Time = int | str | datetime | date
"""ns since the epoch, ISO-8601 text, a datetime (naive = UTC) or a date (midnight UTC)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(value: Time) -> int:
    """Any accepted time as integer ns; ValueError names what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return parse_time(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        us = (dt - _EPOCH) // timedelta(microseconds=1)
        return us * 1000 + int(getattr(value, "nanosecond", 0))  # pandas.Timestamp keeps ns
    if isinstance(value, date):
        return to_ns(datetime(value.year, value.month, value.day, tzinfo=UTC))
    raise ValueError(f"not a time: {value!r} ({type(value).__name__})")
