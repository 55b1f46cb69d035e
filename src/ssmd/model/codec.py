"""JSON wire form of records: fixed-point fields become canonical decimal strings."""

from __future__ import annotations

from typing import Any

import msgspec

from ssmd.model.fixed import from_fixed, to_fixed
from ssmd.model.records import Record

DECIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    "trade": ("price", "size"),
    "quote": ("bid_px", "bid_sz", "ask_px", "ask_sz"),
    "instrument": ("tick_size", "lot_size"),
}
LEVEL_FIELDS = ("bids", "asks")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def to_wire(record: Record) -> dict[str, Any]:
    """The record as JSON-ready builtins, decimals as strings."""
    out: dict[str, Any] = msgspec.to_builtins(record)
    kind = out["type"]
    if kind == "book":
        for side in LEVEL_FIELDS:
            out[side] = [[from_fixed(px), from_fixed(sz)] for px, sz in out[side]]
    else:
        for name in DECIMAL_FIELDS.get(kind, ()):
            out[name] = from_fixed(out[name])
    return out


def from_wire(obj: dict[str, Any]) -> Record:
    """Validate builtins (as decoded from JSON) into a record; ValueError says what is wrong."""
    data = dict(obj)
    kind = data.get("type")
    try:
        if kind == "book":
            for side in LEVEL_FIELDS:
                data[side] = [(to_fixed(px), to_fixed(sz)) for px, sz in data.get(side, ())]
        else:
            for name in DECIMAL_FIELDS.get(str(kind), ()):
                if name in data:
                    data[name] = to_fixed(data[name])
        return msgspec.convert(data, Record)
    except (msgspec.ValidationError, TypeError) as exc:
        raise ValueError(f"invalid {kind or 'untyped'} record: {exc}") from None


def encode(record: Record) -> bytes:
    return _encoder.encode(to_wire(record))


def decode(data: bytes | str) -> Record:
    try:
        obj = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError("a record must be a JSON object")
    return from_wire(obj)
