"""Output formats of history endpoints: JSON (default), JSON lines, CSV and Parquet.

Chosen by `?format=` or else the Accept header. JSON, JSON lines and CSV carry the wire
form (decimal strings for prices and sizes, DESIGN §5); Parquet carries the archive
schema (int64 fixed-point at 1e-9), so a file from the gateway reads like one from the
archive. `timestamps=iso` turns ns columns into ISO-8601 strings in the text formats.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from ssmd.model.time import format_ns

FORMATS: dict[str, str] = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_ACCEPT = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
TIME_FIELDS = ("ts_event", "ts_recv", "since_ns", "until_ns", "expiry_ns", "ts", "at")


class FormatError(ValueError):
    """An unknown format (400)."""


def negotiate(fmt: str | None, accept: str | None) -> str:
    """`format=` wins; else the first Accept type we know; else JSON."""
    if fmt:
        if fmt not in FORMATS:
            raise FormatError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return fmt
    for part in (accept or "").split(","):
        mime = part.split(";", 1)[0].strip().lower()
        if mime in _ACCEPT:
            return _ACCEPT[mime]
    return "json"


def iso_times(row: dict[str, Any]) -> dict[str, Any]:
    """ns columns as ISO-8601 (0 stays 0: 'no time')."""
    return {
        k: (format_ns(v) if k in TIME_FIELDS and isinstance(v, int) and v else v)
        for k, v in row.items()
    }


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    enc = msgspec.json.Encoder()
    return b"".join(enc.encode(r) + b"\n" for r in rows)


def csv_bytes(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    """Header + rows; lists (book levels) as JSON text in their cell."""
    buf = io.StringIO()
    names = list(rows[0]) if rows else columns
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: msgspec.json.encode(v).decode() if isinstance(v, list | dict) else v
             for k, v in row.items()}
        )  # fmt: skip
    return buf.getvalue().encode()


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
