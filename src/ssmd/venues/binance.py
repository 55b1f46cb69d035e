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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ssmd.book.integrity import BookState, crossed_detail
from ssmd.book.sequence import BinanceStitcher
from ssmd.model.fixed import to_fixed
from ssmd.model.instrument import Instrument
from ssmd.model.records import Book, Level, Quote, Record, Trade
from ssmd.venues._normalizer import (
    NormalizerBase,
    check_channels,
    check_symbols,
    chunks,
    decode_json,
    dumps,
    parse_fixed,
    publishable,
)
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

SNAPSHOT_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
"""`limit` values GET /api/v3/depth accepts (weight grows with it)."""

__all__ = [
    "INFO",
    "BinanceNormalizer",
    "heartbeat",
    "instruments_url",
    "normalizer",
    "parse_exchange_info",
    "parse_instruments",
    "snapshot_url",
    "subscribe",
    "unsubscribe",
]


# -- the venue-module contract (venues/base.py) ------------------------------------------


def streams(channels: Sequence[str], venue_symbols: Sequence[str]) -> list[str]:
    """Stream names ('nknusdt@depth@100ms') for ssmd channel names and venue symbols."""
    syms = check_symbols(venue_symbols, INFO.max_instruments_per_connection, INFO.name)
    chans = check_channels(channels, tuple(CHANNEL_STREAM), INFO.name)
    out = [f"{sym.lower()}@{CHANNEL_STREAM[ch]}" for sym in syms for ch in chans]
    if len(out) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"{len(out)} streams exceed {MAX_STREAMS_PER_CONNECTION} per connection")
    return out


def _method(method: str, names: list[str], first_id: int) -> list[str]:
    return [
        dumps({"method": method, "params": batch, "id": first_id + i})
        for i, batch in enumerate(chunks(names, INFO.max_symbols_per_message))
    ]


def subscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    first_id: int = 1,
) -> list[str]:
    """SUBSCRIBE frames, at most `max_symbols_per_message` streams each. `depth` does not
    apply to the diff stream (it is the snapshot's, see `snapshot_url`).

    Binance also limits incoming messages to 5 per second per connection: the runtime
    paces these frames.
    """
    return _method("SUBSCRIBE", streams(channels, venue_symbols), first_id)


def unsubscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    first_id: int = 1,
) -> list[str]:
    return _method("UNSUBSCRIBE", streams(channels, venue_symbols), first_id)


def heartbeat() -> None:
    """No application heartbeat: the server sends WebSocket pings, the runtime pongs."""
    return None


def snapshot_url(venue_symbol: str, depth: int | None = None) -> str:
    """GET /api/v3/depth for one symbol: fetched when a `refetch_snapshot` resync asks.

    The normalizer asks on a symbol's first diff (Binance: buffer the stream, *then*
    fetch the snapshot) and after a broken `U`/`u` chain; the body goes to `on_rest`.
    """
    limit = depth or 1000
    if limit not in SNAPSHOT_LIMITS:
        raise ValueError(f"depth snapshot limit must be one of {SNAPSHOT_LIMITS}, not {limit}")
    return f"{INFO.rest_url}/depth?symbol={venue_symbol.upper()}&limit={limit}"


def instruments_url() -> str:
    return f"{INFO.rest_url}/exchangeInfo"


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return parse_exchange_info(body)


def normalizer(
    symbols: Mapping[str, SymbolInfo] | None = None, feed: str = ""
) -> BinanceNormalizer:
    return BinanceNormalizer(symbols, feed)


# -- REST reference data --------------------------------------------------------------


def parse_exchange_info(body: bytes | str) -> list[Instrument]:
    """GET /api/v3/exchangeInfo -> instruments (tick: PRICE_FILTER tickSize; lot: LOT_SIZE
    stepSize)."""
    doc = decode_json(body)
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
    """A book plus its stitcher, the diffs buffered until a snapshot, and whether a
    snapshot has been asked for since the last one arrived (one request at a time)."""

    __slots__ = ("asked", "pending", "stitch")


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
                self.symbols[ins.venue_symbol] = SymbolInfo(
                    ins.symbol, self.iids.get(ins.venue_symbol, 0)
                )

    def _state(self, symbol: str) -> _BState:
        state = self.books.get(symbol)
        if state is None:
            info = self.sym(symbol, symbol)
            state = self.books[symbol] = _BState(symbol, info.symbol, info.iid)
            state.stitch = BinanceStitcher()
            state.pending = deque(maxlen=MAX_BUFFERED_DIFFS)
            state.asked = False
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
        doc = decode_json(body)
        last_id = int(doc["lastUpdateId"])
        bids = [(parse_fixed(p), parse_fixed(q)) for p, q in doc["bids"]]
        asks = [(parse_fixed(p), parse_fixed(q)) for p, q in doc["asks"]]
        state = self._state(symbol)
        state.book.apply_snapshot(bids, asks)
        state.stitch.on_snapshot(last_id)
        state.valid = True
        state.asked = False
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
        msg = decode_json(payload)
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
            if not state.asked:
                state.asked = True
                self.resync("refetch_snapshot", (state.venue_symbol,), "no depth snapshot yet")
            state.pending.append((data, ts_recv))
            return []
        if verdict == "drop":
            return []
        if verdict == "stale":
            detail = (
                f"stale/duplicate diff U={first} u={final} at update id "
                f"{state.stitch.last_update_id}: ignored, book unaffected"
            )
            info = SymbolInfo(state.symbol, state.iid)
            return [self.gap("sequence", info, ts_recv, detail, seq=final, ts_event=ts_event)]
        if verdict == "gap":
            expected = (state.stitch.last_update_id or 0) + 1
            state.stitch.reset()
            state.asked = True
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
        state.asked = True
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
        info = self.sym(data["s"], data["s"])
        return Trade(
            feed=self.feed, venue="binance", symbol=info.symbol, iid=info.iid,
            ts_event=int(data["T"]) * 1_000_000, ts_recv=ts_recv, price=to_fixed(data["p"]),
            size=to_fixed(data["q"]), side="sell" if data["m"] else "buy", trade_id=trade_id,
        )  # fmt: skip

    def _quote(self, data: dict[str, Any], ts_recv: int) -> Quote:
        info = self.sym(data["s"], data["s"])
        return Quote(
            feed=self.feed, venue="binance", symbol=info.symbol, iid=info.iid,
            ts_event=int(data.get("E", data.get("T", 0))) * 1_000_000, ts_recv=ts_recv,
            seq=int(data["u"]), bid_px=to_fixed(data["b"]), bid_sz=to_fixed(data["B"]),
            ask_px=to_fixed(data["a"]), ask_sz=to_fixed(data["A"]),
        )  # fmt: skip
