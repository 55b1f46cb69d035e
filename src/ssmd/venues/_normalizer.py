"""Shared plumbing for venue normalizers: counters, resync queue, failure reporting.

Each venue module subclasses `NormalizerBase` and implements `_frame` (the pure mapping);
`on_frame` wraps it so that nothing escapes: any exception becomes a `gap(reason=parse)`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ssmd.book.integrity import BookState, integrity_gap
from ssmd.model.records import Gap, GapReason, Record
from ssmd.venues.base import IntegrityStats, Resync, SymbolInfo

MAX_DETAIL = 200
INT64_MAX = 2**63 - 1
_SCALE = 1_000_000_000


def parse_fixed(text: str) -> int:
    """Venue decimal string -> 1e-9 fixed-point, fast and without the int64 range check.

    Books keep any level the venue keeps (Kraken shows asks at 9999999997 BTC/CHF, beyond
    int64 nanos) so that depth truncation and checksums stay exact; `publishable` filters
    what reaches records. Raises ValueError on anything but plain decimals.
    """
    whole, dot, frac = text.partition(".")
    if len(frac) > 9:
        if frac[9:].strip("0"):
            raise ValueError(f"more than 9 decimals: {text!r}")
        frac = frac[:9]
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a plain decimal: {text!r}")
    return int(whole) * _SCALE + int(frac.ljust(9, "0")) if dot else int(whole) * _SCALE


def publishable(levels: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Levels that fit the int64 fixed-point wire schema (DESIGN.md §5)."""
    return [lv for lv in levels if lv[0] <= INT64_MAX and lv[1] <= INT64_MAX]


"""Gap details quote at most this much of a bad frame."""


def excerpt(payload: bytes | str, limit: int = 80) -> str:
    text = payload if isinstance(payload, str) else payload[: limit * 4].decode("utf-8", "replace")
    return text[:limit] + ("…" if len(text) > limit else "")


class NormalizerBase:
    """Counters and resync decisions common to every venue normalizer."""

    venue = ""

    def __init__(self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> None:
        self.stats = IntegrityStats()
        self.symbols: dict[str, SymbolInfo] = dict(symbols or {})
        self.feed = feed
        self._resyncs: list[Resync] = []

    # -- the Normalizer protocol ------------------------------------------------

    def on_frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        """Parse one received frame. Never raises: a bad frame yields `gap(reason=parse)`."""
        self.stats.frames += 1
        try:
            out = self._frame(payload, ts_recv)
        except Exception as exc:
            out = self._on_bad_frame(payload, ts_recv, exc)
        self._count(out)
        return out

    def on_rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        try:
            out = self._rest(endpoint, body, ts_recv)
        except Exception as exc:
            out = [self.parse_gap(f"REST {endpoint}: {type(exc).__name__}: {exc}", ts_recv)]
        self._count(out)
        return out

    def take_resyncs(self) -> list[Resync]:
        out, self._resyncs = self._resyncs, []
        return out

    # -- for subclasses -----------------------------------------------------------

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        raise NotImplementedError

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        return []

    def _on_bad_frame(self, payload: bytes | str, ts_recv: int, exc: Exception) -> list[Record]:
        """Hook: a venue may also invalidate the book the bad frame belonged to."""
        return [self.parse_gap(f"{type(exc).__name__}: {exc}; frame {excerpt(payload)}", ts_recv)]

    def symbol_info(self, venue_symbol: str, default: str) -> SymbolInfo:
        found = self.symbols.get(venue_symbol)
        if found is None:
            found = self.symbols[venue_symbol] = SymbolInfo(default)
        return found

    def parse_gap(self, detail: str, ts_recv: int, symbol: str = "") -> Gap:
        self.stats.parse_errors += 1
        return integrity_gap(
            self.venue, None, "parse", detail[:MAX_DETAIL], ts_recv, symbol=symbol, feed=self.feed
        )

    def fail(
        self,
        state: BookState,
        reason: GapReason,
        detail: str,
        ts_recv: int,
        action: str,
        ts_event: int = 0,
    ) -> Gap:
        """Count a book integrity failure, invalidate the book, queue its resync."""
        stats = self.stats
        if reason == "checksum":
            stats.checksums_failed += 1
        elif reason == "sequence":
            stats.sequence_gaps += 1
        elif reason == "crossed":
            stats.crossed += 1
        elif reason == "parse":
            stats.parse_errors += 1
        self._resyncs.append(Resync(action, (state.venue_symbol,), f"{reason}: {detail}"))  # type: ignore[arg-type]
        return integrity_gap(
            self.venue, state, reason, detail, ts_recv, feed=self.feed, ts_event=ts_event
        )

    def _count(self, out: list[Record]) -> None:
        if out:
            records = self.stats.records
            for rec in out:
                kind = rec.__struct_config__.tag
                records[kind] = records.get(kind, 0) + 1
