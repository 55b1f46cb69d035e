"""Kraken spot WebSocket v2 (wss://ws.kraken.com/v2).

Wire: JSON objects. Data frames `{"channel", "type": snapshot|update, "data": [...]}`;
book entries `{"symbol", "bids": [{"price", "qty"}], "asks": [...], "checksum",
"timestamp"}` with prices and quantities as JSON *numbers* (decoded here as exact
Decimals, never floats). The checksum rule is v1's, except that price and qty are
written at the pair's `price_precision` / `qty_precision` (from the `instrument`
channel, or REST AssetPairs pair_decimals / lot_decimals), and snapshots carry one too.
Method replies (`subscribe`, `pong`) carry `success`/`result`. Symbols are already
BTC/USD. See docs/venues/kraken.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ssmd.book.checksum import kraken_checksum
from ssmd.book.integrity import BookState, crossed_detail
from ssmd.model.fixed import to_fixed
from ssmd.model.instrument import Instrument
from ssmd.model.records import Book, Gap, GapReason, Level, Quote, Record, Side, Status, Trade
from ssmd.model.time import parse_time
from ssmd.venues import kraken_common as kraken
from ssmd.venues._normalizer import (
    NormalizerBase,
    decode_json,
    no_snapshot,
    parse_fixed,
    publishable,
)
from ssmd.venues.base import SymbolInfo
from ssmd.venues.kraken_common import normalize_pair, parse_asset_pairs
from ssmd.venues.registry import VENUES

INFO = VENUES["kraken-v2"]
CHANNELS = ("book", "trade", "ticker", "instrument")
_SIDE: dict[str, Side] = {"buy": "buy", "sell": "sell"}

__all__ = [
    "INFO",
    "KrakenV2Normalizer",
    "heartbeat",
    "instruments_url",
    "normalizer",
    "parse_instruments",
    "snapshot_url",
    "subscribe",
    "unsubscribe",
]


def _fixed(value: Any) -> int:
    """A v2 number (Decimal from the decoder, int, or string) -> fixed-point, exactly."""
    if isinstance(value, float):
        raise ValueError("binary float reached the parser")
    return to_fixed(value)


def _level(value: Any) -> int:
    """Like `_fixed` but without the int64 check: books keep every level the venue keeps
    (see `publishable`)."""
    if isinstance(value, Decimal) and value.is_finite():
        scaled = value.scaleb(9)
        if scaled == scaled.to_integral_value() and scaled >= 0:
            return int(scaled)
    if isinstance(value, str):
        return parse_fixed(value)
    return _fixed(value)


# -- the venue-module contract (venues/base.py) ------------------------------------------


def _frame(method: str, first_req_id: int) -> Any:
    def build(channel: str, depth: int | None, symbols: list[str], n: int) -> dict[str, Any]:
        params: dict[str, Any] = {"channel": channel, "symbol": symbols}
        if depth is not None:
            params["depth"] = depth
        return {"method": method, "params": params, "req_id": first_req_id + n}

    return build


def subscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    req_id: int = 1,
) -> list[str]:
    """Subscribe frames for v2 symbols ('BTC/USD'), one per channel and batch of
    `max_symbols_per_message`; `req_id` counts up from the given one; book depth 10."""
    return kraken.subscription_frames(
        INFO, CHANNELS, channels, venue_symbols, depth, 10, _frame("subscribe", req_id)
    )


def unsubscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    req_id: int = 1,
) -> list[str]:
    return kraken.subscription_frames(
        INFO, CHANNELS, channels, venue_symbols, depth, 10, _frame("unsubscribe", req_id)
    )


def heartbeat() -> str:
    """Application-level ping; the venue answers `pong`."""
    return '{"method":"ping"}'


def instruments_url() -> str:
    return kraken.instruments_url(INFO)


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return parse_asset_pairs(body)


snapshot_url = no_snapshot
"""None: the book channel sends its own snapshot."""


def normalizer(
    symbols: Mapping[str, SymbolInfo] | None = None, feed: str = ""
) -> KrakenV2Normalizer:
    return KrakenV2Normalizer(symbols, feed)


class KrakenV2Normalizer(NormalizerBase):
    """One v2 connection: books with checksums at pair precision, trades, tickers."""

    venue = "kraken"

    def __init__(
        self,
        symbols: Mapping[str, SymbolInfo] | None = None,
        feed: str = "",
        instruments: Iterable[Instrument] = (),
        depth: int = 10,
        verify_checksums: bool = True,
    ) -> None:
        super().__init__(symbols, feed)
        self.default_depth = depth
        self.verify_checksums = verify_checksums
        self.depths: dict[str, int] = {}
        self.precision: dict[str, tuple[int, int]] = {}
        self.books: dict[str, BookState] = {}
        self.add_instruments(instruments)

    def add_instruments(self, instruments: Iterable[Instrument]) -> None:
        for ins in instruments:
            extra = ins.extra
            if "pair_decimals" in extra and "lot_decimals" in extra:
                name = normalize_pair(ins.venue_symbol).replace("-", "/")
                prec = (int(extra["pair_decimals"]), int(extra["lot_decimals"]))
                self.precision[name] = self.precision[ins.venue_symbol] = prec
            if ins.venue_symbol not in self.symbols:
                self.symbols[ins.venue_symbol] = SymbolInfo(ins.symbol)

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        if "AssetPairs" in endpoint:
            self.add_instruments(parse_asset_pairs(body))
        return []

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        msg = decode_json(payload)
        if type(msg) is not dict:
            raise ValueError("frame is not a JSON object")
        channel = msg.get("channel")
        if channel == "book":
            return [r for entry in msg["data"] for r in self._book(msg["type"], entry, ts_recv)]
        if channel == "trade":
            return [self._trade(t, ts_recv) for t in msg["data"]]
        if channel == "ticker":
            return [self._ticker(t, ts_recv) for t in msg["data"]]
        if channel == "instrument":
            for pair in msg["data"].get("pairs", ()):
                self.precision[pair["symbol"]] = (
                    int(pair["price_precision"]),
                    int(pair["qty_precision"]),
                )
            return []
        if channel == "status":
            return [
                Status(feed=self.feed, venue=self.venue, symbol="", ts_recv=ts_recv,
                       status=str(d.get("system", "")))
                for d in msg["data"] if d.get("system") not in (None, "online")
            ]  # fmt: skip
        if channel in ("heartbeat", "ohlc", "level3", "executions", "balances"):
            return []
        method = msg.get("method")
        if isinstance(method, str):
            return self._method_reply(method, msg)
        raise ValueError("frame has neither a known 'channel' nor a 'method'")

    def _method_reply(self, method: str, msg: dict[str, Any]) -> list[Record]:
        result = msg.get("result") or {}
        if method == "subscribe" and msg.get("success") and result.get("channel") == "book":
            self.depths[str(result.get("symbol"))] = int(result.get("depth", self.default_depth))
        if method == "unsubscribe" and result.get("channel") == "book":
            state = self.books.get(str(result.get("symbol")))
            if state is not None:
                state.invalidate()
        return []

    def _state(self, symbol: str) -> BookState:
        state = self.books.get(symbol)
        if state is None:
            info = self.sym(symbol, normalize_pair(symbol))
            depth = self.depths.get(symbol, self.default_depth)
            state = self.books[symbol] = BookState(symbol, info.symbol, info.iid, depth)
        return state

    def _book(self, kind: str, entry: dict[str, Any], ts_recv: int) -> list[Record]:
        symbol = entry["symbol"]
        state = self._state(symbol)
        bids = [(_level(lv["price"]), _level(lv["qty"])) for lv in entry.get("bids", ())]
        asks = [(_level(lv["price"]), _level(lv["qty"])) for lv in entry.get("asks", ())]
        ts = entry.get("timestamp")
        ts_event = parse_time(ts) if ts else 0
        book = state.book
        snapshot = kind == "snapshot"
        if snapshot:
            book.apply_snapshot(bids, asks)
            state.valid = True
            prec = self.precision.get(symbol) or _infer(entry)
            state.price_decimals, state.qty_decimals = prec
        elif not state.valid:
            if not state.overdue(ts_recv):
                return []
            detail = "no snapshot since the resubscribe; asking again"
            return [self._fail_book(state, "resync", detail, ts_recv, ts_event)]
        else:
            for side, levels in (("bid", bids), ("ask", asks)):
                for px, sz in list(levels):
                    evicted = book.apply(side, px, sz)  # type: ignore[arg-type]
                    if evicted is not None:
                        levels.append((evicted, 0))
        checksum = entry.get("checksum")
        if checksum is not None and self.verify_checksums:
            ours = kraken_checksum(book, state.price_decimals, state.qty_decimals)
            if ours != int(checksum):
                detail = f"venue {checksum} != ours {ours}"
                return [self._fail_book(state, "checksum", detail, ts_recv, ts_event)]
            self.stats.checksums_verified += 1
        if book.is_crossed():
            return [self._fail_book(state, "crossed", crossed_detail(book), ts_recv, ts_event)]
        if snapshot:
            bids, asks = book.snapshot()
        return [self._record(state, ts_recv, ts_event, snapshot, bids, asks)]

    def _fail_book(
        self, state: BookState, reason: GapReason, detail: str, ts_recv: int, ts_event: int
    ) -> Gap:
        """Resubscribe the book channel alone: trades and tickers of the symbol are fine."""
        sym, depth = [state.venue_symbol], state.book.max_depth or self.default_depth
        frames = (*unsubscribe(["book"], sym, depth), *subscribe(["book"], sym, depth))
        return self.fail(state, reason, detail, ts_recv, "resubscribe", ts_event, frames=frames)

    def _record(
        self, state: BookState, ts_recv: int, ts_event: int, snapshot: bool,
        bids: list[Level], asks: list[Level],
    ) -> Book:  # fmt: skip
        return Book(
            feed=self.feed, venue=self.venue, symbol=state.symbol, iid=state.iid,
            ts_event=ts_event, ts_recv=ts_recv, snapshot=snapshot,
            bids=publishable(bids), asks=publishable(asks),
        )  # fmt: skip

    def _trade(self, t: dict[str, Any], ts_recv: int) -> Trade:
        info = self.sym(t["symbol"], normalize_pair(t["symbol"]))
        return Trade(
            feed=self.feed, venue=self.venue, symbol=info.symbol, iid=info.iid,
            ts_event=parse_time(t["timestamp"]), ts_recv=ts_recv, seq=int(t.get("trade_id", 0)),
            price=_fixed(t["price"]), size=_fixed(t["qty"]),
            side=_SIDE.get(t.get("side", ""), "unknown"), trade_id=str(t.get("trade_id", "")),
        )  # fmt: skip

    def _ticker(self, t: dict[str, Any], ts_recv: int) -> Quote:
        info = self.sym(t["symbol"], normalize_pair(t["symbol"]))
        ts = t.get("timestamp")
        return Quote(
            feed=self.feed, venue=self.venue, symbol=info.symbol, iid=info.iid,
            ts_event=parse_time(ts) if ts else 0, ts_recv=ts_recv,
            bid_px=_fixed(t["bid"]), bid_sz=_fixed(t["bid_qty"]),
            ask_px=_fixed(t["ask"]), ask_sz=_fixed(t["ask_qty"]),
        )  # fmt: skip


def _infer(entry: dict[str, Any]) -> tuple[int, int]:
    """Fallback precision (no instrument data): the most decimals seen in the snapshot.
    Trailing zeros are lost on the wire, so this can undershoot: feed instruments."""
    pd = qd = 0
    for lv in (*entry.get("bids", ()), *entry.get("asks", ())):
        pd = max(pd, -Decimal(lv["price"]).as_tuple().exponent)  # type: ignore[operator]
        qd = max(qd, -Decimal(lv["qty"]).as_tuple().exponent)  # type: ignore[operator]
    return pd, qd
