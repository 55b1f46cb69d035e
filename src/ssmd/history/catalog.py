"""What the archive holds, from object listings and Parquet footers only (no row scan):
per version, env, feed, date and type: files, rows, bytes, symbols; gaps per day;
reprocessed hours and how many are complete; quarantined segments."""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pyarrow.parquet as pq

from ssmd.history.layout import date_hour, parse_hour_key, parse_partition
from ssmd.history.store import list_objects, local_path
from ssmd.history.writer import read_meta
from ssmd.storage import ObjectInfo, ObjectStore

FOOTER_TAIL = 64 * 1024


def _footer(store: ObjectStore, info: ObjectInfo) -> dict[str, Any]:
    path = local_path(store, info.key)
    if path is not None:
        return read_meta(pq.read_metadata(path))
    tail = store.get_range(info.key, max(info.size - FOOTER_TAIL, 0), info.size)
    if info.size > FOOTER_TAIL:  # footer larger than the tail: fetch it all
        length = int.from_bytes(tail[-8:-4], "little") + 8
        if length > len(tail):
            tail = store.get_range(info.key, info.size - length, info.size)
        pad = b"\0" * (info.size - len(tail))
        return read_meta(pq.read_metadata(io.BytesIO(pad + tail)))
    return read_meta(pq.read_metadata(io.BytesIO(tail)))


def catalog(store: ObjectStore, env: str | None = None, feed: str | None = None) -> list[dict]:
    """One row per (version, env, feed, date): types with rows/bytes/files, gaps, hours."""
    rows: dict[tuple[int, str, str, str], dict[str, Any]] = {}

    def row(v: int, e: str, f: str, date: str) -> dict[str, Any]:
        return rows.setdefault((v, e, f, date), {
            "version": v, "env": e, "feed": f, "date": date, "types": {}, "gaps": 0,
            "symbols": [], "hours": 0, "complete_hours": 0,
            "bytes": 0, "quarantined": 0,
        })  # fmt: skip

    for info in list_objects(store, "normalized"):
        part = parse_partition(info.key)
        if part is not None:
            if (env and part.env != env) or (feed and part.feed != feed):
                continue
            meta = _footer(store, info)
            r = row(part.version, part.env, part.feed, date_hour(part.hour_ns)[0])
            t = r["types"].setdefault(part.type, {"rows": 0, "bytes": 0, "files": 0})
            t["rows"] += int(meta.get("rows", 0))
            t["bytes"] += info.size
            t["files"] += 1
            r["bytes"] += info.size
            r["symbols"] = sorted(set(r["symbols"]) | set(meta.get("symbols", {})))
            if part.type == "book":
                t["levels"] = t.get("levels", 0) + int(meta.get("levels", 0))
            if part.type == "gap":
                r["gaps"] += int(meta.get("rows", 0))
            continue
        hour = parse_hour_key(info.key)
        if hour is not None:
            v, e, f, h = hour
            if (env and e != env) or (feed and f != feed):
                continue
            r = row(v, e, f, date_hour(h)[0])
            r["hours"] += 1
            marker = msgspec.json.decode(store.get(info.key))
            r["complete_hours"] += int(bool(marker.get("complete")))
            r["quarantined"] += len(marker.get("quarantined", []))
    return [rows[k] for k in sorted(rows)]
