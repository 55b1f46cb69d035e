"""One worker's share of a reprocessing run: one connection's segments, in order,
through the shared `Deriver` (the very code the live connector runs).

A connection's records depend on everything since its `open` (book state, reference
data), so a connection is always derived from its first segment and only the records
whose `ts_recv` falls in the run's hours are kept. A segment that fails verification
against its manifest is not read: it becomes a `gap(reason=parse)` per instrument the
connection had produced, and the derivation restarts as after a reconnect (a fresh
normalizer waits for a new snapshot) — the hole is data, and nothing after it is wrong.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pyarrow as pa

from ssmd.bus.msgid import record_type
from ssmd.capture.derive import Deriver
from ssmd.capture.journal_format import JournalError, parse_segment_name
from ssmd.capture.journal_manifest import read_manifest
from ssmd.capture.journal_read import iter_segment, verify_segment
from ssmd.history.layout import hour_floor
from ssmd.history.schema import to_table
from ssmd.model.records import Gap, Record

ORDER = ("_g", "_i")
"""Tie-breaker columns: (connection index, derivation index) keep derivation order."""


@dataclass(frozen=True)
class Job:
    """Derive one connection's segments; keep records with ts_recv in [from_ns, to_ns)."""

    index: int
    venue: str
    feed: str
    segments: list[tuple[str, str, bool]]
    """(key, local path, closed) in order."""
    from_ns: int
    to_ns: int


@dataclass
class Result:
    index: int
    tables: dict[tuple[str, int], pa.Table] = field(default_factory=dict)
    """(type, hour_ns) -> records with _g/_i columns."""
    lines: int = 0
    frames: int = 0
    segments: int = 0
    quarantined: list[dict[str, object]] = field(default_factory=list)
    open: list[str] = field(default_factory=list)


def _hole(deriver: Deriver, key: str, path: str, problem: str) -> list[Record]:
    """A segment that cannot be trusted: gap per instrument seen, then a fresh start."""
    manifest = read_manifest(Path(path))
    first = manifest.first_t if manifest and manifest.first_t is not None else None
    last = manifest.last_t if manifest and manifest.last_t is not None else None
    name = parse_segment_name(key.rsplit("/", 1)[-1])
    start = first if first is not None else (name.start_ns if name else 0)
    gaps = deriver.line("close", f"raw segment quarantined: {key}", start)
    deriver.line("open", "", start)
    detail = f"raw segment {key} quarantined: {problem}"[:200]
    return [
        msgspec.structs.replace(g, reason="parse", until_ns=last or 0, detail=detail)
        for g in gaps
        if isinstance(g, Gap)
    ]


def run_job(job: Job) -> Result:
    """Derive one connection (runs in a worker process under --parallel)."""
    result = Result(job.index)
    deriver = Deriver(job.venue, job.feed)
    buckets: dict[tuple[str, int], list[Record]] = {}
    order: dict[tuple[str, int], list[int]] = {}
    n = 0

    def keep(records: list[Record]) -> None:
        nonlocal n
        for r in records:
            n += 1
            if job.from_ns <= r.ts_recv < job.to_ns:
                part = (record_type(r), hour_floor(r.ts_recv))
                buckets.setdefault(part, []).append(r)
                order.setdefault(part, []).append(n)

    for key, path, closed in job.segments:
        result.segments += 1
        if closed:
            verdict = verify_segment(Path(path))
            if not verdict:
                result.quarantined.append({"key": key, "problem": verdict.problem})
                keep(_hole(deriver, key, path, verdict.problem))
                continue
        else:
            result.open.append(key)
        reader = iter_segment(Path(path), stop_on_corrupt=not closed)
        try:
            for line in reader:
                result.lines += 1
                if line.d == "in":
                    result.frames += 1
                keep(deriver.line(line.d, line.payload, line.t, line.url))
        except JournalError as exc:  # vanished or unreadable mid-run
            result.quarantined.append({"key": key, "problem": str(exc)})
            keep(_hole(deriver, key, path, str(exc)))
        _pause()
    for (kind, hour), records in buckets.items():
        table = to_table(kind, records)
        table = table.append_column("_g", pa.array([job.index] * len(records), pa.int32()))
        table = table.append_column("_i", pa.array(order[(kind, hour)], pa.int64()))
        result.tables[(kind, hour)] = table
    return result


def _pause() -> None:
    """Fault-injection hook for the kill test (SSMD_REPROCESS_PAUSE seconds)."""
    pause = os.environ.get("SSMD_REPROCESS_PAUSE")
    if pause:
        import time

        time.sleep(float(pause))


def count_types(tables: dict[tuple[str, int], pa.Table]) -> Counter[str]:
    out: Counter[str] = Counter()
    for (kind, _), t in tables.items():
        out[kind] += t.num_rows
    return out
