"""`describe_schema`: the record types and their fields, derived from the model itself
(so it cannot drift), with units spelled out for a model reading tool results."""

from __future__ import annotations

from typing import Any

import msgspec

from ssmd.model import records
from ssmd.model.codec import DECIMAL_FIELDS, LEVEL_FIELDS
from ssmd.model.records import RECORD_TYPES

TIME_FIELDS = {"ts_event", "ts_recv", "since_ns", "until_ns", "expiry_ns"}
NOTES = {
    "decimals": "prices and sizes are exact decimal strings (fixed-point, 9 fraction digits "
    "internally); never parse them as binary floats if exactness matters",
    "timestamps": "integers, nanoseconds since the Unix epoch, UTC; ts_event is the venue's "
    "time (0 if the venue gives none), ts_recv the capture time",
    "book": "bids/asks are [[price, size], ...]; snapshot=true replaces the book, "
    "otherwise levels are absolute sizes and size '0' deletes the level",
    "gap": "a gap record says data of the symbol may be missing between since_ns and "
    "until_ns (reason: disconnect, sequence, checksum, stale, resync, parse, crossed)",
}


def _classes() -> dict[str, type[msgspec.Struct]]:
    out: dict[str, type[msgspec.Struct]] = {}
    for name in dir(records):
        obj = getattr(records, name)
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            tag = obj.__struct_config__.tag
            if isinstance(tag, str) and tag in RECORD_TYPES:
                out[tag] = obj
    return out


def _unit(kind: str, field: str, tp: Any) -> str:
    if field in TIME_FIELDS:
        return "ns since epoch (UTC)"
    if field in DECIMAL_FIELDS.get(kind, ()):
        return "decimal string"
    if kind == "book" and field in LEVEL_FIELDS:
        return "list of [price, size] decimal strings"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def describe(record_type: str | None = None) -> dict[str, Any]:
    """Every record type (or one) with its fields: name, unit/type, required."""
    classes = _classes()
    if record_type is not None and record_type not in classes:
        raise ValueError(f"no record type {record_type!r}; types: {', '.join(RECORD_TYPES)}")
    types = []
    for tag in RECORD_TYPES:
        if record_type is not None and tag != record_type:
            continue
        fields = [
            {"name": f.encode_name, "type": _unit(tag, f.name, f.type), "required": f.required}
            for f in msgspec.structs.fields(classes[tag])
        ]
        fields.insert(0, {"name": "type", "type": f"always {tag!r}", "required": True})
        types.append({"type": tag, "fields": fields, "doc": (classes[tag].__doc__ or "").strip()})
    return {"schema_version": records.SCHEMA_VERSION, "notes": NOTES, "types": types}
