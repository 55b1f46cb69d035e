"""What the MCP tools do, without MCP: one environment's data, read on behalf of an
authenticated `Principal`, with the gateway's entitlement policy and bounds.

Why separate from `mcp.py`: the tools are thin (argument docs, auth, audit); the
policy here is plain synchronous code over the same libraries the gateway uses
(`History`, `catalog`, the secmaster, `gateway.windows`), so it reads the same and
refuses the same. Every method returns JSON-ready builtins; decimals are strings.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ssmd.agents import feedback
from ssmd.gateway.auth import Principal, authorize, require_scope
from ssmd.gateway.db import MetaPool
from ssmd.gateway.rest_history import paginate
from ssmd.gateway.rest_reference import sees_feed, sees_symbol
from ssmd.gateway.windows import entitled_intervals, record_time
from ssmd.model.fixed import from_fixed
from ssmd.model.time import now_ns, parse_time
from ssmd.spec.model import Environment

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
"""Rows per page: a model's context is the scarce resource, so pages stay small."""
MAX_DAYS = 31
MAX_GAP_HOURS = 7 * 24
MAX_GAP_SYMBOLS = 20
HOUR_NS = 3600 * 10**9


@dataclass
class Settings:
    definition: Environment
    pg_url: str
    nats_url: str | None = None
    data_dir: Path | None = None

    @property
    def env(self) -> str:
        return self.definition.metadata.name

    @property
    def root(self) -> Path:
        return (self.data_dir or Path(self.definition.storage.data_dir)).resolve()


