"""Records → the outbox's NATS messages, counted by type and symbol.

The connector's per-record hot path: each record becomes a `Message` (subject, wire
bytes, Nats-Msg-Id, the link, the journal line it came from). Where the extension is
built one C call does a whole read's records (`ssmd._native.messages_lines`); `python()` is
the reference it is held to (tests/capture/test_stamp.py) and the path for anything C
declines (a type it does not know, a string needing escapes) — before it counts anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ssmd.bus.message import cached_subject, record_message
from ssmd.bus.msgid import SeqScope, escape_part, id_prefix, record_type
from ssmd.capture.journal import SegmentPos
from ssmd.capture.outbox import Message
from ssmd.model.native import _native
from ssmd.model.records import Record

SCOPES: tuple[SeqScope, ...] = ("venue", "connection", "unknown")
"""The order `_native.messages_lines` knows the sequence scopes by."""
CACHE_MAX = 100_000
"""(feed, type, symbol) entries kept before the cache starts over (a connector publishes
to the same few thousand all day)."""


class Stamper:
    """One link's records → Messages, counting into the connector's `counts` (by type)
    and `by_symbol`."""

    def __init__(
        self,
        env: str,
        scope: SeqScope,
        link: int,
        counts: Counter[str],
        by_symbol: Counter[str],
    ) -> None:
        self.env, self.scope, self.link = env, scope, link
        self.counts, self.by_symbol = counts, by_symbol
        self.native_frames = 0
        """Frames whose records C stamped (tests read it)."""
        self._names: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._lines = None if _native is None else _native.messages_lines
        self._ctx = (
            Message,
            SCOPES.index(scope),
            link,
            self._names,
            self._name,
            escape_part,
            counts,
            by_symbol,
        )

    def __call__(self, records: list[Record], origin: SegmentPos | None) -> list[Message]:
        return self.lines([records], [origin], [])

    def lines(
        self,
        lines: Sequence[list[Record]],
        origins: Sequence[SegmentPos | None],
        latencies: list[int],
    ) -> list[Message]:
        """`self(records, origin)` for lines derived together, their messages in order,
        and each record's latency (ts_recv − ts_event, where the venue gave a time) added
        to `latencies` (the walk over the records is this one): one C call for the read
        (`_native.messages_lines`) until a line C declines, which `python` stamps."""
        if len(lines) != len(origins):
            raise ValueError(f"{len(lines)} lines but {len(origins)} origins")
        out: list[Message] = []
        if self._lines is None:
            for records, origin in zip(lines, origins, strict=True):
                out += self._python_line(records, origin, latencies)
            return out
        lines = lines if type(lines) is list else list(lines)
        origins = origins if type(origins) is list else list(origins)
        i, end = 0, len(lines)
        while True:
            i, taken = self._lines(lines, origins, i, self._ctx, out, latencies)
            self.native_frames += taken
            if i == end:
                return out
            out += self._python_line(lines[i], origins[i], latencies)
            i += 1

    def _python_line(
        self, records: list[Record], origin: SegmentPos | None, latencies: list[int]
    ) -> list[Message]:
        latencies += [r.ts_recv - r.ts_event for r in records if r.ts_event]
        return self.python(records, origin)

    def python(self, records: list[Record], origin: SegmentPos | None) -> list[Message]:
        env, scope, link = self.env, self.scope, self.link
        counts, by_symbol = self.counts, self.by_symbol
        messages = []
        for record in records:
            messages.append(Message(*record_message(env, record, scope), link, origin))
            counts[record_type(record)] += 1
            by_symbol[record.symbol] += 1
        return messages

    def _name(self, feed: str, kind: str, symbol: str) -> tuple[str, str]:
        """(subject, Msg-Id prefix) of a (feed, type, symbol), kept for C's lookups."""
        names = self._names
        if len(names) >= CACHE_MAX:
            names.clear()
        found = names[feed, kind, symbol] = (
            cached_subject(self.env, feed, kind, symbol),
            id_prefix(feed, kind, symbol),
        )
        return found
