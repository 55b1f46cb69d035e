"""What history calls return: lists of typed rows that also turn into DataFrames.

Decision **list-with-frames**: results are plain lists (of `ssmd.model` records, or of
`Bar`s) so they index, slice and iterate like any list, with `.to_pandas()` and
`.to_polars()` for tables — no `as_=` switch whose return type depends on a string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from ssmd.client.frames import Decimals, Layout, Times, to_pandas, to_polars
from ssmd.model.codec import DECIMAL_FIELDS, LEVEL_FIELDS
from ssmd.model.fixed import to_fixed
from ssmd.model.records import Record


class _Framed(list):  # type: ignore[type-arg]
    clipped: bool = False
    """True when the gateway clipped the range to the client's entitlements."""

    def _rows(self) -> list[dict[str, Any]]:
        return [msgspec.to_builtins(r) for r in self]

    def _layout(self, rows: list[dict[str, Any]]) -> Layout:
        raise NotImplementedError

    def to_pandas(self, decimals: Decimals = "decimal", times: Times = "datetime") -> Any:
        """A pandas DataFrame, one row per item; decimals exact unless asked otherwise."""
        rows = self._rows()
        return to_pandas(rows, self._layout(rows), decimals, times)

    def to_polars(self, decimals: Decimals = "decimal", times: Times = "datetime") -> Any:
        """A polars DataFrame, one row per item; decimals exact unless asked otherwise."""
        rows = self._rows()
        return to_polars(rows, self._layout(rows), decimals, times)


class Records(_Framed):
    """Records (`ssmd.model` Structs: Trade, Quote, Book, …), oldest first."""

    def _layout(self, rows: list[dict[str, Any]]) -> Layout:
        columns: dict[str, None] = {}
        decimals: set[str] = set()
        for r in rows:
            columns.update(dict.fromkeys(r))
            decimals.update(DECIMAL_FIELDS.get(r["type"], ()))
        return Layout(list(columns), decimals, LEVEL_FIELDS)


class Bar(msgspec.Struct, frozen=True):
    """One OHLCV bar; prices and volume are int fixed-point at 1e-9 like records."""

    ts: int
    """Bar start, ns."""
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int


BAR_DECIMALS = ("open", "high", "low", "close", "volume")


def bar_from_wire(obj: dict[str, Any]) -> Bar:
    return Bar(
        ts=int(obj["ts"]),
        trades=int(obj["trades"]),
        **{k: to_fixed(obj[k]) for k in BAR_DECIMALS},
    )


class Bars(_Framed):
    """Bars, oldest first."""

    interval_ns: int = 0

    def _layout(self, rows: list[dict[str, Any]]) -> Layout:
        return Layout(list(Bar.__struct_fields__), BAR_DECIMALS)


@dataclass(frozen=True)
class BookAt:
    """The L2 book at a time. `known` False (with `reason`) rather than a wrong book."""

    feed: str
    symbol: str
    at: int
    known: bool
    reason: str
    bids: list[tuple[int, int]] = field(default_factory=list)
    """(price, size) fixed-point, best first."""
    asks: list[tuple[int, int]] = field(default_factory=list)
    snapshot_ts_recv: int | None = None
    last_ts_recv: int | None = None
    deltas: int = 0

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> BookAt:
        def levels(side: str) -> list[tuple[int, int]]:
            return [(to_fixed(p), to_fixed(s)) for p, s in doc.get(side) or []]

        return cls(
            feed=doc["feed"], symbol=doc["symbol"], at=doc["at"], known=doc["known"],
            reason=doc.get("reason", ""), bids=levels("bids"), asks=levels("asks"),
            snapshot_ts_recv=doc.get("snapshot_ts_recv"), last_ts_recv=doc.get("last_ts_recv"),
            deltas=doc.get("deltas", 0),
        )  # fmt: skip


def records_of(items: list[Record], clipped: bool) -> Records:
    out = Records(items)
    out.clipped = clipped
    return out
