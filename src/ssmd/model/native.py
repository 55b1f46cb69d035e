"""The C record writers (`ssmd._native`, src/ssmd/_native/record.c), told how each record
type is written; None where the extension did not build (the Python references in
`codec.encode` and `bus.msgid.content_hash` then do all the work, only slower).

Every field is written by kind: "decimal" fixed-point ints as canonical decimal strings on
JSON, "levels" as `[[price, size], ...]`, and ints, strings, bools as they are. msgpack
(the content hash) writes decimals as the ints they are, as msgspec does.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ssmd.model.records import Book, Quote, Record, Trade

DECIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    "trade": ("price", "size"),
    "quote": ("bid_px", "bid_sz", "ask_px", "ask_sz"),
    "instrument": ("tick_size", "lot_size"),
}
LEVEL_FIELDS = ("bids", "asks")

try:
    from ssmd import _native
except ImportError:  # pragma: no cover - built by every install with a C compiler
    _native = None


def _kind(tag: str, field: msgspec.structs.FieldInfo) -> str:
    if field.name in LEVEL_FIELDS:
        return "levels"
    if field.name in DECIMAL_FIELDS.get(tag, ()):
        return "decimal"
    if field.type is bool:
        return "bool"
    return "int" if field.type is int else "str"  # str, or a Literal of str


encode_record: Callable[[Record], bytes | None] | None = None
"""`codec.encode`'s bytes for the registered types (None from it: use Python)."""


def encoder(fallback: Callable[[Record], bytes]) -> Callable[[Record], bytes]:
    """`codec.encode`: the C writer calling `fallback` for what it declines (one C call
    per record, no Python frame around it), or `fallback` itself without the extension."""
    if _native is None:
        return fallback
    _native.set_encode_fallback(fallback)
    return _native.encode


content_hash: Callable[[Record, bool], str | None] | None = None
"""`msgid.content_hash`'s hex digest (None from it: use Python)."""

if _native is not None:
    for _cls in (Trade, Quote, Book):
        _tag = _cls.__struct_config__.tag
        _fields = msgspec.structs.fields(_cls)
        _native.register_record(_cls, _tag, tuple(f.name for f in _fields),
                                tuple(_kind(_tag, f) for f in _fields))  # fmt: skip
    encode_record, content_hash = _native.encode_record, _native.content_hash
