"""The one base every venue normalizer builds on, and the wire helpers they share (private).

Why a base class: every normalizer must keep the same promises — never raise, turn a
bad frame into `gap(reason=parse)`, count records and integrity events, queue resync
decisions — and those promises are easier to keep once than seven times. Subclasses
implement `_frame` (and `_rest` when a REST body feeds the stream); the wrappers here
count and catch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from ssmd.book.integrity import BookState, crossed_detail
from ssmd.model.fixed import SCALE, to_fixed
from ssmd.model.instrument import Instrument
from ssmd.model.native import _native
from ssmd.model.records import Book, Gap, GapReason, InstrumentRecord, Level, Quote, Record, Trade
from ssmd.venues.base import IntegrityStats, Resync, ResyncAction, SymbolInfo

__all__ = [
    "INT64_MAX",
    "BadFrame",
    "NormalizerBase",
    "arr",
    "cents",
    "check_channels",
    "check_symbols",
    "chunks",
    "decode_json",
    "dumps",
    "excerpt",
    "fixed",
    "instrument_records",
    "integer",
    "iso_ns",
    "ms_ns",
    "no_snapshot",
    "obj",
    "parse_fixed",
    "publishable",
    "text",
    "with_query",
]

_size = itemgetter(1)
MAX_DETAIL = 300
"""Gap details are cut to this length (a bad frame can be megabytes)."""
INT64_MAX = 2**63 - 1

_decoder = msgspec.json.Decoder(float_hook=Decimal)
"""JSON numbers with a fraction become exact Decimals, never binary floats."""


class BadFrame(ValueError):
    """A frame that does not have the shape the venue documents."""


# -- decoding and numbers -----------------------------------------------------------------


def decode_json(payload: bytes | str, decoder: msgspec.json.Decoder = _decoder) -> Any:
    """Decode a frame; fractions come back as Decimal so no price ever touches a float
    (or as whatever exact form a venue's own `decoder` hooks them into)."""
    try:
        return decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeError, ValueError, RecursionError) as exc:
        raise BadFrame(f"not JSON: {exc}") from None


def with_query(url: str, **params: str) -> str:
    """`url` with these query parameters set (replacing any of the same name): a venue's
    next reference page."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def dumps(obj: Any) -> str:
    """Compact JSON text for frames we send."""
    return json.dumps(obj, separators=(",", ":"))


def fixed(value: object) -> int:
    """A venue decimal (string, int or exact Decimal) as int64 fixed-point; BadFrame otherwise."""
    if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
        try:
            return to_fixed(value)
        except (ValueError, ArithmeticError):
            pass
    raise BadFrame(f"not a decimal: {value!r}")


def parse_fixed(text: str) -> int:
    """Unsigned venue decimal string -> 1e-9 fixed-point, without the int64 range check.

    Books keep any level the venue keeps (Kraken shows asks at 9999999997 BTC/CHF, beyond
    int64 nanos) so that depth truncation and checksums stay exact; `publishable` filters
    what reaches records. Plain string arithmetic, exact, no Decimal. ValueError on
    anything but a plain decimal.
    """
    whole, dot, frac = text.partition(".")
    if len(frac) > 9:
        if frac[9:].strip("0"):
            raise ValueError(f"more than 9 decimals: {text!r}")
        frac = frac[:9]
    if not whole.isdigit() or (frac and not frac.isdigit()) or not text.isascii():
        raise ValueError(f"not a plain decimal: {text!r}")
    return int(whole) * SCALE + int(frac.ljust(9, "0")) if dot else int(whole) * SCALE


def publishable(levels: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Levels that fit the int64 fixed-point wire schema (DESIGN.md §5); `levels` itself
    when all do (checked with C-level max: snapshots are long, outliers rare)."""
    if not levels or (max(levels)[0] <= INT64_MAX and max(map(_size, levels)) <= INT64_MAX):
        return levels
    return [lv for lv in levels if lv[0] <= INT64_MAX and lv[1] <= INT64_MAX]


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


def excerpt(payload: bytes | str, limit: int = 80) -> str:
    """The start of a frame, for a gap's detail."""
    txt = payload if isinstance(payload, str) else payload[: limit * 4].decode("utf-8", "replace")
    return txt[:limit] + ("…" if len(txt) > limit else "")


# -- shapes -----------------------------------------------------------------------------


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


