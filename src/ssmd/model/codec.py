"""JSON wire form of records: fixed-point fields become canonical decimal strings.

`encode` is the connector's per-record hot path, so trades, quotes and books are written
in C where the extension is built (`model/native.py`), else straight from the struct here
(decimal strings from a bounded cache, the escaped feed/venue/symbol header cached per
instrument) instead of through `to_builtins`; the bytes are exactly
`_encoder.encode(to_wire(record))`, the reference every other type still takes
(property-tested in tests/model/test_codec.py and test_native_records.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ssmd.model import native
from ssmd.model.fixed import from_fixed, to_fixed
from ssmd.model.native import DECIMAL_FIELDS, LEVEL_FIELDS
from ssmd.model.records import Book, Quote, Record, Trade

__all__ = ["DECIMAL_FIELDS", "LEVEL_FIELDS", "decode", "encode", "from_wire", "to_wire"]
_CACHE_MAX = 1 << 16
"""Entries per cache before it is cleared (prices and sizes repeat; memory stays bounded)."""

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_json_str = msgspec.json.encode


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


_decimals: dict[int, str] = {}


def _dec(value: int) -> str:
    """`from_fixed`, memoized: a book repeats the same prices and lot sizes all day."""
    found = _decimals.get(value)
    if found is None:
        if len(_decimals) >= _CACHE_MAX:
            _decimals.clear()
        found = _decimals[value] = from_fixed(value)
    return found


_headers: dict[tuple[str, str, str], str] = {}


def _header(feed: str, venue: str, symbol: str) -> str:
    """The escaped `"feed":…,"venue":…,"symbol":…,` part, memoized per instrument."""
    key = (feed, venue, symbol)
    found = _headers.get(key)
    if found is None:
        if len(_headers) >= _CACHE_MAX:
            _headers.clear()
        found = _headers[key] = (
            f'"feed":{_json_str(feed).decode()},"venue":{_json_str(venue).decode()},'
            f'"symbol":{_json_str(symbol).decode()},'
        )
    return found


def _tail(r: Trade | Quote | Book) -> str:
    """The common fields, which msgspec writes last (the base struct is kw_only)."""
    return (
        f'{_header(r.feed, r.venue, r.symbol)}"iid":{r.iid},"ts_event":{r.ts_event},'
        f'"ts_recv":{r.ts_recv},"seq":{r.seq}}}'
    )


def _levels(levels: list[tuple[int, int]]) -> str:
    dec = _dec
    return "[" + ",".join([f'["{dec(px)}","{dec(sz)}"]' for px, sz in levels]) + "]"


def _text(value: str) -> str:
    """A JSON string; letters and digits need no escaping (trade ids, sides)."""
    return f'"{value}"' if value.isalnum() else _json_str(value).decode()


def encode_python(record: Record) -> bytes:
    """The record's JSON wire bytes (same bytes as encoding `to_wire(record)`): `encode`
    without the C writer (its reference, and its fallback)."""
    cls = type(record)
    if cls is Book:
        return (
            f'{{"type":"book","snapshot":{"true" if record.snapshot else "false"},'
            f'"bids":{_levels(record.bids)},"asks":{_levels(record.asks)},{_tail(record)}'
        ).encode()
    if cls is Trade:
        return (
            f'{{"type":"trade","price":"{_dec(record.price)}","size":"{_dec(record.size)}",'
            f'"side":{_text(record.side)},"trade_id":{_text(record.trade_id)},{_tail(record)}'
        ).encode()
    if cls is Quote:
        return (
            f'{{"type":"quote","bid_px":"{_dec(record.bid_px)}","bid_sz":"{_dec(record.bid_sz)}",'
            f'"ask_px":"{_dec(record.ask_px)}","ask_sz":"{_dec(record.ask_sz)}",{_tail(record)}'
        ).encode()
    return _encoder.encode(to_wire(record))


encode: Callable[[Record], bytes] = native.encoder(encode_python)
"""The record's JSON wire bytes: C where built (falling back to `encode_python` for what
it declines), else `encode_python`."""


def decode(data: bytes | str) -> Record:
    try:
        obj = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError("a record must be a JSON object")
    return from_wire(obj)
