"""Reprocess raw segments into the Parquet archive (`normalized/v{N}/…`, DESIGN.md §7).

    report = reprocess(definition, "sim", from_ns, to_ns, version=1, data_dir=root)

Runs over whole UTC hours (`from` floored, `to` rounded up), because a partition is an
hour and a rerun must replace whole partitions. Deterministic: connections are derived
independently (in K processes with `parallel=K`) and merged in a fixed order, so the
bytes do not depend on K or on timing. Publication is atomic per object (temp + rename
locally, single PUT on S3) and per hour: an hour's Parquet files are written first, then
its coverage marker (`_hours/…json`); history reads only hours with a marker, so a run
killed midway leaves nothing visible, and a rerun overwrites the same keys. Versions live
side by side under their own prefix and a run never touches another version.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from ssmd import __version__
from ssmd.history.derive import ORDER, Job, Result, _pause, run_job
from ssmd.history.layout import (
    HOUR_NS,
    Partition,
    date_hour,
    hour_ceil,
    hour_floor,
    hour_key,
    quarantine_key,
)
from ssmd.history.segments import Segment, fetch, find_segments
from ssmd.history.writer import file_meta, parquet_bytes, sort_table
from ssmd.model.records import RECORD_TYPES
from ssmd.spec.model import Environment
from ssmd.storage import ObjectStore


class ReprocessError(ValueError):
    """Bad arguments (unknown feed, empty range, bad version)."""


@dataclass
class Report:
    """What a run did (or, with dry_run, would do); `to_dict` is the --json form."""

    env: str
    feed: str
    version: int
    from_ns: int
    to_ns: int
    dry_run: bool
    hours: list[int] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    connections: int = 0
    lines: int = 0
    frames: int = 0
    records: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    incomplete_hours: list[int] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    open_segments: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bytes"] = sum(f["bytes"] for f in self.files)
        return out


Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is 'derive' (segments) or 'write' (partitions)."""


def plan_jobs(
    segments: list[Segment], from_h: int, to_h: int
) -> list[tuple[tuple[int, int], list[Segment]]]:
    """Connections with a segment in [from_h, to_h), each with all its segments before
    to_h (derivation starts at the connection's first segment)."""
    by_conn: dict[tuple[int, int], list[Segment]] = {}
    for s in segments:
        by_conn.setdefault((s.shard, s.conn), []).append(s)
    return [
        (conn, segs)
        for conn, segs in sorted(by_conn.items())
        if any(from_h <= s.hour_ns < to_h for s in segs)
    ]


def reprocess(
    definition: Environment,
    feed: str,
    from_ns: int,
    to_ns: int,
    *,
    version: int = 1,
    data_dir: Path,
    store: ObjectStore | None = None,
    dry_run: bool = False,
    parallel: int = 1,
    progress: Progress | None = None,
    now_ns: int | None = None,
) -> Report:
    """Raw segments of `feed` in [from, to) → Parquet partitions; see the module doc."""
    if feed not in definition.feeds:
        known = ", ".join(sorted(definition.feeds)) or "none"
        raise ReprocessError(f"no feed {feed!r} in {definition.metadata.name} (feeds: {known})")
    if version < 1:
        raise ReprocessError(f"--version must be >= 1, not {version}")
    if to_ns <= from_ns:
        raise ReprocessError("empty range: --to must be after --from")
    if parallel < 1:
        raise ReprocessError(f"--parallel must be >= 1, not {parallel}")
    started = time.monotonic()
    now = now_ns if now_ns is not None else time.time_ns()
    env = definition.metadata.name
    venue = definition.feeds[feed].venue
    from_h, to_h = hour_floor(from_ns), hour_ceil(to_ns)
    if store is None:
        store = ObjectStore.from_spec(definition.storage, data_dir)
    cache = Path(data_dir) / "cache"
    found = find_segments(Path(data_dir), store, env, feed, to_h)
    jobs = plan_jobs(found, from_h, to_h)
    report = Report(env, feed, version, from_h, to_h, dry_run)
    # only hours that have raw data: an hour without segments stays unclaimed (no marker)
    report.hours = sorted(
        {s.hour_ns for _, segs in jobs for s in segs if from_h <= s.hour_ns < to_h}
    )
    report.segments = [s.key for _, segs in jobs for s in segs if from_h <= s.hour_ns < to_h]
    report.connections = len(jobs)
    if dry_run:
        report.open_segments = [s.key for _, segs in jobs for s in segs if not s.closed]
        report.seconds = time.monotonic() - started
        return report
    work = [
        Job(
            i,
            venue,
            feed,
            [(s.key, str(fetch(s, store, cache)), s.closed) for s in segs],
            from_h,
            to_h,
        )
        for i, (_, segs) in enumerate(jobs)
    ]
    results = _run(work, parallel, progress)
    _publish(store, report, results, jobs, now, progress)
    report.seconds = time.monotonic() - started
    return report


