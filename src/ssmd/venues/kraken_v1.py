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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zlib import crc32

from ssmd.book.checksum import CHECKSUM_LEVELS, decimals_of
from ssmd.book.integrity import BookState, crossed_detail
from ssmd.book.l2 import BookSide
from ssmd.model.fixed import to_fixed
from ssmd.model.instrument import Instrument
from ssmd.model.records import Book, Level, Quote, Record, Side, Trade
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
    decimals = len(text) - text.find(".") - 1 if "." in text else 0
    if decimals <= 9:
        return int(text.replace(".", "", 1)) * _TS_SCALE[decimals]
    whole, _, frac = text.partition(".")
    return int(whole) * 1_000_000_000 + int(frac[:9])


class _KState(BookState):
    """A Kraken book plus what its checksum needs, kept incrementally.

    v1 checksums the wire strings, whose decimals are fixed per pair but are *not*
    AssetPairs' pair_decimals (XBT/CHF: pair_decimals 1, wire '56218.30000'), so the
    precision is learned from the snapshot. Each level's token (digits without '.' and
    leading zeros) is computed once when the level arrives; the CRC of the ask half is
    cached and recomputed only when an update reaches into the top 10.
    """

    __slots__ = ("crc_a", "pdot", "pmul", "qdot", "qmul", "str_b", "tok_a", "tok_b")

    def set_precision(self, price_decimals: int, qty_decimals: int) -> None:
        self.price_decimals, self.qty_decimals = price_decimals, qty_decimals
        self.pdot, self.qdot = -price_decimals - 1, -qty_decimals - 1
        self.pmul = 10 ** (9 - price_decimals) if price_decimals <= 9 else 0
        self.qmul = 10 ** (9 - qty_decimals) if qty_decimals <= 9 else 0
        self.crc_a = -1
        self.str_b = None

    def level(self, price: str, qty: str) -> tuple[int, int, str]:
        """(price, size, checksum token) of a wire level; ValueError if malformed."""
        pdot, qdot = self.pdot, self.qdot
        if (
            len(price) > -pdot
            and len(qty) > -qdot
            and price[pdot] == "."
            and qty[qdot] == "."
            and self.pmul
            and self.qmul
        ):
            pi = int(price.replace(".", "", 1))
            qi = int(qty.replace(".", "", 1))
            if pi > 0 and qi >= 0:
                return pi * self.pmul, qi * self.qmul, f"{pi}{qi}"
        # off-precision string: slower exact path, token per the same rule
        px, sz = parse_fixed(price), parse_fixed(qty)
        tok = price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")
        return px, sz, tok

    def checksum(self, asks_dirty: bool, bids_dirty: bool) -> int:
        book = self.book
        if asks_dirty or self.crc_a < 0:
            ta = self.tok_a
            text = "".join([ta[p] for p in book.top_prices("ask", CHECKSUM_LEVELS)])
            self.crc_a = crc32(text.encode())
        if bids_dirty or self.str_b is None:
            tb = self.tok_b
            text = "".join([tb[p] for p in book.top_prices("bid", CHECKSUM_LEVELS)])
            self.str_b = text.encode()
        return crc32(self.str_b, self.crc_a)


def _apply_rows(
    state: _KState,
    side: BookSide,
    rows: list[list[str]],
    out: list[Level],
    last_ts: str,
    dirty: bool,
    big: bool,
) -> tuple[str, bool, bool]:
    """Apply one side's wire levels in order; note top-10 changes and the newest time."""
    book, level = state.book, state.level
    toks = state.tok_a if side == "ask" else state.tok_b
    for row in rows:
        px, sz, tok = level(row[0], row[1])
        if row[2] > last_ts:
            last_ts = row[2]
        out.append((px, sz))
        if sz:
            toks[px] = tok
        evicted = book.apply(side, px, sz)
        if evicted is not None:
            out.append((evicted, 0))
            del toks[evicted]
        if not dirty:
            dirty = book.within_top(side, px, CHECKSUM_LEVELS)
        if px > INT64_MAX:
            big = True
    return last_ts, dirty, big


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

    def add_instruments(self, instruments: Iterable[Instrument]) -> None:
        """Symbols from reference data (v1 checksums take precision from the wire, not here)."""
        for ins in instruments:
            if ins.venue_symbol not in self.symbols:
                self.symbols[ins.venue_symbol] = SymbolInfo(ins.symbol)

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        if "AssetPairs" in endpoint:
            self.add_instruments(parse_asset_pairs(body))
        return []

    # -- frames ---------------------------------------------------------------------

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
            info = self.sym(pair, normalize_pair(pair))
            state = _KState(pair, info.symbol, info.iid, int(depth) if depth.isdigit() else 10)
            state.tok_a, state.tok_b = {}, {}
            state.set_precision(-1, -1)
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
        dirty_a = dirty_b = big = False
        for body in msg[1:-2]:
            rows = body.get("a")
            if rows:
                last_ts, dirty_a, big = _apply_rows(state, "ask", rows, asks, last_ts, dirty_a, big)
            rows = body.get("b")
            if rows:
                last_ts, dirty_b, big = _apply_rows(state, "bid", rows, bids, last_ts, dirty_b, big)
            if "c" in body:
                checksum = body["c"]
        ts_event = _ts(last_ts) if last_ts else 0
        book = state.book
        if checksum is not None and self.verify_checksums:
            ours = state.checksum(dirty_a, dirty_b)
            if ours != int(checksum):
                gap = self.fail(
                    state, "checksum", f"venue {checksum} != ours {ours}", ts_recv,
                    "resubscribe", ts_event,
                )  # fmt: skip
                return [gap]
            self.stats.checksums_verified += 1
        if big:
            bids, asks = publishable(bids), publishable(asks)
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
        level = state.level
        parsed_a = [level(r[0], r[1]) for r in rows_a]
        parsed_b = [level(r[0], r[1]) for r in rows_b]
        last_ts = max((r[2] for r in rows_a + rows_b), default="")
        book = state.book
        book.apply_snapshot([(p, q) for p, q, _ in parsed_b], [(p, q) for p, q, _ in parsed_a])
        state.tok_a = {p: t for p, q, t in parsed_a if q}
        state.tok_b = {p: t for p, q, t in parsed_b if q}
        state.valid = True
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
        info = self.sym(pair, normalize_pair(pair))
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
        info = self.sym(pair, normalize_pair(pair))
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
        info = self.sym(pair, normalize_pair(pair))
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
