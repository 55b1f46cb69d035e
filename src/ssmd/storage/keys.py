"""Object key layout (DESIGN §7): what lives where in the store, parsed in one place.

    raw/{env}/{feed}/{YYYY-MM-DD}/{HH}/{shard}-{conn}-{start_ns}.jsonl.zst        segment
    raw/…/{shard}-{conn}-{start_ns}.jsonl.zst.manifest.json                      its manifest
    normalized/v{N}/{env}/{feed}/{type}/date=YYYY-MM-DD/hour=HH/*.parquet        Parquet

Raw keys are the segment's path relative to the data dir, so a local journal file, its
object and its catalog row share one name.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import NamedTuple

from ssmd.capture.journal_manifest import MANIFEST_SUFFIX

__all__ = [
    "NormalizedPartition",
    "manifest_key",
    "normalized_partition",
    "quarantine_path",
    "raw_key",
]

QUARANTINE_DIR = "quarantine"

_NORMALIZED = re.compile(
    r"^normalized/v(?P<version>\d+)/(?P<env>[^/]+)/(?P<feed>[^/]+)/(?P<type>[^/]+)/"
    r"date=(?P<date>\d{4}-\d{2}-\d{2})/"
)


def raw_key(root: Path, segment: Path) -> str:
    """The object key of a local segment: its path relative to the data dir."""
    return Path(segment).resolve().relative_to(Path(root).resolve()).as_posix()


def manifest_key(key: str) -> str:
    """Key of a segment's manifest object, beside the segment."""
    return key + MANIFEST_SUFFIX


def quarantine_path(root: Path, key: str) -> Path:
    """Where a suspect segment is moved: `{data}/quarantine/{key}` (mirrors raw/)."""
    return Path(root) / QUARANTINE_DIR / key


class NormalizedPartition(NamedTuple):
    """One date partition of one record type: the unit normalized retention deletes."""

    version: int
    env: str
    feed: str
    type: str
    date: dt.date

    @property
    def prefix(self) -> str:
        return (
            f"normalized/v{self.version}/{self.env}/{self.feed}/{self.type}/"
            f"date={self.date.isoformat()}"
        )

    @property
    def end_ns(self) -> int:
        """00:00 UTC the day after: every row in the partition is older than this."""
        nxt = dt.datetime.combine(self.date + dt.timedelta(days=1), dt.time(), dt.UTC)
        return int(nxt.timestamp()) * 1_000_000_000


def normalized_partition(key: str) -> NormalizedPartition | None:
    """The partition a normalized key belongs to; None for anything else."""
    match = _NORMALIZED.match(key)
    if match is None:
        return None
    try:
        date = dt.date.fromisoformat(match["date"])
    except ValueError:
        return None
    return NormalizedPartition(
        int(match["version"]), match["env"], match["feed"], match["type"], date
    )
