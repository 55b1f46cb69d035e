"""One venue connection of a connector: its session, its journal, its derivation.

Every frame is journaled the moment it is read, before anything else happens ("raw is
the truth"). Derivation then runs either *live* (straight from the frame) or, after the
outbox filled up (NATS slow or down), from the journal: `derived` is the position of
the last journal line turned into records, so the derivation sees every line exactly
once, in order, whichever way it arrives — and its state (books, sequences) stays right.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import orjson

from ssmd.capture.derive import Deriver
from ssmd.capture.journal import Journal, SegmentPos
from ssmd.capture.journal_read import iter_segment
from ssmd.capture.session import Session
from ssmd.capture.staleness import InstrumentStaleness
from ssmd.model.records import Record

Sink = Callable[["Link", list[Record]], None]


class Link:
    def __init__(self, index: int, journal: Journal, deriver: Deriver, sink: Sink) -> None:
        self.index = index
        self.journal = journal
        self.deriver = deriver
        self.sink = sink
        self.session: Session | None = None
        self.live = True
        self.head: SegmentPos | None = None
        """The newest journal line written."""
        self.derived: SegmentPos | None = None
        """The newest journal line derived."""
        self.opened: SegmentPos | None = None
        """The `open` line of the current venue connection (derivation restarts there)."""
        self.frames_in = 0
        self.staleness = InstrumentStaleness()
        self.iids: Mapping[str, int] = {}
        """The secmaster's iids (the connector's map, kept current by hot reload)."""

    # -- session callbacks (journal first, then derive if live) ------------------------

    def on_frame(self, payload: bytes, ts_recv: int, mono: int) -> None:
        self.frames_in += 1
        self._line(ts_recv, mono, "in", payload)

    def on_out(self, payload: bytes, ts: int, mono: int) -> None:
        self._line(ts, mono, "out", payload)

    def on_event(self, kind: str, detail: str, ts: int, mono: int) -> None:
        payload = detail
        if kind == "open" and self.session is not None:
            symbols = self.session.symbols
            iids = {s: self.iids[s] for s in symbols if s in self.iids}
            payload = orjson.dumps({"url": detail, "symbols": symbols, "iids": iids}).decode()
        self._line(ts, mono, kind, payload)

    def on_rest(self, url: str, body: bytes, ts: int, mono: int) -> None:
        self._line(ts, mono, "rest", body, url)

    def on_event_line(self, payload: bytes) -> None:
        """An observation of the runtime's own (e.g. an instrument went stale), journaled
        as an `error` line so that deriving the journal reproduces what it caused."""
        self._line(time.time_ns(), time.monotonic_ns(), "error", payload)

    def _line(self, ts: int, mono: int, kind: str, payload: bytes | str, url: str = "") -> None:
        pos = self.journal.write(ts, mono, kind, payload, url)  # type: ignore[arg-type]
        self.head = pos
        if kind == "open":
            self.opened = pos
        if self.live:
            self.derived = pos
            self.sink(self, self.deriver.line(kind, payload, ts, url))

    # -- catching up from the journal ---------------------------------------------------

    def pending_lines(self, limit: int) -> Iterator[tuple[SegmentPos, str, bytes | str, int, str]]:
        """Up to `limit` journal lines written but not yet derived, in order."""
        self.journal.flush()  # make the open segment readable to its last line
        segments = [self.journal.root / m.key for m in self.journal.manifests]
        if self.journal.path is not None:
            segments.append(self.journal.path)
        start = self.derived
        index, first = 0, 0
        if start is not None:
            index = _index(segments, start.path)
            first = start.line + 1
        produced = 0
        for i in range(index, len(segments)):
            path = segments[i]
            for n, line in enumerate(iter_segment(path, start_line=first), start=first):
                yield SegmentPos(path, n), line.d, line.payload, line.t, line.url
                produced += 1
                if produced >= limit:
                    return
            first = 0

    def catch_up(self, limit: int) -> bool:
        """Derive up to `limit` pending lines; True once derivation reached the head
        (the link is live again)."""
        for pos, kind, payload, ts, url in self.pending_lines(limit):
            self.derived = pos
            self.sink(self, self.deriver.line(kind, payload, ts, url))
        if self.derived == self.head:
            self.live = True
        return self.live


def _index(segments: list[Path], path: Path) -> int:
    try:
        return segments.index(path)
    except ValueError:
        raise RuntimeError(f"journal segment {path} is no longer known to its writer") from None
