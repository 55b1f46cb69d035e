"""Shared plumbing for the Coinbase, Kalshi and Polymarket adapters (private).

Why a base class: every normalizer must keep the same promises (never raise, turn a
bad frame into `gap(reason=parse)`, count records and integrity events, queue resync
decisions), and those promises are easier to keep once than four times.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from ssmd.model.fixed import SCALE, to_fixed
from ssmd.model.records import Gap, GapReason, Record
from ssmd.venues.base import IntegrityStats, Resync, SymbolInfo

__all__ = [
    "BadFrame",
    "NormalizerBase",
    "arr",
    "cents",
    "check_symbols",
    "chunks",
    "decode_json",
    "dumps",
    "fixed",
    "integer",
    "iso_ns",
    "ms_ns",
    "obj",
    "text",
]

_decoder = msgspec.json.Decoder(float_hook=Decimal)
"""JSON numbers with a fraction become exact Decimals, never binary floats."""


class BadFrame(ValueError):
    """A frame that does not have the shape the venue documents."""


def decode_json(payload: bytes | str) -> Any:
    """Decode a frame; floats come back as Decimal so no price ever touches a float."""
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeError, ValueError, RecursionError) as exc:
        raise BadFrame(f"not JSON: {exc}") from None


def dumps(obj: Any) -> str:
    """Compact JSON text for frames we send."""
    return json.dumps(obj, separators=(",", ":"))


def fixed(value: object) -> int:
    """A venue decimal (string, int or exact Decimal) as fixed-point; BadFrame otherwise."""
    if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
        try:
            return to_fixed(value)
        except (ValueError, ArithmeticError):
            pass
    raise BadFrame(f"not a decimal: {value!r}")


def cents(value: object) -> int:
    """Legacy integer cents (Kalshi) as exact fixed-point dollars."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadFrame(f"not integer cents: {value!r}")
    return value * (SCALE // 100)


_epoch_cache: dict[str, int] = {}


def iso_ns(text: object) -> int:
    """ISO-8601 UTC time ('2021-04-17T16:43:37.089723Z', 9 fractional digits ok) to ns.

    Exact to the nanosecond: the fraction is read as digits, never through a float.
    The whole-second part is cached (a feed repeats the same second many times).
    """
    if not isinstance(text, str) or len(text) < 19:
        raise BadFrame(f"not a time: {text!r}")
    head, tail = text[:19], text[19:]
    base = _epoch_cache.get(head)
    if base is None:
        try:
            stamp = datetime.fromisoformat(head.replace(" ", "T")).replace(tzinfo=UTC)
        except ValueError:
            raise BadFrame(f"not a time: {text!r}") from None
        base = int(stamp.timestamp()) * 1_000_000_000
        if len(_epoch_cache) > 4096:
            _epoch_cache.clear()
        _epoch_cache[head] = base
    frac = 0
    if tail.startswith("."):
        digits = tail[1:]
        end = 0
        while end < len(digits) and digits[end].isdigit():
            end += 1
        if end == 0 or end > 9 or not digits[:end].isascii():
            raise BadFrame(f"bad fraction in time: {text!r}")
        frac = int(digits[:end]) * 10 ** (9 - end)
        tail = digits[end:]
    if tail not in ("", "Z", "+00:00", "+0000"):
        raise BadFrame(f"time not in UTC: {text!r}")
    return base + frac


def ms_ns(value: object) -> int:
    """Milliseconds since the epoch (int or digit string) to ns."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 1_000_000
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value) * 1_000_000
    raise BadFrame(f"not a millisecond timestamp: {value!r}")


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """Split a symbol list into per-message batches of at most `size`."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def check_symbols(symbols: Sequence[str], limit: int, venue: str) -> list[str]:
    """Deduplicated symbols, refusing more than one connection may carry."""
    out = list(dict.fromkeys(symbols))
    if not out:
        raise ValueError("no symbols given")
    if len(out) > limit:
        raise ValueError(
            f"{len(out)} symbols exceed {venue}'s {limit} per connection; shard the feed"
        )
    return out


class NormalizerBase:
    """Frame loop of one connection: decode, dispatch, count; subclasses implement `_handle`."""

    venue = ""

    def __init__(self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> None:
        self.feed = feed
        self.symbols: dict[str, SymbolInfo] = dict(symbols or {})
        self.stats = IntegrityStats()
        self._resyncs: list[Resync] = []

    # -- the Normalizer protocol ---------------------------------------------------

    def on_frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        """Parse one frame. Never raises: a bad frame yields one `gap(reason=parse)`."""
        self.stats.frames += 1
        try:
            out = self._handle(payload, ts_recv)
        except Exception as exc:  # the contract: nothing escapes, a bad frame is data
            out = [self._parse_gap(exc, ts_recv)]
        return self._count(out)

    def on_rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        """REST bodies the stream depends on; these venues' streams depend on none."""
        return []

    def take_resyncs(self) -> list[Resync]:
        out, self._resyncs = self._resyncs, []
        return out

    # -- helpers for subclasses ----------------------------------------------------

    def _handle(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        raise NotImplementedError

    def _sym(self, venue_symbol: str) -> SymbolInfo:
        found = self.symbols.get(venue_symbol)
        return found if found is not None else SymbolInfo(venue_symbol)

    def _gap(
        self,
        reason: GapReason,
        venue_symbol: str,
        ts_recv: int,
        detail: str,
        *,
        seq: int = 0,
        since_ns: int = 0,
        ts_event: int = 0,
        count: bool = True,
    ) -> Gap:
        """A gap record; `count=False` for the 2nd..nth record of one event (one gap that
        touches several symbols is still one gap in the stats)."""
        info = self._sym(venue_symbol) if venue_symbol else SymbolInfo("")
        if count and reason == "sequence":
            self.stats.sequence_gaps += 1
        elif count and reason == "crossed":
            self.stats.crossed += 1
        return Gap(
            feed=self.feed,
            venue=self.venue,
            symbol=info.symbol,
            iid=info.iid,
            ts_event=ts_event,
            ts_recv=ts_recv,
            seq=seq,
            reason=reason,
            since_ns=since_ns or ts_recv,
            until_ns=ts_recv,
            detail=detail,
        )

    def _parse_gap(self, exc: BaseException, ts_recv: int) -> Gap:
        self.stats.parse_errors += 1
        text = f"{type(exc).__name__}: {exc}"
        return Gap(
            feed=self.feed,
            venue=self.venue,
            symbol="",
            ts_recv=ts_recv,
            reason="parse",
            since_ns=ts_recv,
            until_ns=ts_recv,
            detail=text[:300],
        )

    def _resync(self, action: str, venue_symbols: Iterable[str], reason: str) -> None:
        syms = tuple(sorted(set(venue_symbols)))
        if syms:
            self._resyncs.append(Resync(action, syms, reason))  # type: ignore[arg-type]

    def _count(self, records: list[Record]) -> list[Record]:
        counts = self.stats.records
        for rec in records:
            kind = type(rec).__struct_config__.tag
            counts[kind] = counts.get(kind, 0) + 1  # type: ignore[index]
        return records


def obj(value: object, what: str) -> dict[str, Any]:
    """`value` as a JSON object, or BadFrame naming what was expected."""
    if not isinstance(value, dict):
        raise BadFrame(f"{what}: expected an object, got {type(value).__name__}")
    return value


def arr(value: object, what: str) -> list[Any]:
    """`value` as a JSON array, or BadFrame naming what was expected."""
    if not isinstance(value, list):
        raise BadFrame(f"{what}: expected an array, got {type(value).__name__}")
    return value


def text(value: object, what: str) -> str:
    """`value` as a non-empty string, or BadFrame."""
    if not isinstance(value, str) or not value:
        raise BadFrame(f"{what}: expected a non-empty string, got {value!r}")
    return value


def integer(value: object, what: str) -> int:
    """`value` as a JSON integer, or BadFrame."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadFrame(f"{what}: expected an integer, got {value!r}")
    return value
