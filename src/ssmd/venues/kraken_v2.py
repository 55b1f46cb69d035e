"""Kraken spot WebSocket v2 (wss://ws.kraken.com/v2).

Wire: JSON objects. Data frames `{"channel", "type": snapshot|update, "data": [...]}`;
book entries `{"symbol", "bids": [{"price", "qty"}], "asks": [...], "checksum",
"timestamp"}` with prices and quantities as JSON *numbers*: the decoder hands us their
literal digits (`_Num`), turned into fixed-point by integer arithmetic, never a float.
The checksum rule is v1's, except that price and qty are written at the pair's
`price_precision` / `qty_precision` (from the `instrument` channel, or REST AssetPairs
pair_decimals / lot_decimals), and snapshots carry one too.
Method replies (`subscribe`, `pong`) carry `success`/`result`. Symbols are already
BTC/USD. See docs/venues/kraken.md.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from zlib import crc32

import msgspec

from ssmd.book.checksum import CHECKSUM_LEVELS, scaler
from ssmd.book.integrity import BookState, crossed_detail
from ssmd.book.l2 import BookSide
from ssmd.model.fixed import SCALE, to_fixed
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

try:  # the whole-frame C path for book updates (setup.py); optional, same results
    from ssmd._native import v2_frame as _native_frame
except ImportError:  # pragma: no cover - built by every install with a C compiler
    _native_frame = None

NATIVE = _native_frame is not None
"""Whether book updates, trades and tickers take the C path (`ssmd venue list` says)."""

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


class _Num(str):
    """The literal text of a JSON number with a fraction or exponent (the decoder's
    float_hook): exact like a Decimal, a tenth of the cost, and told apart from a JSON
    string."""

    __slots__ = ()


_decoder = msgspec.json.Decoder(float_hook=_Num)
_PAD = tuple(10 ** (9 - n) for n in range(10))


def _fixed(value: Any) -> int:
    """A v2 number (`_Num`, int, or string) -> fixed-point, exactly (`to_fixed` parses
    the digits; anything but a plain decimal goes through Decimal there)."""
    if isinstance(value, float):
        raise ValueError("binary float reached the parser")
    return to_fixed(value)


def _level(value: Any) -> int:
    """Like `_fixed` but without the int64 check: books keep every level the venue keeps
    (see `publishable`). Plain 'digits.digits' numbers take the integer fast path; any
    other number is the exact Decimal of its text."""
    if type(value) is _Num:
        whole, _, frac = value.partition(".")
        if len(frac) <= 9 and whole.isdigit() and frac.isdigit():
            return int(whole) * SCALE + int(frac) * _PAD[len(frac)]
        value = Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        scaled = value.scaleb(9)
        if scaled == scaled.to_integral_value() and scaled >= 0:
            return int(scaled)
    if isinstance(value, str):
        return parse_fixed(value)
    return _fixed(value)


_seconds: dict[str, int] = {}


def _ts(text: str) -> int:
    """`parse_time` of a v2 timestamp; the shape Kraken sends ('…T22:13:20.123456Z')
    costs a slice and an int, its whole seconds cached (a feed repeats the same second)."""
    if len(text) == 27 and text[19] == "." and text[26] == "Z" and text[20:26].isdigit():
        frac = int(text[20:26]) * 1000
        base = _seconds.get(text[:19])
        if base is None:
            if len(_seconds) > 4096:
                _seconds.clear()
            base = _seconds[text[:19]] = parse_time(text) - frac
        return base + frac
    return parse_time(text)


class _V2Book(BookState):
    """A v2 book plus each level's checksum token (price and qty at the pair's precision,
    digits only), kept as levels change: a checksum joins the top 10 tokens per side
    instead of formatting 40 numbers. Tokens are keyed like the book's sorted keys
    (bids negated), so the top 10 are `keys[:10]`. An update mostly moves one side, so
    the other side's part of the CRC is reused."""

    __slots__ = ("ask_tokens", "bid_part", "bid_tokens", "crc_a", "native", "scale", "sides")

    def __init__(self, venue_symbol: str, symbol: str, iid: int = 0, max_depth: int = 0) -> None:
        super().__init__(venue_symbol, symbol, iid, max_depth)
        self.ask_tokens: dict[int, str] = {}
        self.bid_tokens: dict[int, str] = {}
        self.sides = {
            "ask": (*self.book.side_index("ask"), self.ask_tokens, 1),
            "bid": (*self.book.side_index("bid"), self.bid_tokens, -1),
        }
        """Per side: the book's live level map and sorted keys, the tokens, the key sign."""
        self.scale = (1, 1, 1, 1)
        self.crc_a = -1
        """CRC32 of the asks' top 10 tokens; -1 once the asks changed."""
        self.bid_part: bytes | None = None
        """The bids' top 10 tokens, encoded; None once the bids changed."""
        self.native: tuple[Any, ...] | None = None
        """What the C path (`ssmd._native.v2_frame`) works on: per side (asks, bids) the
        level map, sorted keys and tokens, then the price and qty divisors and the depth;
        None until a precision of at most 9 decimals is known (then updates stay here)."""

    def set_precision(self, price_decimals: int, qty_decimals: int) -> None:
        """The pair's checksum precision; every level's token is rebuilt (after a snapshot)."""
        self.price_decimals, self.qty_decimals = price_decimals, qty_decimals
        self.scale = pdiv, pmul, qdiv, qmul = (*scaler(price_decimals), *scaler(qty_decimals))
        self.crc_a, self.bid_part = -1, None
        ask, bid = self.sides["ask"], self.sides["bid"]
        fits = pmul == qmul == 1
        self.native = (*ask[:3], *bid[:3], pdiv, qdiv, self.book.max_depth) if fits else None
        for levels, _, tokens, sign in self.sides.values():
            tokens.clear()
            for px, sz in levels.items():
                tokens[sign * px] = f"{px // pdiv * pmul}{sz // qdiv * qmul}"

    def invalidate(self, ts_recv: int = 0) -> None:
        super().invalidate(ts_recv)
        self.ask_tokens.clear()
        self.bid_tokens.clear()
        self.crc_a, self.bid_part = -1, None

    def apply(self, side: BookSide, rows: list[Level]) -> None:
        """`L2Book.apply` for each level, in order, keeping its token; the levels pushed
        out of the depth window are appended to `rows` as deletes (the venue sends none)."""
        levels, keys, tokens, sign = self.sides[side]
        if sign > 0:
            self.crc_a = -1
        else:
            self.bid_part = None
        depth = self.book.max_depth
        pdiv, pmul, qdiv, qmul = self.scale
        evicted = []
        for px, sz in rows:
            key = sign * px
            if not sz:
                if levels.pop(px, None) is not None:
                    del keys[bisect_left(keys, key)]
                    tokens.pop(key, None)
                continue
            tokens[key] = f"{px // pdiv * pmul}{sz // qdiv * qmul}"
            if px in levels:
                levels[px] = sz
                continue
            levels[px] = sz
            insort(keys, key)
            if depth and len(keys) > depth:
                worst = keys.pop()
                del levels[sign * worst]
                tokens.pop(worst, None)
                evicted.append((sign * worst, 0))
        rows.extend(evicted)

    def checksum(self) -> int:
        """Kraken's CRC32 of the top 10 asks then bids (`kraken_checksum`, from tokens)."""
        crc_a = self.crc_a
        if crc_a < 0:
            _, keys, tokens, _ = self.sides["ask"]
            text = "".join(map(tokens.__getitem__, keys[:CHECKSUM_LEVELS]))
            crc_a = self.crc_a = crc32(text.encode())
        part = self.bid_part
        if part is None:
            _, keys, tokens, _ = self.sides["bid"]
            text = "".join(map(tokens.__getitem__, keys[:CHECKSUM_LEVELS]))
            part = self.bid_part = text.encode()
        return crc32(part, crc_a)


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
        self.books: dict[str, _V2Book] = {}
        self.add_instruments(instruments)
        self.native = _native_frame if verify_checksums else None
        self.native_ctx = (*self.native_ctx[:5], _ts, *self.native_ctx[6:])
        """As the base's, with the time parser the C path asks once per new second."""

    def add_instruments(self, instruments: Iterable[Instrument]) -> None:
        for ins in instruments:
            extra = ins.extra
            if "pair_decimals" in extra and "lot_decimals" in extra:
                name = normalize_pair(ins.venue_symbol).replace("-", "/")
                prec = (int(extra["pair_decimals"]), int(extra["lot_decimals"]))
                self.precision[name] = self.precision[ins.venue_symbol] = prec
            if ins.venue_symbol not in self.symbols:
                self.symbols[ins.venue_symbol] = SymbolInfo(
                    ins.symbol, self.iids.get(ins.venue_symbol, 0)
                )

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        if "AssetPairs" in endpoint:
            self.add_instruments(parse_asset_pairs(body))
        return []

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        msg = decode_json(payload, _decoder)
        if type(msg) is not dict:
            raise ValueError("frame is not a JSON object")
        channel = msg.get("channel")
        if channel == "book":
            data = msg["data"]
            if type(data) is list and len(data) == 1:  # the usual frame: one symbol's update
                return self._book(msg["type"], data[0], ts_recv)
            return [r for entry in data for r in self._book(msg["type"], entry, ts_recv)]
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

    def _state(self, symbol: str) -> _V2Book:
        state = self.books.get(symbol)
        if state is None:
            info = self.sym(symbol, normalize_pair(symbol))
            depth = self.depths.get(symbol, self.default_depth)
            state = self.books[symbol] = _V2Book(symbol, info.symbol, info.iid, depth)
        return state

    def _book(self, kind: str, entry: dict[str, Any], ts_recv: int) -> list[Record]:
        symbol = entry["symbol"]
        state = self.books.get(symbol) or self._state(symbol)
        bids = [(_level(lv["price"]), _level(lv["qty"])) for lv in entry.get("bids", ())]
        asks = [(_level(lv["price"]), _level(lv["qty"])) for lv in entry.get("asks", ())]
        ts = entry.get("timestamp")
        ts_event = _ts(ts) if ts else 0
        book = state.book
        snapshot = kind == "snapshot"
        if snapshot:
            book.apply_snapshot(bids, asks)
            state.valid = True
            state.set_precision(*(self.precision.get(symbol) or _infer(entry)))
        elif not state.valid:
            if not state.overdue(ts_recv):
                return []
            detail = "no snapshot since the resubscribe; asking again"
            return [self._fail_book(state, "resync", detail, ts_recv, ts_event)]
        else:
            if bids:
                state.apply("bid", bids)
            if asks:
                state.apply("ask", asks)
        checksum = entry.get("checksum")
        if checksum is not None and self.verify_checksums:
            ours = state.checksum()
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
        info = self.sym_with(t["symbol"], normalize_pair)
        return Trade(
            feed=self.feed, venue=self.venue, symbol=info.symbol, iid=info.iid,
            ts_event=_ts(t["timestamp"]), ts_recv=ts_recv, seq=int(t.get("trade_id", 0)),
            price=_fixed(t["price"]), size=_fixed(t["qty"]),
            side=_SIDE.get(t.get("side", ""), "unknown"), trade_id=str(t.get("trade_id", "")),
        )  # fmt: skip

    def _ticker(self, t: dict[str, Any], ts_recv: int) -> Quote:
        info = self.sym_with(t["symbol"], normalize_pair)
        ts = t.get("timestamp")
        return Quote(
            feed=self.feed, venue=self.venue, symbol=info.symbol, iid=info.iid,
            ts_event=_ts(ts) if ts else 0, ts_recv=ts_recv,
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
