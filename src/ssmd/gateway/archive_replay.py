"""Replay from the Parquet archive: the part of a `from` the stream no longer holds.

Why: JetStream keeps `streams.max_age`; a subscription whose `from` is older must not be
refused nor silently start late. The gateway serves it from the archive
(`ssmd.history.query.History.archived`) up to where the stream begins, then from the
stream, then live. The archive → stream seam, with `held_from` = the store time of the
oldest message the stream still holds:

- the archive part covers ts_recv in [from, held_from + SEAM_NS) — SEAM_NS absorbs the
  clock skew between capture hosts and the NATS server, so a record the stream dropped is
  never left out;
- the Msg-Ids of the archive records within SEAM_NS of `held_from` are remembered, and a
  stream record carrying one of them is skipped — no duplicate;
- hours of [from, held_from) without a coverage marker are in neither: the client gets one
  `gap` notice per uncovered span (reason `not_archived`) where their records would be.
  An hour reprocessed while still open has a marker and counts as archived.

Pure helpers here; the I/O (threads for DuckDB/S3, the client queue) is in `stream`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from ssmd.gateway import protocol
from ssmd.history.layout import HOUR_NS, hour_floor
from ssmd.history.schema import from_table
from ssmd.model.records import Record

SEAM_NS = 5 * 10**9
SLICE_NS = 5 * 60 * 10**9
"""The archive is read this much `ts_recv` at a time: a busy hour never sits in memory
whole, and the client's queue paces the reads."""


def plan(covered: Collection[int], start: int, end: int) -> list[tuple[int, int, bool]]:
    """[start, end) cut into (lo, hi, archived) pieces in time order: one per archived hour
    (clipped to the range) and one per span of hours without a coverage marker, adjacent
    ones merged. Walks the covered hours only, so an ancient `from` costs nothing."""
    out: list[tuple[int, int, bool]] = []
    at = start
    for h in sorted(h for h in covered if hour_floor(start) <= h < end):
        if h > at:
            out.append((at, h, False))
        lo, hi = max(h, start), min(h + HOUR_NS, end)
        if lo < hi:
            out.append((lo, hi, True))
        at = max(at, hi)
    if at < end:
        out.append((at, end, False))
    return out


def gap_notice(sub_id: protocol.SubId, lo: int, hi: int) -> bytes:
    """Neither the archive nor the stream holds [lo, hi) for this subscription."""
    return protocol.encode(
        {"op": "gap", "id": sub_id, "reason": "not_archived", "from": lo, "to": hi}
    )


def archived_records(history: Any, types: Iterable[str], lo: int, hi: int) -> list[Record]:
    """The archived records of `types` with ts_recv in [lo, hi) (within one hour), in
    ts_recv order (stable: archive order on ties). Blocking (DuckDB, object store): run it
    in a thread."""
    out: list[Record] = []
    for kind in types:
        out += from_table(kind, history.archived(kind, lo, hi))
    out.sort(key=lambda r: r.ts_recv)
    return out
