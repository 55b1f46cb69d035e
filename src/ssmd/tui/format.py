"""Pure text for the screens: sizes, times, sparklines and the cells of a heartbeat.

Kept out of the widgets so what an operator reads is tested without a terminal.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

from ssmd.tui.snapshot import Snapshot

BARS = "▁▂▃▄▅▆▇█"
SAMPLES = 60
"""Rate samples kept per component: five minutes at the 5 s heartbeat."""


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def clock(ns: int | None) -> str:
    """HH:MM:SS UTC of a timestamp; '-' for none."""
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%H:%M:%S")


def day_time(ns: int | None) -> str:
    """MM-DD HH:MM UTC (narrow: tables must fit 80 columns); '-' for none."""
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%m-%d %H:%M")


def spark(values: list[float] | tuple[float, ...], width: int = 16) -> str:
    """The last `width` values as block characters, scaled to the largest of them."""
    shown = list(values)[-width:]
    if not shown:
        return ""
    top = max(shown)
    if top <= 0:
        return BARS[0] * len(shown)
    return "".join(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in shown)


def rate(value: Any) -> str:
    return "" if value in (None, "") else f"{float(value):,.1f}"


def health(c: dict[str, Any]) -> str:
    if c.get("error"):
        return "unreachable"
    return "STALE" if c.get("stale") else "ok"


def connections(c: dict[str, Any]) -> str:
    """'live/total' connections of a connector heartbeat; '' for other components."""
    conns = c.get("connections")
    if not conns:
        return ""
    live = sum(1 for x in conns if x.get("live"))
    return f"{live}/{len(conns)}"


def age(ns: int | None, now: int) -> str:
    """How long ago, in the largest whole unit: '40s', '12m', '3h', '2d'."""
    if not ns:
        return "-"
    seconds = max(0, (now - ns) // 10**9)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def gap(c: dict[str, Any], now: int) -> str:
    """The last gap a component saw: 'age reason symbol'."""
    g = c.get("last_gap") or {}
    if not g:
        return ""
    return f"{age(g.get('ts'), now)} {g.get('reason', '')} {g.get('symbol', '')}".strip()


def clock_status(c: dict[str, Any], *, full: bool = False) -> str:
    """'ok', the alarms ('N alarm(s)' unless `full`), or '' when there is no clock."""
    status = c.get("clock")
    if not isinstance(status, dict):
        return ""
    if status.get("ok"):
        return "ok"
    alarms = [str(a) for a in status.get("alarms") or ()] or ["alarm"]
    return "; ".join(alarms) if full else f"{len(alarms)} alarm{'s' if len(alarms) > 1 else ''}"


def name(c: dict[str, Any], width: int = 20) -> str:
    """A component's key without empty parts, cut to `width` (a table must fit 80 cols)."""
    text = ".".join(p for p in str(c.get("key", "")).split(".") if p != "-")
    return text if len(text) <= width else text[: width - 1] + "…"


def lag(c: dict[str, Any]) -> str:
    pending = c.get("pending")
    return "" if pending is None else f"{pending:,}"


class RateHistory:
    """records/s per component, one sample per new heartbeat (not per refresh, so a
    refresh faster than the heartbeat does not stretch the sparkline)."""

    def __init__(self, size: int = SAMPLES) -> None:
        self.size = size
        self.samples: dict[str, deque[float]] = {}
        self._seen: dict[str, int] = {}
        self.total: deque[float] = deque(maxlen=size)

    def add(self, snap: Snapshot) -> None:
        fresh = False
        for c in snap.components:
            key, ts = str(c.get("key")), int(c.get("ts") or 0)
            if "records_per_s" not in c or self._seen.get(key) == ts:
                continue
            self._seen[key] = ts
            fresh = True
            self.samples.setdefault(key, deque(maxlen=self.size)).append(
                float(c["records_per_s"] or 0)
            )
        if fresh:
            self.total.append(total_rate(snap))

    def of(self, key: str) -> list[float]:
        return list(self.samples.get(key, ()))


def total_rate(snap: Snapshot) -> float:
    """records/s of every live (not stale) component."""
    return sum(float(c.get("records_per_s") or 0) for c in snap.components if not c.get("stale"))
