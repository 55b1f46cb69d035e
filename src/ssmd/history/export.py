"""Exports: Parquet in the archive schema, CSV and JSON lines in the wire form."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from ssmd.history.schema import columns, from_table
from ssmd.model.codec import to_wire


def write_export(kind: str, table: pa.Table, fmt: str, path: Path | None) -> int:
    """Write `table` as parquet | csv | jsonl to `path` (None = stdout); rows written."""
    if fmt == "parquet":
        if path is None:
            raise ValueError("Parquet needs a file")
        pq.write_table(table, path, compression="zstd")
        return table.num_rows
    rows = [to_wire(r) for r in from_table(kind, table)]
    buf = io.StringIO()
    if fmt == "jsonl":
        for row in rows:
            buf.write(msgspec.json.encode(row).decode() + "\n")
    elif fmt == "csv":
        names = ["type", *columns(kind)]
        writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: msgspec.json.encode(v).decode() if isinstance(v, list) else v
                             for k, v in row.items()})  # fmt: skip
    else:
        raise ValueError(f"unknown format {fmt!r}")
    if path is None:
        sys.stdout.write(buf.getvalue())
    else:
        Path(path).write_text(buf.getvalue())
    return len(rows)
