"""One venue connection of a connector: its session, its journal, its derivation.

Every frame is journaled the moment it is read, before anything else happens ("raw is
the truth"). Derivation then runs either *live* (straight from the frame) or, after the
outbox filled up (NATS slow or down), from the journal: `derived` is the position of
the last journal line turned into records, so the derivation sees every line exactly
once, in order, whichever way it arrives — and its state (books, sequences) stays right.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import orjson

from ssmd.capture.derive import Deriver
from ssmd.capture.journal import Journal, SegmentPos
from ssmd.capture.journal_read import SegmentTail
from ssmd.capture.session import Session
from ssmd.capture.staleness import InstrumentStaleness
from ssmd.model.records import Record

Sink = Callable[["Link", Sequence[list[Record]], Sequence[SegmentPos]], None]
"""(link, each line's records, each line's journal position) for lines derived together."""
Frames = list[tuple[bytes, int, int]]
"""(payload, ts_recv, mono) of the frames one socket read delivered, in order."""
Lines = list[list[Record]]
"""Each journal line's records, in order."""


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
        self.lags = 0
        """Times the link fell back to deriving from the journal (the outbox was full)."""
        self.caught_up = 0
        """Journal lines derived while catching up."""
        self.staleness = InstrumentStaleness()
        self.iids: Mapping[str, int] = {}
        """The secmaster's iids (the connector's map, kept current by hot reload)."""
        self._tail: SegmentTail | None = None
        """The journal reader of the last catch-up (kept: each line is read once)…"""
        self._tail_after: SegmentPos | None = None
        """…and the line it stands right after."""

    # -- session callbacks (journal first, then derive if live) ------------------------

    def on_frames(self, frames: Frames) -> None:
        """`_line` for the frames of one socket read, in one go: the call that matters
        (a Python call per read, not per frame; each frame keeps its own line)."""
        self.frames_in += len(frames)
        positions = self.journal.write_in(frames)
        self.head = positions[-1]
        if self.live:
            self.derived = positions[-1]
            self.sink(self, self.deriver.frames_in(frames), positions)

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
            self.sink(self, [self.deriver.line(kind, payload, ts, url)], [pos])

    # -- catching up from the journal ---------------------------------------------------

    def pending_lines(self, limit: int) -> list[tuple[SegmentPos, str, bytes | str, int, str]]:
        """Up to `limit` journal lines written but not yet derived, in order (the caller
        derives them all: `catch_up`).

        Read through a `SegmentTail` kept while the link lags (each line is decompressed
        once); the open segment is flushed only when the tail has run dry, so catching up
        does not cut the journal into tiny zstd frames.
        """
        out: list[tuple[SegmentPos, str, bytes | str, int, str]] = []
        tail = self._tail_at_derived()
        flushed = False
        while tail is not None and len(out) < limit:
            got = tail.take(limit - len(out))
            if got:
                path = tail.path
                out.extend((SegmentPos(path, n), ln.d, ln.payload, ln.t, ln.url) for n, ln in got)
                continue
            if tail.path == self.journal.path:  # dry at the open segment
                if flushed:
                    break
                self.journal.flush()  # may seal it (size): then the next turn moves on
                flushed = True
                continue
            segments = self._segments()
            i = _index(segments, tail.path)
            if i + 1 >= len(segments):
                break
            tail.close()
            tail = self._tail = SegmentTail(segments[i + 1])
        if out:
            self._tail_after = out[-1][0]
        return out

    def lag(self) -> None:
        """Stop deriving frames as they arrive (only journal them); `catch_up` resumes."""
        if self.live:
            self.live = False
            self.lags += 1

    def catch_up(self, limit: int) -> bool:
        """Derive up to `limit` pending lines; True once derivation reached the head
        (the link is live again)."""
        lines = self.pending_lines(limit)
        if lines:
            self.caught_up += len(lines)
            self.derived = lines[-1][0]
            self.sink(self, self._derive(lines), [line[0] for line in lines])
        if self.derived == self.head:
            self.live = True
        return self.live

    def _derive(self, lines: list[tuple[SegmentPos, str, bytes | str, int, str]]) -> Lines:
        """Each journal line's records; runs of `in` lines (most of a journal) are derived
        together, as a socket read's frames are."""
        deriver = self.deriver
        out: Lines = []
        run: Frames = []
        for _, kind, payload, ts, url in lines:
            if kind == "in":
                run.append((payload, ts, 0))  # type: ignore[arg-type]
                continue
            if run:
                out += deriver.frames_in(run)
                run = []
            out.append(deriver.line(kind, payload, ts, url))
        if run:
            out += deriver.frames_in(run)
        return out

    def close(self) -> None:
        """Release the catch-up reader (the journal is closed by its owner)."""
        if self._tail is not None:
            self._tail.close()
            self._tail = None

    def _segments(self) -> list[Path]:
        """This link's segments, oldest first: those its journal sealed, then the open one."""
        segments = [self.journal.root / m.key for m in self.journal.manifests]
        if self.journal.path is not None:
            segments.append(self.journal.path)
        return segments

    def _tail_at_derived(self) -> SegmentTail | None:
        """The reader positioned right after `derived`: the last catch-up's if it is
        there or on that segment (moved forward past what was derived live meanwhile),
        else a new one (None before anything was journaled)."""
        start = self.derived
        tail = self._tail
        if tail is not None:
            if start == self._tail_after:
                return tail
            if start is not None and tail.path == start.path:
                tail.skip_to(start.line + 1)
                self._tail_after = start
                return tail
            self.close()
        self._tail_after = start
        if start is not None:
            self._tail = SegmentTail(start.path, start.line + 1)
        else:
            segments = self._segments()
            if not segments:
                return None
            self._tail = SegmentTail(segments[0])
        return self._tail


def _index(segments: list[Path], path: Path) -> int:
    try:
        return segments.index(path)
    except ValueError:
        raise RuntimeError(f"journal segment {path} is no longer known to its writer") from None
