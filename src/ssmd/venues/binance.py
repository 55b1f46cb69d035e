"""Binance spot market streams: diff depth stitched to REST snapshots, bookTicker, trades.

Wire: combined streams wrap each event as `{"stream": "...", "data": {...}}`; raw
streams send the event alone. `depthUpdate` carries `U` (first) and `u` (final update
id) and absolute sizes; the book comes from GET /api/v3/depth (`lastUpdateId`), stitched
per Binance's "How to manage a local order book correctly". `bookTicker` has no `e`
and carries the book's update id `u`. Decimals are strings; times are ms.
See docs/venues/binance.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from ssmd.book.integrity import BookState, crossed_detail
from ssmd.book.sequence import BinanceStitcher
from ssmd.model.fixed import to_fixed
from ssmd.model.instrument import Instrument
from ssmd.model.records import Book, Gap, Level, Quote, Record, Trade
from ssmd.venues._normalizer import NormalizerBase, parse_fixed, publishable
from ssmd.venues.base import SymbolInfo
from ssmd.venues.registry import VENUES

INFO = VENUES["binance"]
MAX_STREAMS_PER_CONNECTION = 1024
"""Binance spot WebSocket Streams: 'A single connection can listen to a maximum of 1024 streams'."""
MAX_BUFFERED_DIFFS = 10_000
"""Diffs kept per symbol while waiting for a snapshot; older ones are dropped."""
CHANNEL_STREAM = {
    "depth": "depth@100ms",
    "bookTicker": "bookTicker",
    "trade": "trade",
    "aggTrade": "aggTrade",
}

_decode = msgspec.json.Decoder()

__all__ = [
    "INFO",
    "BinanceNormalizer",
    "depth_snapshot_path",
    "parse_exchange_info",
    "subscribe",
    "unsubscribe",
]


# -- outbound -------------------------------------------------------------------------


def streams(symbols: Iterable[str], channels: Iterable[str]) -> list[str]:
    """Stream names ('nknusdt@depth@100ms') for venue symbols and ssmd channel names."""
    out = []
    for sym in dict.fromkeys(symbols):
        for ch in channels:
            if ch not in CHANNEL_STREAM:
                raise ValueError(f"unknown Binance channel {ch!r}; known: {sorted(CHANNEL_STREAM)}")
            out.append(f"{sym.lower()}@{CHANNEL_STREAM[ch]}")
    if len(out) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"{len(out)} streams exceed {MAX_STREAMS_PER_CONNECTION} per connection")
    return out


def _method(method: str, names: list[str], first_id: int) -> list[str]:
    per = INFO.max_symbols_per_message
    return [
        msgspec.json.encode(
            {"method": method, "params": names[i : i + per], "id": first_id + i // per}
        ).decode()
        for i in range(0, len(names), per)
    ]


def subscribe(symbols: Iterable[str], channels: Iterable[str], first_id: int = 1) -> list[str]:
    """SUBSCRIBE frames, at most `max_symbols_per_message` streams each.

    Binance also limits incoming messages to 5 per second per connection: the runtime
    paces these frames.
    """
    return _method("SUBSCRIBE", streams(symbols, channels), first_id)


def unsubscribe(symbols: Iterable[str], channels: Iterable[str], first_id: int = 1) -> list[str]:
    return _method("UNSUBSCRIBE", streams(symbols, channels), first_id)


def ping() -> None:
    """No application heartbeat: the server sends WebSocket pings, the runtime pongs."""
    return None


def depth_snapshot_path(symbol: str, limit: int = 1000) -> str:
    """REST path of the depth snapshot the stitcher needs (weight grows with `limit`)."""
    return f"/api/v3/depth?symbol={symbol.upper()}&limit={limit}"


# -- REST reference data --------------------------------------------------------------


def parse_exchange_info(body: bytes | str) -> list[Instrument]:
    """GET /api/v3/exchangeInfo -> instruments (tick: PRICE_FILTER tickSize; lot: LOT_SIZE
    stepSize)."""
    doc = _decode.decode(body)
    out = []
    for sym in doc.get("symbols", ()):
        filters = {f.get("filterType"): f for f in sym.get("filters", ())}
        tick = filters.get("PRICE_FILTER", {}).get("tickSize", "0")
        lot = filters.get("LOT_SIZE", {}).get("stepSize", "0")
        base, quote = sym.get("baseAsset", ""), sym.get("quoteAsset", "")
        status = sym.get("status", "")
        extra = {}
        if "minQty" in filters.get("LOT_SIZE", {}):
            extra["min_qty"] = filters["LOT_SIZE"]["minQty"]
        notional = filters.get("MIN_NOTIONAL") or filters.get("NOTIONAL") or {}
        if "minNotional" in notional:
            extra["min_notional"] = notional["minNotional"]
        out.append(
            Instrument(
                venue="binance",
                venue_symbol=sym["symbol"],
                symbol=f"{base}-{quote}",
                kind="spot",
                base=base,
                quote=quote,
                tick_size=to_fixed(tick),
                lot_size=to_fixed(lot),
                status="open" if status == "TRADING" else status.lower(),
                extra=extra,
            )
        )
    return out


# -- inbound --------------------------------------------------------------------------


class _BState(BookState):
    __slots__ = ("pending", "stitch")


class BinanceNormalizer(NormalizerBase):
    """One connection (any mix of combined or raw streams) plus the depth snapshots."""

    venue = "binance"

    def __init__(
        self,
        symbols: Mapping[str, SymbolInfo] | None = None,
        feed: str = "",
        instruments: Iterable[Instrument] = (),
    ) -> None:
        super().__init__(symbols, feed)
        self.books: dict[str, _BState] = {}
        self.add_instruments(instruments)

    def add_instruments(self, instruments: Iterable[Instrument]) -> None:
        for ins in instruments:
            if ins.venue_symbol not in self.symbols:
                self.symbols[ins.venue_symbol] = SymbolInfo(ins.symbol)

    def _state(self, symbol: str) -> _BState:
        state = self.books.get(symbol)
        if state is None:
            info = self.symbol_info(symbol, symbol)
            state = self.books[symbol] = _BState(symbol, info.symbol, info.iid)
            state.stitch = BinanceStitcher()
            state.pending = deque(maxlen=MAX_BUFFERED_DIFFS)
        return state

    # -- REST -----------------------------------------------------------------------

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        path = urlsplit(endpoint)
        if path.path.endswith("/exchangeInfo"):
            self.add_instruments(parse_exchange_info(body))
            return []
        if path.path.endswith("/depth"):
            symbol = parse_qs(path.query).get("symbol", [""])[0].upper()
            if not symbol:
                raise ValueError(f"depth snapshot without symbol= in {endpoint}")
            return self.on_depth_snapshot(symbol, body, ts_recv)
        return []

    def on_depth_snapshot(self, symbol: str, body: bytes | str, ts_recv: int) -> list[Record]:
        """Seed a book from GET /api/v3/depth, then replay the diffs buffered meanwhile."""
        doc = _decode.decode(body)
        last_id = int(doc["lastUpdateId"])
        bids = [(parse_fixed(p), parse_fixed(q)) for p, q in doc["bids"]]
        asks = [(parse_fixed(p), parse_fixed(q)) for p, q in doc["asks"]]
        state = self._state(symbol)
        state.book.apply_snapshot(bids, asks)
        state.stitch.on_snapshot(last_id)
        state.valid = True
        out: list[Record] = []
        if state.book.is_crossed():
            out.append(self._fail_crossed(state, ts_recv, 0))
            return out
        b, a = state.book.snapshot()
        out.append(self._book(state, ts_recv, 0, last_id, True, b, a))
        pending, state.pending = state.pending, deque(maxlen=MAX_BUFFERED_DIFFS)
        for diff, diff_ts in pending:
            out.extend(self._diff(state, diff, diff_ts))
        return out

    # -- frames ---------------------------------------------------------------------

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        msg = _decode.decode(payload)
        if type(msg) is not dict:
            raise ValueError("frame is not a JSON object")
        data = msg.get("data", msg)
        if type(data) is not dict:
            raise ValueError("'data' is not an object")
        kind = data.get("e")
        if kind == "depthUpdate":
            return self._diff(self._state(data["s"]), data, ts_recv)
        if kind == "trade":
            return [self._trade(data, ts_recv, str(data["t"]))]
        if kind == "aggTrade":
            return [self._trade(data, ts_recv, f"a{data['a']}")]
        if kind is None:
            if "u" in data and "b" in data and "A" in data:
                return [self._quote(data, ts_recv)]
            if "id" in msg and ("result" in msg or "error" in msg):
                return []  # a reply to SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS
            raise ValueError("unrecognized frame (no event type 'e')")
        return []  # klines and other events we do not map

    def _diff(self, state: _BState, data: dict[str, Any], ts_recv: int) -> list[Record]:
        first, final = int(data["U"]), int(data["u"])
        ts_event = int(data.get("E", 0)) * 1_000_000
        verdict = state.stitch.check(first, final)
        if verdict == "wait":
            state.pending.append((data, ts_recv))
            return []
        if verdict == "drop":
            return []
        if verdict == "stale":
            self.stats.sequence_gaps += 1
            return [
                Gap(
                    feed=self.feed, venue="binance", symbol=state.symbol, iid=state.iid,
                    ts_event=ts_event, ts_recv=ts_recv, seq=final, reason="sequence",
                    since_ns=ts_recv, detail=f"stale/duplicate diff U={first} u={final} "
                    f"at update id {state.stitch.last_update_id}: ignored, book unaffected",
                )
            ]  # fmt: skip
        if verdict == "gap":
            expected = (state.stitch.last_update_id or 0) + 1
            state.stitch.reset()
            state.pending.append((data, ts_recv))
            return [
                self.fail(
                    state, "sequence", f"expected U={expected}, got U={first} u={final}",
                    ts_recv, "refetch_snapshot", ts_event,
                )
            ]  # fmt: skip
        bids = [(parse_fixed(p), parse_fixed(q)) for p, q in data["b"]]
        asks = [(parse_fixed(p), parse_fixed(q)) for p, q in data["a"]]
        apply = state.book.apply
        for px, sz in bids:
            apply("bid", px, sz)
        for px, sz in asks:
            apply("ask", px, sz)
        if state.book.is_crossed():
            return [self._fail_crossed(state, ts_recv, ts_event)]
        return [self._book(state, ts_recv, ts_event, final, False, bids, asks)]

    def _fail_crossed(self, state: _BState, ts_recv: int, ts_event: int) -> Record:
        detail = crossed_detail(state.book)
        state.stitch.reset()
        return self.fail(state, "crossed", detail, ts_recv, "refetch_snapshot", ts_event)

    def _book(
        self,
        state: _BState,
        ts_recv: int,
        ts_event: int,
        seq: int,
        snapshot: bool,
        bids: list[Level],
        asks: list[Level],
    ) -> Book:
        return Book(
            feed=self.feed, venue="binance", symbol=state.symbol, iid=state.iid,
            ts_event=ts_event, ts_recv=ts_recv, seq=seq, snapshot=snapshot,
            bids=publishable(bids), asks=publishable(asks),
        )  # fmt: skip

    def _trade(self, data: dict[str, Any], ts_recv: int, trade_id: str) -> Trade:
        """`m` true = the buyer was the maker, so the aggressor sold."""
        info = self.symbol_info(data["s"], data["s"])
        return Trade(
            feed=self.feed, venue="binance", symbol=info.symbol, iid=info.iid,
            ts_event=int(data["T"]) * 1_000_000, ts_recv=ts_recv, price=to_fixed(data["p"]),
            size=to_fixed(data["q"]), side="sell" if data["m"] else "buy", trade_id=trade_id,
        )  # fmt: skip

    def _quote(self, data: dict[str, Any], ts_recv: int) -> Quote:
        info = self.symbol_info(data["s"], data["s"])
        return Quote(
            feed=self.feed, venue="binance", symbol=info.symbol, iid=info.iid,
            ts_event=int(data.get("E", data.get("T", 0))) * 1_000_000, ts_recv=ts_recv,
            seq=int(data["u"]), bid_px=to_fixed(data["b"]), bid_sz=to_fixed(data["B"]),
            ask_px=to_fixed(data["a"]), ask_sz=to_fixed(data["A"]),
        )  # fmt: skip


Normalizer = BinanceNormalizer