def _run(work: list[Job], parallel: int, progress: Progress | None) -> list[Result]:
    total = sum(len(j.segments) for j in work)
    done = 0
    results: list[Result] = []
    if progress:
        progress("derive", 0, total)
    if parallel == 1 or len(work) <= 1:
        for job in work:
            results.append(run_job(job))
            done += len(job.segments)
            if progress:
                progress("derive", done, total)
    else:
        ctx = get_context("fork")
        with ProcessPoolExecutor(max_workers=parallel, mp_context=ctx) as pool:
            for job, result in zip(work, pool.map(run_job, work), strict=True):
                results.append(result)
                done += len(job.segments)
                if progress:
                    progress("derive", done, total)
    return sorted(results, key=lambda r: r.index)


def _publish(
    store: ObjectStore,
    report: Report,
    results: list[Result],
    jobs: list[tuple[tuple[int, int], list[Segment]]],
    now: int,
    progress: Progress | None,
) -> None:
    v, env, feed = report.version, report.env, report.feed
    parts: dict[tuple[str, int], list[pa.Table]] = {}
    counts: Counter[str] = Counter()
    for r in results:
        report.lines += r.lines
        report.frames += r.frames
        report.quarantined += r.quarantined
        report.open_segments += r.open
        for part, table in sorted(r.tables.items()):
            parts.setdefault(part, []).append(table)
    bad = {q["key"] for q in report.quarantined}
    open_keys = set(report.open_segments)
    hour_segments: dict[int, list[str]] = {}
    for _, segs in jobs:
        for s in segs:
            hour_segments.setdefault(s.hour_ns, []).append(s.key)
    for q in report.quarantined:
        key = quarantine_key(v, env, feed, str(q["key"]).rsplit("/", 1)[-1])
        store.put(key, msgspec.json.encode(q))
    total = len(report.hours)
    for n, hour in enumerate(report.hours):
        hour_counts: dict[str, int] = {}
        for kind in RECORD_TYPES:
            partition = Partition(v, env, feed, kind, hour)
            tables = parts.get((kind, hour))
            if not tables:
                if store.exists(partition.key):
                    store.delete(partition.key)
                    report.deleted.append(partition.key)
                continue
            table = sort_table(pa.concat_tables(tables), list(ORDER)).drop_columns(list(ORDER))
            date, hh = date_hour(hour)
            meta = file_meta(kind, table, version=v, env=env, feed=feed, date=date, hour=hh,
                             ssmd_version=__version__)  # fmt: skip
            data = parquet_bytes(kind, table, meta)
            store.put(partition.key, data)
            _pause()
            hour_counts[kind] = table.num_rows
            counts[kind] += table.num_rows
            report.files.append({"key": partition.key, "rows": table.num_rows, "bytes": len(data)})
        keys = sorted(hour_segments.get(hour, []))
        complete = hour + HOUR_NS <= now and not any(k in open_keys for k in keys)
        if not complete:
            report.incomplete_hours.append(hour)
        marker = {
            "version": v, "env": env, "feed": feed, "hour_ns": hour, "complete": complete,
            "segments": keys, "records": hour_counts,
            "quarantined": sorted(k for k in keys if k in bad), "ssmd_version": __version__,
        }  # fmt: skip
        store.put(hour_key(v, env, feed, hour), msgspec.json.encode(marker))
        if progress:
            progress("write", n + 1, total)
    report.records = dict(sorted(counts.items()))
