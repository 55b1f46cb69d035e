"""Journal lines → records: the one derivation live capture, verification and
reprocessing share, so live output and reprocessed history are identical by
construction (DESIGN.md §1.2).

A connection's life in the journal is `open`, then `in` / `out` / `rest` lines, then
`close`. Each `open` starts a fresh normalizer (a new connection gets fresh snapshots; no book
or sequence state is carried across a disconnect) — only reference data (the venue's
instruments REST body, which some normalizers learn symbols or precisions from) is
handed on. Each `close` becomes one `gap(reason=disconnect)` per instrument the
connection had produced records for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from itertools import chain
from operator import attrgetter
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from ssmd.capture.journal_read import iter_segment, list_segments
from ssmd.model.records import Gap, Record
from ssmd.venues.base import IntegrityStats, Normalizer, Resync, SymbolInfo
from ssmd.venues.registry import venue_info, venue_module

_symbol = attrgetter("symbol")


def add_stats(total: IntegrityStats, part: IntegrityStats) -> None:
    """Fold one normalizer's counters into a running total."""
    for f in fields(IntegrityStats):
        if f.name == "records":
            for kind, n in part.records.items():
                total.records[kind] = total.records.get(kind, 0) + n
        else:
            setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))


class Deriver:
    """Turns one connection's journal lines, in order, into records."""

    def __init__(
        self, venue: str, feed: str = "", symbols: Mapping[str, SymbolInfo] | None = None
    ) -> None:
        self.venue = venue_info(venue).venue
        self.feed = feed
        self._module = venue_module(venue)
        self._symbols = symbols
        self._done = IntegrityStats()
        self._seen: dict[str, int] = {}
        self._reference_path = urlsplit(self._module.instruments_url()).path
        self._reference: list[tuple[str, bytes | str, int]] = []
        self.normalizer: Normalizer = self._module.normalizer(symbols, feed)
        self.unreadable = 0
        """Lines the journal itself could not read ('error' lines of a recording)."""

    @property
    def stats(self) -> IntegrityStats:
        """Counters over every connection so far."""
        total = IntegrityStats()
        add_stats(total, self._done)
        add_stats(total, self.normalizer.stats)
        return total

    def line(
        self, direction: str, payload: bytes | str, ts_recv: int, url: str = ""
    ) -> list[Record]:
        if direction == "in":
            out = self.normalizer.on_frame(payload, ts_recv)
        elif direction == "rest":
            out = self.normalizer.on_rest(url, payload, ts_recv)
            if urlsplit(url).path == self._reference_path:
                self._reference = [(url, payload, ts_recv)]
        elif direction == "open":
            add_stats(self._done, self.normalizer.stats)
            self.normalizer = self._module.normalizer(self._symbols, self.feed)
            self.normalizer.set_iids(line_iids(payload))
            for ref in self._reference:  # already published once: output not repeated
                self.normalizer.on_rest(*ref)
            return []
        elif direction == "close":
            return self._disconnected(ts_recv, payload)
        elif direction == "error" and _is_event(payload, STALE_EVENT):
            return self._stale(ts_recv, payload)
        elif direction == "error" and _is_event(payload, IIDS_EVENT):
            self.normalizer.set_iids(line_iids(payload))
            return []
        else:
            return []
        self._remember((out,))
        return out

    def frames_in(self, frames: Sequence[tuple[bytes, int, int]]) -> list[list[Record]]:
        """`line("in", payload, ts_recv)` for each (payload, ts_recv, mono) of one socket
        read, in order: each frame's records."""
        out = self.normalizer.on_frames(frames)
        self._remember(out)
        return out

    def _remember(self, lines: Sequence[list[Record]]) -> None:
        """The instruments (and iids) these records are of: a `close` gaps each one.
        Almost always all are known already, which one C-level pass over the symbols
        tells; only otherwise are the records walked (the first iid of each kept)."""
        seen = self._seen
        if seen.keys() >= set(map(_symbol, chain.from_iterable(lines))):
            return
        for records in lines:
            for record in records:
                if record.symbol not in seen:
                    seen[record.symbol] = record.iid

    def take_resyncs(self) -> list[Resync]:
        return self.normalizer.take_resyncs()

    def _stale(self, ts: int, payload: bytes | str) -> list[Record]:
        event = msgspec.json.decode(payload)
        symbol, silent_ns = str(event["symbol"]), int(event["silent_ns"])
        return [
            Gap(
                feed=self.feed,
                venue=self.venue,
                symbol=symbol,
                iid=self._seen.get(symbol, 0),
                ts_recv=ts,
                reason="stale",
                since_ns=ts - silent_ns,
                detail=f"silent {silent_ns / 1e9:.1f}s while the venue's heartbeat was silent too",
            )
        ]

    def _disconnected(self, ts: int, why: bytes | str) -> list[Record]:
        detail = why if isinstance(why, str) else why.decode("utf-8", "replace")
        gaps: list[Record] = [
            Gap(
                feed=self.feed,
                venue=self.venue,
                symbol=symbol,
                iid=iid,
                ts_recv=ts,
                reason="disconnect",
                since_ns=ts,
                detail=detail[:200],
            )
            for symbol, iid in self._seen.items()
        ]
        self._seen = {}
        return gaps


STALE_EVENT = b'{"event":"stale"'
IIDS_EVENT = b'{"event":"iids"'


def stale_event(symbol: str, silent_ns: int) -> bytes:
    """The journal line (direction `error`) with which the connector records that an
    instrument went stale: a wall-clock observation, journaled so derivation stays pure."""
    return msgspec.json.encode({"event": "stale", "symbol": symbol, "silent_ns": silent_ns})


def iids_event(iids: Mapping[str, int]) -> bytes:
    """The journal line (direction `error`) that hands the secmaster's iids of instruments
    added to a live connection (hot reload) to the derivation, before their subscribe."""
    return msgspec.json.encode({"event": "iids", "iids": dict(iids)})


def line_iids(payload: bytes | str) -> dict[str, int]:
    """The iids an `open` line (`{"url", "symbols", "iids"}`) or an iids event carries;
    {} for anything else — journals and recordings from before iids (an `open` payload
    may be a bare URL) or a damaged line: names stay right, iids are then 0."""
    try:
        iids = msgspec.json.decode(payload).get("iids")
        return {str(k): int(v) for k, v in iids.items()}
    except (msgspec.DecodeError, AttributeError, TypeError, ValueError):
        return {}


def _is_event(payload: bytes | str, event: bytes) -> bool:
    head = payload[: len(event)]
    return (head if isinstance(head, bytes) else head.encode()) == event


def derive_journal(
    root: Path,
    env: str,
    feed: str,
    venue: str,
    *,
    shard: int | None = None,
    symbols: Mapping[str, SymbolInfo] | None = None,
) -> Iterator[Record]:
    """Every record a feed's journal yields, connection by connection (what the live
    connector published, re-derived offline: the reprocessor's and the tests' source)."""
    by_conn: dict[tuple[int, int], list[Path]] = {}
    for seg in list_segments(root, env, feed, shard=shard):
        by_conn.setdefault((seg.shard, seg.conn), []).append(seg.path)
    for paths in by_conn.values():
        deriver = Deriver(venue, feed, symbols)
        for path in paths:
            for line in iter_segment(path):
                yield from deriver.line(line.d, line.payload, line.t, line.url)