def when(value: str | int | None, name: str) -> int | None:
    """A time argument: ns since the epoch or ISO-8601; ValueError names the argument."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def span(start: str | int, end: str | int) -> tuple[int, int]:
    t0, t1 = when(start, "start"), when(end, "end")
    if t0 is None or t1 is None:
        raise ValueError("start and end are required")
    if t1 <= t0:
        raise ValueError(f"empty range: end ({t1}) must be after start ({t0})")
    return t0, t1


def bounded(limit: int | None, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int:
    if limit is None:
        return default
    if not 1 <= limit <= most:
        raise ValueError(f"limit must be between 1 and {most}, not {limit}")
    return limit


def decode_cursor(cursor: str, start: int, end: int) -> tuple[int, int]:
    try:
        ts, skip = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(ts, int) and isinstance(skip, int) and skip >= 0):
            raise ValueError
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("cursor: not a next_cursor from this tool") from None
    if not start <= ts < end:
        raise ValueError("cursor: outside [start, end) of this query (same arguments needed)")
    return ts, skip


class Service:
    """One environment's tools; thread-safe (the pool and History are)."""

    def __init__(self, settings: Settings, pool: MetaPool | None = None) -> None:
        self.settings = settings
        self.env = settings.env
        self.pool = pool or MetaPool(settings.pg_url)
        self._store: Any = None

    def store(self) -> Any:
        if self._store is None:
            from ssmd.storage import ObjectStore

            self._store = ObjectStore.from_spec(self.settings.definition.storage,
                                                self.settings.root)  # fmt: skip
        return self._store

    def history(self, feed: str) -> Any:
        from ssmd.bus.msgid import seq_scope
        from ssmd.history.query import History

        venue = self.settings.definition.feeds[feed].venue
        return History(self.store(), self.env, feed, nats_url=self.settings.nats_url,
                       scope=seq_scope(venue), cache=self.settings.root / "cache")  # fmt: skip

    def _feed(self, p: Principal, feed: str) -> None:
        feeds = self.settings.definition.feeds
        if feed not in feeds:
            visible = [f for f in sorted(feeds) if sees_feed(p, f, now_ns())]
            raise ValueError(f"no feed {feed!r}; feeds you can see: {', '.join(visible)}")

    # -- reference ------------------------------------------------------------------------

    def list_feeds(self, p: Principal) -> dict[str, Any]:
        require_scope(p, "read")
        now = now_ns()
        feeds = [
            {"name": name, "venue": f.venue, "enabled": f.enabled, "channels": list(f.channels),
             "instruments": list(f.instruments), "depth": f.depth}
            for name, f in sorted(self.settings.definition.feeds.items())
            if sees_feed(p, name, now)
        ]  # fmt: skip
        return {"env": self.env, "count": len(feeds), "feeds": feeds}

    def search_instruments(
        self, p: Principal, query: str | None, venue: str | None, at: str | int | None,
        limit: int | None, offset: int,
    ) -> dict[str, Any]:  # fmt: skip
        from ssmd.meta import instruments as secmaster

        require_scope(p, "read")
        n = bounded(limit, 50, 500)
        if offset < 0:
            raise ValueError("offset must be >= 0")
        ts = when(at, "at") or now_ns()
        now = now_ns()
        found = self.pool.run_sync(
            lambda c: secmaster.search(c, venue=venue, symbol=query or None, ts_ns=ts)
        )
        by_venue: dict[str, list[str]] = {}
        for name, f in self.settings.definition.feeds.items():
            by_venue.setdefault(f.venue, []).append(name)
        rows = [
            {"iid": v.iid, "venue": v.venue, "venue_symbol": v.venue_symbol, "symbol": v.symbol,
             "kind": v.kind, "base": v.base, "quote": v.quote,
             "tick_size": from_fixed(v.tick_size), "lot_size": from_fixed(v.lot_size),
             "status": v.status, "expiry_ns": v.expiry_ns, "valid_from": v.valid_from,
             "valid_to": v.valid_to, "feeds": sorted(by_venue.get(v.venue, []))}
            for v in found
            if any(sees_symbol(p, f, v.symbol, now) for f in by_venue.get(v.venue, []))
        ]  # fmt: skip
        page = rows[offset : offset + n]
        nxt = offset + n if offset + n < len(rows) else None
        return {"at": ts, "total": len(rows), "count": len(page), "offset": offset,
                "next_offset": nxt, "instruments": page}  # fmt: skip

    # -- history --------------------------------------------------------------------------

    def records(
        self, p: Principal, kind: str, feed: str, symbol: str, start: str | int, end: str | int,
        by: str, limit: int | None, cursor: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        from ssmd.history.schema import from_table
        from ssmd.model.codec import to_wire

        require_scope(p, "read")
        self._feed(p, feed)
        t0, t1 = span(start, end)
        n = bounded(limit)
        pos = decode_cursor(cursor, t0, t1) if cursor else None
        now = now_ns()
        lo0 = pos[0] if pos else t0
        spans = entitled_intervals(p, feed, symbol, kind, lo0, t1, now)
        h = self.history(feed)
        rows: list[Any] = []
        for lo, hi in spans:
            rows += from_table(kind, h.records(kind, symbol, lo, hi, by))
        rows = [r for r in rows
                if p.entitled(feed=feed, symbol=r.symbol, record_type=kind,
                              data_ns=record_time(r.ts_event, r.ts_recv), now=now)]  # fmt: skip
        page, nxt = paginate(rows, lambda r: getattr(r, by), n, pos)
        return {"feed": feed, "type": kind, "symbol": symbol, "start": t0, "end": t1, "by": by,
                "count": len(page), "next_cursor": nxt, "clipped": spans != [(lo0, t1)],
                "records": [to_wire(r) for r in page]}  # fmt: skip

    def book_at(
        self, p: Principal, feed: str, symbol: str, at: str | int, by: str, depth: int
    ) -> dict[str, Any]:
        require_scope(p, "read")
        self._feed(p, feed)
        if not 0 <= depth <= 1000:
            raise ValueError("depth must be between 0 (all) and 1000")
        t = when(at, "at")
        if t is None:
            raise ValueError("at: a time is required")
        authorize(p, feed, symbol, "book", t)
        book = self.history(feed).book_at(symbol, t, by)

        def cut(levels: list[Any]) -> list[list[str]]:
            return [[from_fixed(px), from_fixed(sz)] for px, sz in levels[: depth or None]]

        return {"feed": feed, "symbol": symbol, "at": t, "by": by, "known": book.known,
                "reason": book.reason, "snapshot_ts_recv": book.snapshot_ts_recv,
                "deltas": book.deltas, "last_ts_recv": book.last_ts_recv,
                "bids": cut(book.bids), "asks": cut(book.asks)}  # fmt: skip

    def bars(
        self, p: Principal, feed: str, symbol: str, start: str | int, end: str | int,
        interval: str, by: str, limit: int | None, cursor: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        from ssmd.spec.units import parse_duration

        require_scope(p, "read")
        self._feed(p, feed)
        t0, t1 = span(start, end)
        iv = int(interval) if interval.isdigit() else parse_duration(interval)
        if iv <= 0:
            raise ValueError("interval must be positive, e.g. 1m")
        n = bounded(limit)
        pos = decode_cursor(cursor, t0, t1) if cursor else None
        lo0 = pos[0] if pos else t0
        spans = entitled_intervals(p, feed, symbol, "trade", lo0, t1, now_ns())
        h = self.history(feed)
        rows = [r for lo, hi in spans for r in h.bars(symbol, lo, hi, iv, by).to_pylist()]
        page, nxt = paginate(rows, lambda r: r["ts"], n, pos)
        dec = ("open", "high", "low", "close", "volume")
        bars = [{**r, **{k: from_fixed(r[k]) for k in dec}} for r in page]
        return {"feed": feed, "symbol": symbol, "start": t0, "end": t1, "by": by,
                "interval_ns": iv, "count": len(bars), "next_cursor": nxt,
                "clipped": spans != [(lo0, t1)], "bars": bars}  # fmt: skip

    # -- archive and quality --------------------------------------------------------------

    def _catalog(self, p: Principal, feed: str | None) -> list[dict[str, Any]]:
        from ssmd.history.catalog import catalog

        if feed is not None:
            self._feed(p, feed)
        now = now_ns()
        out = []
        for day in catalog(self.store(), self.env, feed):
            if sees_feed(p, day["feed"], now):
                day = dict(day)
                day["symbols"] = [s for s in day["symbols"] if sees_symbol(p, day["feed"], s, now)]
                out.append(day)
        return out

    def data_catalog(
        self, p: Principal, feed: str | None, limit: int | None, offset: int
    ) -> dict[str, Any]:
        require_scope(p, "read")
        n = bounded(limit, MAX_DAYS, 366)
        days = self._catalog(p, feed)
        days.sort(key=lambda d: (d["date"], d["feed"], d["version"]), reverse=True)
        page = days[offset : offset + n]
        nxt = offset + n if offset + n < len(days) else None
        return {"env": self.env, "total": len(days), "count": len(page), "offset": offset,
                "next_offset": nxt, "days": page}  # fmt: skip

    def data_quality(
        self, p: Principal, feed: str, days: int, symbol: str | None, hours: int
    ) -> dict[str, Any]:
        """Gaps per day (catalog), recent gap records, completeness score, open reports."""
        from ssmd.history.schema import from_table
        from ssmd.model.codec import to_wire

        require_scope(p, "read")
        if not 1 <= days <= MAX_DAYS:
            raise ValueError(f"days must be between 1 and {MAX_DAYS}")
        if not 1 <= hours <= MAX_GAP_HOURS:
            raise ValueError(f"hours must be between 1 and {MAX_GAP_HOURS}")
        cat = sorted(self._catalog(p, feed), key=lambda d: d["date"], reverse=True)[:days]
        per_day = [
            {"date": d["date"], "version": d["version"], "gaps": d["gaps"], "hours": d["hours"],
             "complete_hours": d["complete_hours"], "quarantined": d["quarantined"],
             "completeness": round(d["complete_hours"] / 24, 4)}
            for d in cat
        ]  # fmt: skip
        now = now_ns()
        symbols = [symbol] if symbol else sorted({s for d in cat for s in d["symbols"]})
        h = self.history(feed)
        windows = [(now - hours * HOUR_NS, now)]
        if cat:  # the archive may end before now: also look back from its last day's end
            last = parse_time(cat[0]["date"] + "T00:00:00Z") + 24 * HOUR_NS
            windows.append((last - hours * HOUR_NS, last))
        seen: set[tuple[int, str]] = set()
        gaps: list[dict[str, Any]] = []
        for sym in symbols[:MAX_GAP_SYMBOLS]:
            for lo, hi in windows:
                for g in from_table("gap", h.records("gap", sym, lo, hi, "ts_recv")):
                    ok = p.entitled(
                        feed=feed,
                        symbol=g.symbol,
                        record_type="gap",
                        data_ns=record_time(g.ts_event, g.ts_recv),
                        now=now,
                    )
                    if ok and (g.ts_recv, g.symbol) not in seen:
                        seen.add((g.ts_recv, g.symbol))
                        gaps.append(to_wire(g))
        gaps.sort(key=lambda g: g["ts_recv"], reverse=True)
        issues = self.pool.run_sync(lambda c: feedback.open_issues(c, self.env, feed, 20))
        return {"env": self.env, "feed": feed, "days": per_day,
                "recent_gaps": gaps[:100], "recent_gap_count": len(gaps),
                "gap_window_hours": hours, "open_issues": issues}  # fmt: skip

    # -- feedback -------------------------------------------------------------------------

    def report_issue(self, p: Principal, report: feedback.Report) -> dict[str, Any]:
        """The shared intake (validate, authorize, store, forward): same as POST /v1/feedback."""
        return feedback.intake(self.pool, self.settings.definition, p, report, "mcp")

    def audit(self, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
        from ssmd.meta import audit

        self.pool.run_sync(lambda c: audit.append(c, actor, action, target, details))

    def close(self) -> None:
        self.pool.close()
