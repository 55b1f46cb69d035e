"""Kraken spot WebSocket v1 (wss://ws.kraken.com): the fixture recordings' protocol.

Wire: object frames are events (`systemStatus`, `subscriptionStatus`, `heartbeat`,
`pong`); array frames are data `[channelID, body..., channelName, pair]`, every decimal
a string. Book: snapshot body `{"as": [...], "bs": [...]}`; update bodies `{"a": [...]}`
and/or `{"b": [...], "c": "crc32"}` (the checksum sits in the last body); a level is
`[price, volume, timestamp(, "r")]`, volume "0" deletes. The venue keeps only the
subscribed depth and sends no delete for a level pushed out of it, so we truncate too.
See docs/venues/kraken.md.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any
from zlib import crc32

import msgspec

from ssmd.book.checksum import CHECKSUM_LEVELS, decimals_of
from ssmd.book.integrity import BookState, crossed_detail
from ssmd.book.l2 import BookSide, L2Book
from ssmd.model.fixed import SCALE, to_fixed
from ssmd.model.instrument import Instrument
from ssmd.model.records import Book, Gap, GapReason, Level, Quote, Record, Side, Trade
from ssmd.venues import kraken_common as kraken
from ssmd.venues._normalizer import (
    INT64_MAX,
    NormalizerBase,
    decode_json,
    excerpt,
    no_snapshot,
    parse_fixed,
    publishable,
)
from ssmd.venues.base import SymbolInfo
from ssmd.venues.kraken_common import normalize_pair, parse_asset_pairs
from ssmd.venues.registry import VENUES

try:  # the whole-frame C path for book updates (setup.py); optional, same results
    from ssmd._native import v1_book as _native_book
except ImportError:  # pragma: no cover - built by every install with a C compiler
    _native_book = None

NATIVE = _native_book is not None
"""Whether book frames take the C path (`ssmd venue list` says so)."""

INFO = VENUES["kraken-v1"]
CHANNELS = ("book", "trade", "ticker", "spread")
_SIDE: dict[str, Side] = {"b": "buy", "s": "sell"}
_CHANNEL_ID = re.compile(rb"\s*\[\s*(\d+)")

__all__ = [
    "INFO",
    "KrakenV1Normalizer",
    "heartbeat",
    "instruments_url",
    "normalizer",
    "parse_instruments",
    "snapshot_url",
    "subscribe",
    "unsubscribe",
]


# -- the venue-module contract (venues/base.py) ------------------------------------------


def _frame(event: str) -> Any:
    def build(channel: str, depth: int | None, pairs: list[str], _: int) -> dict[str, Any]:
        sub: dict[str, Any] = {"name": channel}
        if depth is not None:
            sub["depth"] = depth
        return {"event": event, "pair": pairs, "subscription": sub}

    return build


def subscribe(
    channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None
) -> list[str]:
    """Subscribe frames for v1 pair names ('XBT/USD'), one per channel and batch of
    `max_symbols_per_message`; book depth defaults to 1000 (the recordings' depth)."""
    return kraken.subscription_frames(
        INFO, CHANNELS, channels, venue_symbols, depth, 1000, _frame("subscribe")
    )


def unsubscribe(
    channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None
) -> list[str]:
    return kraken.subscription_frames(
        INFO, CHANNELS, channels, venue_symbols, depth, 1000, _frame("unsubscribe")
    )


def heartbeat() -> str:
    """Application-level ping; the venue answers `pong` (and sends `heartbeat` when idle)."""
    return '{"event":"ping"}'


def instruments_url() -> str:
    return kraken.instruments_url(INFO)


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return parse_asset_pairs(body)


snapshot_url = no_snapshot
"""None: the book channel sends its own snapshot."""


def normalizer(
    symbols: Mapping[str, SymbolInfo] | None = None, feed: str = ""
) -> KrakenV1Normalizer:
    return KrakenV1Normalizer(symbols, feed)


# -- inbound --------------------------------------------------------------------------


_TS_SCALE = tuple(10 ** (9 - n) for n in range(10))


def _ts(text: str) -> int:
    """Kraken decimal seconds '1618678123.481570' -> ns (exact: digits, no float)."""
    if len(text) == 17 and text[10] == ".":  # seconds and microseconds, as sent today
        return int(text.replace(".", "", 1)) * 1000
    decimals = len(text) - text.find(".") - 1 if "." in text else 0
    if decimals <= 9:
        return int(text.replace(".", "", 1)) * _TS_SCALE[decimals]
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int(frac[:9])


class _Top:
    """One side of a Kraken book as the update loop sees it: the L2Book's live level map
    and sorted keys, and the prices and checksum tokens of its best 10 levels."""

    __slots__ = ("keys", "levels", "loop", "odd", "part", "prices", "sign", "tokens")

    def __init__(self, book: L2Book, side: BookSide) -> None:
        self.levels, self.keys = book.side_index(side)
        self.sign = -1 if side == "bid" else 1
        """Keys are sign * price (bids negated: both ascend best first)."""
        self.prices: list[int] = []
        self.tokens: list[str] = []
        self.part: bytes | None = None
        """"".join(tokens) encoded, cached until the top 10 change."""
        self.odd: dict[int, str] = {}
        """Tokens of live levels whose wire strings were off the pair's precision."""
        self.loop = (self.levels, self.keys, self.prices, self.tokens, self.odd, self.sign)
        """All of the above in one load for `_apply_rows` (the objects never change)."""


class _KState(BookState):
    """A Kraken book plus its checksum input, kept incrementally.

    v1 checksums the wire strings, whose decimals are fixed per pair but are *not*
    AssetPairs' pair_decimals (XBT/CHF: pair_decimals 1, wire '56218.30000'), so the
    precision is learned from the snapshot. At that precision a level's token (digits
    without '.' and leading zeros) is `f"{price_digits}{qty_digits}"` of the parsed
    ints, so no token is stored per level: each side keeps the prices and tokens of its
    top 10 only, spliced at the rank an update lands on, and its part of the CRC input
    is rebuilt only when touched. A level whose wire strings deviate from the precision
    keeps its own token (`_Top.odd`).
    """

    __slots__ = ("asks", "bids", "big", "crc", "crc_a", "fast", "native", "pmul", "qmul", "wire")

    def __init__(self, venue_symbol: str, symbol: str, iid: int = 0, max_depth: int = 0) -> None:
        super().__init__(venue_symbol, symbol, iid, max_depth)
        self.asks, self.bids = _Top(self.book, "ask"), _Top(self.book, "bid")
        self.crc_a = self.crc = -1
        self.big = False
        """Set by `_apply_rows`: this frame's records need `publishable`."""
        self.set_precision(-1, -1)

    def set_precision(self, price_decimals: int, qty_decimals: int) -> None:
        self.price_decimals, self.qty_decimals = price_decimals, qty_decimals
        self.fast = 0 < price_decimals <= 9 and 0 < qty_decimals <= 9
        """Wire strings at this precision parse as int(digits) * 10^(9 - decimals)."""
        self.pmul = 10 ** (9 - price_decimals) if self.fast else 0
        self.qmul = 10 ** (9 - qty_decimals) if self.fast else 0
        pmax = INT64_MAX // self.pmul if self.fast else 0
        qmax = INT64_MAX // self.qmul if self.fast else 0
        self.wire = (-price_decimals - 1, -qty_decimals - 1, self.pmul, self.qmul, pmax, qmax)
        """What the inline parse needs: '.' positions, scales, digit values within int64."""
        asks, bids = self.asks, self.bids
        self.native = (
            (asks, bids, asks.loop, bids.loop, price_decimals, qty_decimals, self.pmul,
             self.qmul, self.book.max_depth)
            if self.fast
            else None
        )  # fmt: skip
        """The same for the C path (`ssmd._native.v1_book`); None: updates in Python."""
        self.asks.odd.clear()
        self.bids.odd.clear()
        self.reset_top()

    def reset_top(self) -> None:
        """Rebuild both top-10 lists from the book (after a snapshot)."""
        for top in (self.asks, self.bids):
            sign, levels = top.sign, top.levels
            top.prices[:] = [sign * key for key in top.keys[:CHECKSUM_LEVELS]]
            top.tokens[:] = [self.token(top.odd, px, levels[px]) for px in top.prices]
            top.part = None

    def token(self, odd: dict[int, str], price: int, size: int) -> str:
        """A level's checksum token: its own if its wire strings were odd, else from ints."""
        tok = odd.get(price)
        return tok if tok is not None else f"{price // self.pmul}{size // self.qmul}"

    def parse(self, price: str, qty: str) -> tuple[int, int, str | None]:
        """(price, size, odd token or None) of one wire level; ValueError if malformed.

        The general path; `_apply_rows` inlines the common case."""
        pdot, qdot, pmul, qmul, _, _ = self.wire
        if (
            self.fast
            and len(price) > -pdot
            and len(qty) > -qdot
            and price[pdot] == "."
            and qty[qdot] == "."
        ):
            pi = int(price.replace(".", "", 1))
            qi = int(qty.replace(".", "", 1))
            if pi > 0 and qi >= 0:
                return pi * pmul, qi * qmul, None
        px, sz = parse_fixed(price), parse_fixed(qty)
        return px, sz, price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")

    def checksum(self) -> int:
        """CRC32 of the top-10 asks then bids, from the cached parts where untouched."""
        asks, bids = self.asks, self.bids
        if asks.part is None:
            asks.part = "".join(asks.tokens).encode()
            self.crc_a = crc32(asks.part)
            self.crc = -1
        if bids.part is None:
            bids.part = "".join(bids.tokens).encode()
            self.crc = -1
        if self.crc < 0:
            self.crc = crc32(bids.part, self.crc_a)
        return self.crc


def _apply_rows(
    state: _KState, top: _Top, rows: list[list[str]], out: list[Level], last_ts: str
) -> str:
    """Apply one side's wire levels in order, keeping its top 10; the newest time.

    Sets `state.big` when a level beyond int64 nanos went to `out`.
    This loop is most of a book update's cost, so it inlines the common level parse
    ('.' where the pair's precision puts it, digits within int64 once scaled) and
    `L2Book.update` (keep the two in step).
    """
    pdot, qdot, pmul, qmul, pmax, qmax = state.wire
    levels, keys, prices, tokens, odd, sign = top.loop
    depth = state.book.max_depth
    for row in rows:
        price, qty, stamp = row[0], row[1], row[2]
        tok = None
        try:
            fast = pmul and price[pdot] == "." and qty[qdot] == "."
        except IndexError:  # shorter than the precision: off-precision
            fast = False
        if fast:
            pi = int(price.replace(".", "", 1))
            qi = int(qty.replace(".", "", 1))
            fast = 0 < pi <= pmax and 0 <= qi <= qmax
        if fast:
            px, sz = pi * pmul, qi * qmul
        else:  # off the pair's precision (or malformed: ValueError)
            px, sz, tok = state.parse(price, qty)
            if tok is None:  # at the precision, only too big for int64: token from ints
                pi, qi = px // pmul, sz // qmul
            if px > INT64_MAX or sz > INT64_MAX:
                state.big = True
        if stamp > last_ts:
            last_ts = stamp
        out.append((px, sz))
        if odd or tok is not None:
            odd.pop(px, None)
            if tok is not None and sz:
                odd[px] = tok
        # L2Book.update, inlined; `rank` = where the level is (or was), -1: no change
        key = sign * px
        rank = bisect_left(keys, key)
        if sz:
            if px in levels:
                levels[px] = sz
            else:
                levels[px] = sz
                keys.insert(rank, key)
                if depth and len(keys) > depth:  # the venue drops its worst silently
                    worst = sign * keys.pop()
                    del levels[worst]
                    out.append((worst, 0))
                    if worst > INT64_MAX:
                        state.big = True
                    if odd:
                        odd.pop(worst, None)
        elif levels.pop(px, None) is not None:
            del keys[rank]
        else:
            rank = -1
        if 0 <= rank < CHECKSUM_LEVELS:
            top.part = None
            if not sz:  # deleted: the next level moves up into the top 10
                del prices[rank], tokens[rank]
                if len(keys) >= CHECKSUM_LEVELS:
                    nxt = sign * keys[CHECKSUM_LEVELS - 1]
                    prices.append(nxt)
                    tokens.append(state.token(odd, nxt, levels[nxt]))
            elif rank < len(prices) and prices[rank] == px:  # same price, new size
                tokens[rank] = f"{pi}{qi}" if tok is None else tok
            else:  # new price: the 10th (if any) drops out
                prices.insert(rank, px)
                tokens.insert(rank, f"{pi}{qi}" if tok is None else tok)
                del prices[CHECKSUM_LEVELS:], tokens[CHECKSUM_LEVELS:]
    return last_ts


_INTS = msgspec.json.Decoder(list[int])


def _column(texts: tuple[str, ...], decimals: int) -> list[int] | None:
    """A snapshot column of wire decimals as fixed-point ints, or None if any string is
    not plain digits with exactly `decimals` decimals (the caller then parses row by row).

    Snapshots are ~1000 levels and int() per string was their main cost, so the column
    becomes one JSON array of integers decoded by msgspec in C: drop the '.', append the
    zeros that scale to 1e-9. JSON forbids leading zeros, which every value below 1 has
    ('0.00123'), so those are written '-1' + fraction, i.e. -(1e9 + value), and turned
    back after decoding (a real '-' is refused first). The '.' position and count are
    checked up front; JSON then rejects anything but digits.
    """
    try:
        if set(map(itemgetter(-decimals - 1), texts)) != {"."}:
            return None
        joined = "," + ",".join(texts)
    except (IndexError, TypeError):
        return None
    if joined.count(".") != len(texts) or "-" in joined:
        return None
    pad = "0" * (9 - decimals)
    digits = joined.replace(",0.", ",-1").replace(".", "").replace(",", pad + ",")
    try:
        values = _INTS.decode(f"[{digits[len(pad) + 1 :]}{pad}]")
    except msgspec.DecodeError:  # a sign, an exponent, any non-digit
        return None
    if len(values) != len(texts):
        return None
    if min(values) < 0:
        values = [v if v >= 0 else -v - SCALE for v in values]
    return values


def _snapshot_side(
    state: _KState, rows: list[list[str]], odd: dict[int, str]
) -> tuple[list[Level], str]:
    """One side of a snapshot as (levels in wire order, newest timestamp)."""
    if not rows:
        return [], ""
    columns = list(zip(*rows, strict=False))
    stamps = columns[2]
    if state.fast:
        pxs = _column(columns[0], state.price_decimals)
        szs = _column(columns[1], state.qty_decimals) if pxs is not None else None
        if pxs is not None and szs is not None and min(pxs) > 0:
            return list(zip(pxs, szs, strict=True)), max(stamps)
    levels = []
    for row in rows:
        px, sz, tok = state.parse(row[0], row[1])
        levels.append((px, sz))
        if tok is not None and sz:
            odd[px] = tok
    return levels, max(stamps)


class KrakenV1Normalizer(NormalizerBase):
    """One v1 connection: books (with checksums), trades, tickers and spreads."""

    venue = "kraken"

    def __init__(
        self,
        symbols: Mapping[str, SymbolInfo] | None = None,
        feed: str = "",
        instruments: Iterable[Instrument] = (),
        verify_checksums: bool = True,
    ) -> None:
        super().__init__(symbols, feed)
        self.verify_checksums = verify_checksums
        self.books: dict[str, _KState] = {}
        self.channels: dict[int, str] = {}
        """Book channelID -> pair, from subscriptionStatus (to pin a bad frame on a book)."""
        self.add_instruments(instruments)
        self.native = _native_book if verify_checksums else None

    def add_instruments(self, instruments: Iterable[Instrument]) -> None:
        """Symbols from reference data (v1 checksums take precision from the wire, not here)."""
        for ins in instruments:
            if ins.venue_symbol not in self.symbols:
                self.symbols[ins.venue_symbol] = SymbolInfo(
                    ins.symbol, self.iids.get(ins.venue_symbol, 0)
                )

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        if "AssetPairs" in endpoint:
            self.add_instruments(parse_asset_pairs(body))
        return []

    # -- frames ---------------------------------------------------------------------

    def _fail_book(
        self, state: BookState, reason: GapReason, detail: str, ts_recv: int, ts_event: int
    ) -> Gap:
        """A book failure: resubscribe (the C path reports them through this too)."""
        return self.fail(state, reason, detail, ts_recv, "resubscribe", ts_event)

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        msg = decode_json(payload)
        if type(msg) is list:
            name = msg[-2]
            if name[:4] == "book":
                return self._book(msg, name, ts_recv)
            if name == "trade":
                return self._trades(msg, ts_recv)
            if name == "ticker":
                return self._ticker(msg, ts_recv)
            if name == "spread":
                return self._spread(msg, ts_recv)
            return []
        if type(msg) is dict:
            return self._event(msg, ts_recv)
        raise ValueError("frame is neither an event object nor a data array")

    def _event(self, msg: dict[str, Any], ts_recv: int) -> list[Record]:
        event = msg.get("event")
        if not isinstance(event, str):
            raise ValueError("object frame without an 'event'")
        if event == "subscriptionStatus":
            name = str(msg.get("channelName", ""))
            pair = str(msg.get("pair", ""))
            if name.startswith("book") and pair:
                status = msg.get("status")
                if status == "subscribed":
                    self.channels[int(msg["channelID"])] = pair
                    self._state(pair, name)
                elif status == "unsubscribed" and pair in self.books:
                    self.books[pair].invalidate()
        return []

    def _state(self, pair: str, channel_name: str) -> _KState:
        state = self.books.get(pair)
        if state is None:
            _, _, depth = channel_name.partition("-")
            info = self.sym_with(pair, normalize_pair)
            state = _KState(pair, info.symbol, info.iid, int(depth) if depth.isdigit() else 10)
            self.books[pair] = state
        return state

    def _book(self, msg: list[Any], name: str, ts_recv: int) -> list[Record]:
        pair = msg[-1]
        state = self.books.get(pair) or self._state(pair, name)
        body = msg[1]
        if "as" in body or "bs" in body:
            return self._snapshot(state, body, ts_recv)
        if not state.valid:
            return []  # waiting for the snapshot that follows a resync
        asks: list[Level] = []
        bids: list[Level] = []
        last_ts = ""
        checksum = None
        for part in (body,) if len(msg) == 4 else msg[1:-2]:  # one body, or asks + bids
            rows = part.get("a")
            if rows:
                last_ts = _apply_rows(state, state.asks, rows, asks, last_ts)
            rows = part.get("b")
            if rows:
                last_ts = _apply_rows(state, state.bids, rows, bids, last_ts)
            if "c" in part:
                checksum = part["c"]
        ts_event = _ts(last_ts) if last_ts else 0
        if checksum is not None and self.verify_checksums:
            ours = state.checksum()
            if ours != int(checksum):
                gap = self.fail(
                    state, "checksum", f"venue {checksum} != ours {ours}", ts_recv,
                    "resubscribe", ts_event,
                )  # fmt: skip
                return [gap]
            self.stats.checksums_verified += 1
        if state.big:  # a level beyond int64 nanos: the book keeps it, records cannot
            state.big = False
            bids, asks = publishable(bids), publishable(asks)
        book = state.book
        if book.is_crossed():
            return [
                self.fail(state, "crossed", crossed_detail(book), ts_recv, "resubscribe", ts_event)
            ]
        return [
            Book(
                feed=self.feed, venue="kraken", symbol=state.symbol, iid=state.iid,
                ts_event=ts_event, ts_recv=ts_recv, snapshot=False, bids=bids, asks=asks,
            )
        ]  # fmt: skip

    def _snapshot(self, state: _KState, body: dict[str, Any], ts_recv: int) -> list[Record]:
        rows_a, rows_b = body.get("as", []), body.get("bs", [])
        first = (rows_a or rows_b)[0]
        state.set_precision(decimals_of(first[0]), decimals_of(first[1]))
        asks, stamp_a = _snapshot_side(state, rows_a, state.asks.odd)
        bids, stamp_b = _snapshot_side(state, rows_b, state.bids.odd)
        book = state.book
        book.apply_snapshot(bids, asks)
        state.reset_top()
        state.valid = True
        last_ts = max(stamp_a, stamp_b)
        ts_event = _ts(last_ts) if last_ts else 0
        if book.is_crossed():
            return [
                self.fail(state, "crossed", crossed_detail(book), ts_recv, "resubscribe", ts_event)
            ]
        bids_out, asks_out = book.snapshot()
        return [
            Book(
                feed=self.feed, venue="kraken", symbol=state.symbol, iid=state.iid,
                ts_event=ts_event, ts_recv=ts_recv, snapshot=True, bids=publishable(bids_out),
                asks=publishable(asks_out),
            )
        ]  # fmt: skip

    def _trades(self, msg: list[Any], ts_recv: int) -> list[Record]:
        pair = msg[-1]
        info = self.sym_with(pair, normalize_pair)
        return [
            Trade(
                feed=self.feed, venue="kraken", symbol=info.symbol, iid=info.iid,
                ts_event=_ts(row[2]), ts_recv=ts_recv, price=to_fixed(row[0]),
                size=to_fixed(row[1]), side=_SIDE.get(row[3], "unknown"),
            )
            for row in msg[1]
        ]  # fmt: skip

    def _ticker(self, msg: list[Any], ts_recv: int) -> list[Record]:
        """Ticker -> quote: best ask/bid price and their lot volume (a[2], b[2])."""
        pair, body = msg[-1], msg[1]
        info = self.sym_with(pair, normalize_pair)
        ask, bid = body["a"], body["b"]
        return [
            Quote(
                feed=self.feed, venue="kraken", symbol=info.symbol, iid=info.iid,
                ts_recv=ts_recv, bid_px=to_fixed(bid[0]), bid_sz=to_fixed(bid[2]),
                ask_px=to_fixed(ask[0]), ask_sz=to_fixed(ask[2]),
            )
        ]  # fmt: skip

    def _spread(self, msg: list[Any], ts_recv: int) -> list[Record]:
        """Spread row `[bid, ask, timestamp, bidVolume, askVolume]` -> quote."""
        pair, row = msg[-1], msg[1]
        info = self.sym_with(pair, normalize_pair)
        return [
            Quote(
                feed=self.feed, venue="kraken", symbol=info.symbol, iid=info.iid,
                ts_event=_ts(row[2]), ts_recv=ts_recv, bid_px=to_fixed(row[0]),
                bid_sz=to_fixed(row[3]), ask_px=to_fixed(row[1]), ask_sz=to_fixed(row[4]),
            )
        ]  # fmt: skip

    def _on_bad_frame(self, payload: bytes | str, ts_recv: int, exc: Exception) -> list[Record]:
        """A bad book frame means a lost update: that book is wrong until resubscribed."""
        raw = payload.encode("utf-8", "replace") if isinstance(payload, str) else payload
        match = _CHANNEL_ID.match(raw[:32])
        pair = self.channels.get(int(match.group(1))) if match else None
        state = self.books.get(pair) if pair else None
        detail = f"{type(exc).__name__}: {exc}; frame {excerpt(payload)}"
        if state is not None and state.valid:
            return [self.fail(state, "parse", detail[:200], ts_recv, "resubscribe")]
        return [self.gap("parse", "", ts_recv, detail)]
