"""Parquet schemas of the normalized archive, one per record type (DESIGN.md §5).

Columns are the record's fields in declaration order: the common ones (`feed`, `venue`,
`symbol`, `iid`, `ts_event`, `ts_recv`, `seq`) then the type's own. Prices and sizes are
int64 fixed-point at 1e-9 (exactly the in-memory form); book levels are
`list<struct<px int64, sz int64>>`. The `type` tag is not a column: the path says it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import pyarrow as pa

from ssmd.model.records import (
    RECORD_TYPES,
    Book,
    Gap,
    InstrumentRecord,
    Quote,
    Record,
    Status,
    Trade,
)

ARCHIVE_SCHEMA_VERSION = 1
"""Version of the Parquet layout itself (columns, encodings); in every file's metadata."""

LEVEL = pa.struct(
    [pa.field("px", pa.int64(), nullable=False), pa.field("sz", pa.int64(), nullable=False)]
)
LEVELS = pa.list_(pa.field("item", LEVEL, nullable=False))

_COMMON: list[tuple[str, pa.DataType]] = [
    ("feed", pa.string()),
    ("venue", pa.string()),
    ("symbol", pa.string()),
    ("iid", pa.int64()),
    ("ts_event", pa.int64()),
    ("ts_recv", pa.int64()),
    ("seq", pa.int64()),
]
_OWN: dict[str, list[tuple[str, pa.DataType]]] = {
    "trade": [("price", pa.int64()), ("size", pa.int64()), ("side", pa.string()),
              ("trade_id", pa.string())],
    "quote": [("bid_px", pa.int64()), ("bid_sz", pa.int64()), ("ask_px", pa.int64()),
              ("ask_sz", pa.int64())],
    "book": [("snapshot", pa.bool_()), ("bids", LEVELS), ("asks", LEVELS)],
    "status": [("status", pa.string()), ("reason", pa.string()), ("result", pa.string())],
    "gap": [("reason", pa.string()), ("since_ns", pa.int64()), ("until_ns", pa.int64()),
            ("detail", pa.string())],
    "instrument": [("kind", pa.string()), ("base", pa.string()), ("quote", pa.string()),
                   ("tick_size", pa.int64()), ("lot_size", pa.int64()),
                   ("status", pa.string()), ("expiry_ns", pa.int64())],
}  # fmt: skip
CLASSES: dict[str, type] = {
    "trade": Trade, "quote": Quote, "book": Book, "status": Status, "gap": Gap,
    "instrument": InstrumentRecord,
}  # fmt: skip

SCHEMAS: dict[str, pa.Schema] = {
    kind: pa.schema([pa.field(n, t, nullable=False) for n, t in _COMMON + _OWN[kind]])
    for kind in RECORD_TYPES
}
"""Arrow schema per record type; every column is non-null (records have defaults)."""


def columns(kind: str) -> list[str]:
    return [name for name, _ in _COMMON + _OWN[kind]]


def schema(kind: str) -> pa.Schema:
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise ValueError(
            f"unknown record type {kind!r}; known: {', '.join(RECORD_TYPES)}"
        ) from None


def to_table(kind: str, records: Iterable[Record]) -> pa.Table:
    """Records of one type → an Arrow table in the archive schema (order kept)."""
    names = columns(kind)
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for r in records:
        for n in names:
            cols[n].append(getattr(r, n))
    if kind == "book":
        for side in ("bids", "asks"):
            cols[side] = [[{"px": px, "sz": sz} for px, sz in lv] for lv in cols[side]]
    return pa.table(cols, schema=SCHEMAS[kind])


def from_rows(kind: str, rows: Sequence[dict[str, Any]]) -> list[Record]:
    """Rows (`Table.to_pylist()`) → records; extra columns (date, hour, …) are ignored."""
    cls = CLASSES[kind]
    names = columns(kind)
    out: list[Record] = []
    for row in rows:
        data = {n: row[n] for n in names}
        if kind == "book":
            for side in ("bids", "asks"):
                data[side] = [(lv["px"], lv["sz"]) for lv in data[side]]
        out.append(msgspec.convert(data, cls))
    return out


def from_table(kind: str, table: pa.Table) -> list[Record]:
    return from_rows(kind, table.to_pylist())