def instrument_records(instruments: Iterable[Instrument], feed: str, ts_recv: int) -> list[Record]:
    """Instruments as `instrument` records (what a reference-data refresh publishes)."""
    return [
        InstrumentRecord(
            feed=feed,
            venue=i.venue,
            symbol=i.symbol,
            ts_recv=ts_recv,
            kind=i.kind,
            base=i.base,
            quote=i.quote,
            tick_size=i.tick_size,
            lot_size=i.lot_size,
            status=i.status,
            expiry_ns=i.expiry_ns,
        )
        for i in instruments
    ]


# -- outbound -------------------------------------------------------------------------------


def chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """Split a symbol list into per-message batches of at most `size`."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def no_snapshot(venue_symbol: str, depth: int | None = None) -> None:
    """`snapshot_url` of a venue whose stream carries its own book snapshots."""
    return None


def check_symbols(symbols: Iterable[str], limit: int, venue: str) -> list[str]:
    """Deduplicated symbols, refusing none or more than one connection may carry."""
    out = list(dict.fromkeys(symbols))
    if not out:
        raise ValueError("no symbols given")
    if len(out) > limit:
        raise ValueError(
            f"{len(out)} symbols exceed {venue}'s {limit} per connection; shard the feed"
        )
    return out


def check_channels(channels: Iterable[str], known: Sequence[str], venue: str) -> list[str]:
    """Deduplicated channels, each one the venue module knows."""
    out = list(dict.fromkeys(channels))
    if not out:
        raise ValueError("no channels given")
    for ch in out:
        if ch not in known:
            raise ValueError(f"unknown {venue} channel {ch!r}; known: {', '.join(known)}")
    return out


# -- the base -------------------------------------------------------------------------------

_STAT_OF: dict[str, str] = {
    "checksum": "checksums_failed",
    "sequence": "sequence_gaps",
    "crossed": "crossed",
    "parse": "parse_errors",
}
"""Which integrity counter a gap reason moves."""
_NO_SYMBOL = SymbolInfo("")


class NormalizerBase:
    """Frame loop of one connection: parse, count, catch; subclasses implement `_frame`."""

    venue = ""

    def __init__(self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> None:
        self.feed = feed
        self.symbols: dict[str, SymbolInfo] = dict(symbols or {})
        """The secmaster's names for venue symbols (what the runtime passed in)."""
        self.stats = IntegrityStats()
        self.pending_resyncs: list[Resync] = []
        """Decisions not yet taken (the runtime looks before it calls `take_resyncs`)."""
        self._defaults: dict[str, SymbolInfo] = {}
        self.iids: dict[str, int] = {}
        """The secmaster's iids by venue symbol, for names the venue's rules give."""
        self.native: Callable[..., Any] | None = None
        """The venue's whole-frame C path (`ssmd._native`), called with (books, payload,
        ts_recv, `native_ctx`) before `_frame`; None: Python only. Set by the venue."""
        self.native_ctx = (self.feed, self.venue, Book, Trade, Quote, None, self.symbols,
                           self._defaults)  # fmt: skip
        """How the C path names and builds records (`Ctx` in src/ssmd/_native/common.h)."""

    # -- the Normalizer protocol ------------------------------------------------------

    def on_frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        """Parse one received frame. Never raises: a bad frame yields `gap(reason=parse)`.

        Frames of the common shape go through the venue's C path in one call (same
        records, same books); everything else, and all it declines, through `_frame`."""
        if self.native is None:
            return self._python_frame(payload, ts_recv)
        return self.on_frames([(payload, ts_recv, 0)])[0]

    def _python_frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        """A frame through the venue's `_frame`, counted; a bad one becomes a gap."""
        stats = self.stats
        stats.frames += 1
        try:
            out = self._frame(payload, ts_recv)
        except Exception as exc:  # the contract: nothing escapes, a bad frame is data
            out = self._on_bad_frame(payload, ts_recv, exc)
        if out:  # `_count`, inlined: this runs once per frame
            records = stats.records
            for rec in out:
                kind = rec.__struct_config__.tag
                records[kind] = records.get(kind, 0) + 1  # type: ignore[index]
        return out

    def on_frames(self, frames: Sequence[tuple[bytes, int, int]]) -> list[list[Record]]:
        """`on_frame` for each (payload, ts_recv, mono) of one socket read, in order. The
        venue's C path takes them in one call (`_native.native_frames`: book updates whose
        checksum verified, trades, quotes) until a frame whose outcome Python finishes (a
        verdict, a raise, a frame C declines); the counting is done once for the read."""
        native = self.native
        if native is None:
            python_frame = self._python_frame
            return [python_frame(payload, ts) for payload, ts, _ in frames]
        frames = frames if type(frames) is list else list(frames)
        books, ctx = self.books, self.native_ctx  # type: ignore[attr-defined]
        run = _native.native_frames  # type: ignore[union-attr]
        out: list[list[Record]] = []
        kinds: dict[type[Record], int] = {}
        i, end = 0, len(frames)
        verified = flows = 0
        while True:
            i, n_books, n_flows, got = run(native, books, frames, i, ctx, out, kinds)
            verified += n_books
            flows += n_flows
            if i == end:
                break
            payload, ts, _ = frames[i]
            if got is None:
                out.append(self._python_frame(payload, ts))
            else:
                out.append(self._native_outcome(got, payload, ts))
            i += 1
        if verified:
            self._verified(verified)
        if flows:
            self.stats.frames += flows
            records = self.stats.records
            for kind, n in kinds.items():
                tag = kind.__struct_config__.tag
                records[tag] = records.get(tag, 0) + n  # type: ignore[index]
        return out

    def _verified(self, n: int) -> None:
        """Count `n` book updates the C path took whole (checksum verified)."""
        stats = self.stats
        stats.frames += n
        stats.checksums_verified += n
        records = stats.records
        records["book"] = records.get("book", 0) + n

    def _native_outcome(
        self, got: tuple[int, Any, int, Any, Any] | Exception, payload: bytes | str, ts_recv: int
    ) -> list[Record]:
        """Finish a frame the C path took (src/ssmd/_native/), as `on_frame` would: count
        it, and turn its verdict into records. `got` is what it raised (the book may be
        half updated: withdrawn as after a bad frame) or (code, state, ts_event, a, b):
        0 = a is the record, b 1 if a checksum verified; 1 = checksum mismatch (venue's a,
        ours b); 2 = crossed; 3 = a holds the frame's records (trades, quotes)."""
        fail = self._fail_book
        stats = self.stats
        stats.frames += 1
        if isinstance(got, Exception):
            out = self._on_bad_frame(payload, ts_recv, got)
        else:
            code, state, ts_event, a, b = got
            if code == 0:
                stats.checksums_verified += b
                out = [a]
            elif code == 3:
                out = a
            elif code == 1:
                out = [fail(state, "checksum", f"venue {a} != ours {b}", ts_recv, ts_event)]
            else:
                out = [fail(state, "crossed", crossed_detail(state.book), ts_recv, ts_event)]
        self._count(out)
        return out

    def on_rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        """A REST body the stream depends on (snapshot, instruments). Never raises."""
        try:
            out = self._rest(endpoint, body, ts_recv)
        except Exception as exc:
            out = [self.gap("parse", "", ts_recv, f"REST {endpoint}: {type(exc).__name__}: {exc}")]
        if out:
            self._count(out)
        return out

    def take_resyncs(self) -> list[Resync]:
        out = self.pending_resyncs
        if not out:
            return []
        self.pending_resyncs = []
        return out

    def set_iids(self, iids: Mapping[str, int]) -> None:
        """Learn the secmaster's iids (venue symbol → iid). An iid never changes, so only
        names known so far without one are updated; the next record carries it."""
        self.iids.update(iids)
        for known in (self.symbols, self._defaults):
            for venue_symbol, info in known.items():
                iid = self.iids.get(venue_symbol, 0)
                if iid and not info.iid:
                    known[venue_symbol] = SymbolInfo(info.symbol, iid)
        for state in getattr(self, "books", {}).values():  # books that keep their header
            if isinstance(state, BookState) and not state.iid:
                state.iid = self.iids.get(state.venue_symbol, 0)

    # -- for subclasses -----------------------------------------------------------------

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        raise NotImplementedError

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        return []

    def _fail_book(
        self, state: BookState, reason: GapReason, detail: str, ts_recv: int, ts_event: int
    ) -> Gap:
        """Hook for venues with a C path: a book failure it reported, as the venue fails."""
        raise NotImplementedError

    def _on_bad_frame(self, payload: bytes | str, ts_recv: int, exc: Exception) -> list[Record]:
        """Hook: a venue may also invalidate the book the bad frame belonged to."""
        detail = f"{type(exc).__name__}: {exc}; frame {excerpt(payload)}"
        return [self.gap("parse", "", ts_recv, detail)]

    def sym(self, venue_symbol: str, default: str | None = None) -> SymbolInfo:
        """The secmaster's name for a venue symbol, else `default` (the venue's own
        normalization, or the venue symbol itself). Defaults are cached apart from
        `symbols`, which keeps saying what the runtime asked for."""
        found = self.symbols.get(venue_symbol)
        if found is None:
            found = self._defaults.get(venue_symbol)
            if found is None:
                name = venue_symbol if default is None else default
                found = SymbolInfo(name, self.iids.get(venue_symbol, 0))
                self._defaults[venue_symbol] = found
        return found

    def sym_with(self, venue_symbol: str, normalize: Callable[[str], str]) -> SymbolInfo:
        """`sym(venue_symbol, normalize(venue_symbol))`, normalizing only on a miss: trades
        and tickers look their symbol up per record, and it is almost always known."""
        found = self.symbols.get(venue_symbol) or self._defaults.get(venue_symbol)
        return found if found is not None else self.sym(venue_symbol, normalize(venue_symbol))

    def record_fields(
        self, venue_symbol: str, ts_event: int, ts_recv: int, seq: int = 0
    ) -> dict[str, Any]:
        """The fields every record of a venue symbol starts with (feed, venue, the
        secmaster's symbol and iid, times, seq): filled in one place so that no venue
        spells the record header differently. Splat into the record: `Trade(**fields, ...)`."""
        info = self.sym(venue_symbol)
        return {
            "feed": self.feed,
            "venue": self.venue,
            "symbol": info.symbol,
            "iid": info.iid,
            "ts_event": ts_event,
            "ts_recv": ts_recv,
            "seq": seq,
        }

    def book_record(
        self,
        venue_symbol: str,
        snapshot: bool,
        bids: list[Level],
        asks: list[Level],
        ts_event: int,
        ts_recv: int,
        seq: int = 0,
    ) -> Book:
        """A `book` record (snapshot or delta) for the levels a venue's book just took."""
        fields = self.record_fields(venue_symbol, ts_event, ts_recv, seq)
        return Book(**fields, snapshot=snapshot, bids=bids, asks=asks)

    def gap(
        self,
        reason: GapReason,
        venue_symbol: str | SymbolInfo,
        ts_recv: int,
        detail: str,
        *,
        seq: int = 0,
        since_ns: int = 0,
        ts_event: int = 0,
        count: bool = True,
    ) -> Gap:
        """A gap record, counted in the stats; `count=False` for the 2nd..nth record of
        one event (one gap that touches several symbols is still one gap). `venue_symbol`
        may be the resolved SymbolInfo already."""
        if count and reason in _STAT_OF:
            stat = _STAT_OF[reason]
            setattr(self.stats, stat, getattr(self.stats, stat) + 1)
        if isinstance(venue_symbol, SymbolInfo):
            info = venue_symbol
        else:
            info = self.sym(venue_symbol) if venue_symbol else _NO_SYMBOL
        return Gap(
            feed=self.feed, venue=self.venue, symbol=info.symbol, iid=info.iid,
            ts_event=ts_event, ts_recv=ts_recv, seq=seq, reason=reason,
            since_ns=since_ns or ts_recv, until_ns=ts_recv, detail=detail[:MAX_DETAIL],
        )  # fmt: skip

    def resync(
        self, action: ResyncAction, venue_symbols: Iterable[str], reason: str, *frames: str
    ) -> None:
        """Queue a resync decision for the runtime (one per event, symbols sorted)."""
        syms = tuple(sorted(set(venue_symbols)))
        if syms:
            self.pending_resyncs.append(Resync(action, syms, reason, frames))

    def fail(
        self,
        state: BookState,
        reason: GapReason,
        detail: str,
        ts_recv: int,
        action: ResyncAction,
        ts_event: int = 0,
        seq: int = 0,
        frames: tuple[str, ...] = (),
    ) -> Gap:
        """A book integrity failure: invalidate the book, queue its resync, count, report.
        `frames`: what to send for a resubscribe, where the venue can heal the book alone
        (the runtime's default resubscribes every channel of the symbol)."""
        state.invalidate(ts_recv)
        self.resync(action, (state.venue_symbol,), f"{reason}: {detail}", *frames)
        info = SymbolInfo(state.symbol, state.iid)
        return self.gap(reason, info, ts_recv, detail, ts_event=ts_event, seq=seq)

    def _count(self, out: list[Record]) -> None:
        records = self.stats.records
        for rec in out:
            kind = rec.__struct_config__.tag
            records[kind] = records.get(kind, 0) + 1  # type: ignore[index]
