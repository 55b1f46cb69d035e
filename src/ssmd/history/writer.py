"""Deterministic Parquet bytes: same records in, same bytes out.

No clock, host or random value enters a file: the footer's key-value metadata holds
only what the partition is and what it contains. Row groups have a fixed row count,
compression is zstd at a fixed level, and the writer version is pinned, so a rerun of
the reprocessor writes byte-identical files (tested).
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ssmd.history.schema import ARCHIVE_SCHEMA_VERSION, schema

ROW_GROUP_ROWS = 65_536
ZSTD_LEVEL = 3
META_KEY = b"ssmd"
"""Footer key-value entry holding the partition's JSON description (see `file_meta`)."""


def sort_table(table: pa.Table, extra: list[str] | None = None) -> pa.Table:
    """(symbol, ts_event) then `extra` tie-breakers (derivation order): the archive order."""
    keys = [("symbol", "ascending"), ("ts_event", "ascending")]
    keys += [(name, "ascending") for name in extra or ()]
    return table.take(pc.sort_indices(table, sort_keys=keys))


def file_meta(kind: str, table: pa.Table, **partition: Any) -> dict[str, Any]:
    """What the catalog reads from a footer without scanning rows."""
    meta: dict[str, Any] = {
        "archive_schema": ARCHIVE_SCHEMA_VERSION,
        "type": kind,
        **partition,
        "rows": table.num_rows,
    }
    if table.num_rows:
        symbols = pc.value_counts(table["symbol"]).to_pylist()
        meta["symbols"] = {d["values"]: d["counts"] for d in symbols}
        meta["ts_event"] = [pc.min(table["ts_event"]).as_py(), pc.max(table["ts_event"]).as_py()]
        meta["ts_recv"] = [pc.min(table["ts_recv"]).as_py(), pc.max(table["ts_recv"]).as_py()]
        if kind == "book":
            meta["levels"] = int(pc.sum(pc.list_value_length(table["bids"])).as_py() or 0) + int(
                pc.sum(pc.list_value_length(table["asks"])).as_py() or 0
            )
    return meta


def parquet_bytes(kind: str, table: pa.Table, meta: dict[str, Any]) -> bytes:
    """One Parquet file in the archive schema of `kind` (table already sorted)."""
    table = table.select(schema(kind).names).cast(schema(kind))
    encoded = msgspec.json.encode(dict(sorted(meta.items())))
    table = table.replace_schema_metadata({META_KEY: encoded})
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        row_group_size=ROW_GROUP_ROWS,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        data_page_version="1.0",
    )
    return sink.getvalue()


def read_meta(metadata: pq.FileMetaData) -> dict[str, Any]:
    """The ssmd description from a footer ({} if absent)."""
    kv = metadata.metadata or {}
    raw = kv.get(META_KEY)
    return msgspec.json.decode(raw) if raw else {}
