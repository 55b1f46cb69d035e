"""Normalized records, wire schema v1 (DESIGN.md §5).

One record per venue event. In memory, prices and sizes are int fixed-point
(see `ssmd.model.fixed`); `ssmd.model.codec` turns them into canonical decimal
strings on JSON wires. Parsers fill `feed`, `symbol` and `iid` from the secmaster
mapping they are given; `seq` is the venue's own sequence number or 0.
"""

from __future__ import annotations

from typing import Literal

import msgspec

SCHEMA_VERSION = 1

Side = Literal["buy", "sell", "unknown"]
GapReason = Literal["disconnect", "sequence", "checksum", "stale", "resync", "parse", "crossed"]
InstrumentKind = Literal["spot", "perp", "future", "option", "binary"]
Level = tuple[int, int]
"""One L2 level: (price, absolute size), both fixed-point; size 0 deletes the level."""


class _Base(msgspec.Struct, kw_only=True, tag_field="type", frozen=True):
    feed: str = ""
    venue: str
    symbol: str
    iid: int = 0
    ts_event: int = 0
    ts_recv: int
    seq: int = 0


class Trade(_Base, tag="trade", frozen=True):
    price: int
    size: int
    side: Side = "unknown"
    trade_id: str = ""


class Quote(_Base, tag="quote", frozen=True):
    bid_px: int
    bid_sz: int
    ask_px: int
    ask_sz: int


class Book(_Base, tag="book", frozen=True):
    snapshot: bool
    bids: list[Level]
    asks: list[Level]


class Status(_Base, tag="status", frozen=True):
    status: str
    reason: str = ""
    result: str = ""


class Gap(_Base, tag="gap", frozen=True):
    reason: GapReason
    since_ns: int = 0
    until_ns: int = 0
    detail: str = ""


class InstrumentRecord(_Base, tag="instrument", frozen=True):
    """A secmaster change seen on the wire (new market, tick-size change, delisting)."""

    kind: InstrumentKind = "spot"
    base: str = ""
    quote: str = ""
    tick_size: int = 0
    lot_size: int = 0
    status: str = ""
    expiry_ns: int = 0


Record = Trade | Quote | Book | Status | Gap | InstrumentRecord
RECORD_TYPES: tuple[str, ...] = ("trade", "quote", "book", "status", "gap", "instrument")
