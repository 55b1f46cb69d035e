"""Reading an archive back in the tests: every record of every partition file."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from ssmd.history.layout import parse_partition
from ssmd.history.schema import from_table
from ssmd.model.records import Record


def parquet_files(objects: Path) -> dict[str, bytes]:
    """key -> bytes of every visible Parquet file under a local object store root."""
    return {
        p.relative_to(objects).as_posix(): p.read_bytes()
        for p in sorted(objects.rglob("*.parquet"))
    }


def archive_records(objects: Path, version: int = 1) -> list[Record]:
    out: list[Record] = []
    for key in parquet_files(objects):
        part = parse_partition(key)
        assert part is not None, key
        if part.version == version:
            out += from_table(part.type, pq.read_table(objects / key))
    return out
