"""Kalshi event contracts: WebSocket v2 (orderbook_delta, trade, ticker, market_lifecycle_v2)
and REST markets/events. Pure: no I/O.

Event contracts natively (docs/venues/kalshi.md):

* A Kalshi book has two bid ladders, YES bids and NO bids; there are no asks. Buying
  NO at p is selling YES at 1 - p, so **a NO bid at p is a YES ask at 1 - p**. We emit
  one YES-perspective book per market: bids = YES bids, asks = (1 - NO bid price, same
  size). Dollars are exact (cents * 10^7 in fixed-point, or the `*_dollars` strings),
  so 1 - p is exact too. NO is not a separate symbol: its book is the mirror image
  (NO bid = 1 - YES ask) and would only duplicate data.
* Trades are YES-perspective too: price = `yes_price`, side `buy` when the taker
  bought YES, `sell` when the taker bought NO (= sold YES).
* `orderbook_delta` carries a **relative** size change; we keep the book to publish
  absolute sizes. `seq` counts messages per subscription (`sid`): a skipped `seq`
  means a lost delta, so every book of that sid becomes a `gap(sequence)` and a
  resubscribe decision, and deltas are dropped until the new snapshot.
* Two wire generations coexist: legacy integer cents (`yes`, `price`, `delta`,
  `yes_price`, `yes_bid`) and fixed-point strings (`yes_dollars_fp`, `price_dollars`,
  `delta_fp`, `count_fp`, ...). Both are read; the strings win when both are present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ssmd.book.l2 import L2Book
from ssmd.model.fixed import SCALE
from ssmd.model.instrument import Instrument
from ssmd.model.records import (
    InstrumentRecord,
    Level,
    Quote,
    Record,
    Side,
    Status,
    Trade,
)
from ssmd.venues._normalizer import (
    BadFrame,
    NormalizerBase,
    arr,
    cents,
    check_channels,
    check_symbols,
    chunks,
    decode_json,
    dumps,
    fixed,
    integer,
    iso_ns,
    no_snapshot,
    obj,
    text,
    with_query,
)
from ssmd.venues.base import SymbolInfo
from ssmd.venues.registry import VENUES

INFO = VENUES["kalshi"]
VENUE = INFO.venue
MARKET_CHANNELS = ("orderbook_delta", "trade", "ticker", "ticker_v2")
ALL_MARKET_CHANNELS = ("market_lifecycle_v2",)
"""Channels that take no market filter (they stream every market)."""
CHANNEL_ALIASES = {"market_lifecycle": "market_lifecycle_v2"}
"""Registry channel names -> Kalshi's current channel names."""
ONE = SCALE
"""$1.00, the payout of a winning contract, in fixed-point."""
RESYNC_CMD_IDS = 1_000_000
"""Command ids of the frames a normalizer's resyncs carry count up from here, apart from
the runtime's own."""

LIFECYCLE_STATUS = {
    "created": "initialized",
    "activated": "active",
    "deactivated": "inactive",
    "determined": "determined",
    "settled": "finalized",
}
"""market_lifecycle_v2 `event_type` -> the REST market status it moves the market to.
(`close_date_updated`, `price_level_structure_updated`, `metadata_updated` change
reference data, not the state: they become `instrument` records.)"""

REST_STATUS = {"open": "active", "unopened": "initialized", "settled": "finalized"}
"""Older REST/filter spellings -> the lifecycle names used everywhere else."""

__all__ = [
    "INFO",
    "LIFECYCLE_STATUS",
    "KalshiNormalizer",
    "heartbeat",
    "instruments_url",
    "next_page",
    "normalizer",
    "parse_events",
    "parse_instruments",
    "parse_markets",
    "resubscribe",
    "snapshot_url",
    "subscribe",
    "unsubscribe",
]


# -- the venue-module contract (venues/base.py) ------------------------------------------


def _cmd(cmd_id: int, cmd: str, params: dict[str, Any]) -> str:
    return dumps({"id": cmd_id, "cmd": cmd, "params": params})


def subscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    first_id: int = 1,
) -> list[str]:
    """Subscribe commands (`id` counts up from `first_id`). Market-scoped channels go in
    batches of tickers; feed-wide channels (lifecycle) in one command without them.
    `depth`: Kalshi books are full-depth."""
    tickers = check_symbols(venue_symbols, INFO.max_instruments_per_connection, INFO.name)
    known = (*MARKET_CHANNELS, *ALL_MARKET_CHANNELS, *CHANNEL_ALIASES)
    chans = [CHANNEL_ALIASES.get(c, c) for c in check_channels(channels, known, INFO.name)]
    scoped = [c for c in dict.fromkeys(chans) if c not in ALL_MARKET_CHANNELS]
    wide = [c for c in dict.fromkeys(chans) if c in ALL_MARKET_CHANNELS]
    params: list[dict[str, Any]] = []
    if scoped:
        for batch in chunks(tickers, INFO.max_symbols_per_message):
            params.append({"channels": scoped, "market_tickers": batch})
    if wide:
        params.append({"channels": wide})
    return [_cmd(first_id + i, "subscribe", p) for i, p in enumerate(params)]


def unsubscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    *,
    sids: Sequence[int] = (),
    cmd_id: int = 1,
) -> list[str]:
    """Kalshi unsubscribes by server subscription id, not by market: pass `sids` (the
    normalizer's `sids_of(markets)`); its resync decisions carry these frames ready-made.
    ValueError without sids (nothing market-based exists to send)."""
    if not sids:
        raise ValueError("Kalshi unsubscribes by subscription id: pass sids=")
    return [_cmd(cmd_id, "unsubscribe", {"sids": list(sids)})]


def resubscribe(sid: int, market_tickers: Sequence[str], first_id: int = 1) -> list[str]:
    """The resync for a broken subscription: drop it, subscribe its markets again (a
    fresh `orderbook_snapshot` per market, a fresh `seq`)."""
    return [
        *unsubscribe((), market_tickers, sids=[sid], cmd_id=first_id),
        *subscribe(("orderbook_delta",), market_tickers, first_id=first_id + 1),
    ]


def drop_markets(sid: int, market_tickers: Sequence[str], first_id: int = 1) -> list[str]:
    """The resync for one market of a healthy subscription: take it out of the sid
    (`update_subscription` / `delete_markets`), subscribe it alone again."""
    params = {"sids": [sid], "market_tickers": list(market_tickers), "action": "delete_markets"}
    return [
        _cmd(first_id, "update_subscription", params),
        *subscribe(("orderbook_delta",), market_tickers, first_id=first_id + 1),
    ]


def heartbeat() -> None:
    """None: Kalshi pings with WebSocket control frames every 10 s and the client's
    WebSocket library answers with pongs; there is no application-level heartbeat."""
    return None


def instruments_url() -> str:
    """First page of GET /markets (`next_page` follows `cursor`)."""
    return f"{INFO.rest_url}/markets?limit=1000"


def next_page(url: str, body: bytes) -> str | None:
    """The next page of GET /markets: `cursor` from the body, until it is null or empty."""
    cursor = obj(decode_json(body), "body").get("cursor")
    return with_query(url, cursor=cursor) if isinstance(cursor, str) and cursor else None


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return parse_markets(body)


snapshot_url = no_snapshot
"""None: `orderbook_delta` starts with its own `orderbook_snapshot`."""


def normalizer(symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> KalshiNormalizer:
    """A fresh normalizer for one connection."""
    return KalshiNormalizer(symbols, feed)


# -- frames we receive ---------------------------------------------------------------


def _price(msg: dict[str, Any], dollars_key: str, cents_key: str) -> int:
    if dollars_key in msg:
        return fixed(msg[dollars_key])
    if cents_key in msg:
        return cents(msg[cents_key])
    raise BadFrame(f"no {dollars_key} / {cents_key}")


def _size(msg: dict[str, Any], fp_key: str, int_key: str) -> int:
    if fp_key in msg:
        return fixed(msg[fp_key])
    if int_key in msg:
        return fixed(integer(msg[int_key], int_key))
    raise BadFrame(f"no {fp_key} / {int_key}")


def _ladder(msg: dict[str, Any], side: str) -> list[Level]:
    """One side's bid ladder: `<side>_dollars_fp`, `<side>_dollars` or legacy cents."""
    for key, in_cents in ((f"{side}_dollars_fp", False), (f"{side}_dollars", False), (side, True)):
        if key in msg:
            raw = msg[key]
            if raw is None:
                return []
            out: list[Level] = []
            for row in arr(raw, key):
                level = arr(row, key)
                if len(level) < 2:
                    raise BadFrame(f"{key}: level {level!r} has no size")
                px = cents(level[0]) if in_cents else fixed(level[0])
                out.append((px, fixed(level[1])))
            return out
    return []  # an empty side is omitted from the message


def _ts(msg: dict[str, Any]) -> int:
    """`ts_ms` (ms), or `ts` as epoch seconds (trade, ticker) or ISO-8601 (delta)."""
    if "ts_ms" in msg:
        return integer(msg["ts_ms"], "ts_ms") * 1_000_000
    ts = msg.get("ts")
    if isinstance(ts, str):
        return iso_ns(ts)
    if isinstance(ts, int) and not isinstance(ts, bool):
        return ts * 1_000_000_000
    return 0


class KalshiNormalizer(NormalizerBase):
    """One Kalshi connection: YES-perspective books per market, `seq` per `sid`."""

    venue = VENUE

    def __init__(self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> None:
        super().__init__(symbols, feed)
        self.books: dict[str, L2Book] = {}
        self._seq: dict[int, tuple[int, int]] = {}
        """sid -> (last seq, ts_recv of that message)."""
        self._sid_markets: dict[int, set[str]] = {}
        self._market_sid: dict[str, int] = {}
        """Which orderbook subscription carries a market (to build resync frames)."""
        self._cmd_id = RESYNC_CMD_IDS
        self._awaiting: set[str] = set()
        """Markets whose book is invalid until the next snapshot (gap already reported)."""
        self._quotes: dict[str, dict[str, int]] = {}

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        frame = obj(decode_json(payload), "frame")
        kind = frame.get("type")
        if not isinstance(kind, str):
            raise BadFrame("frame without a 'type'")
        if kind in ("subscribed", "ok", "unsubscribed", "error", "event_lifecycle"):
            return []  # control replies; errors stay in the raw journal
        msg = obj(frame.get("msg"), "msg")
        # Parse first (may raise, changes nothing), then check seq, then apply.
        if kind == "orderbook_snapshot":
            market = text(msg.get("market_ticker"), "market_ticker")
            bids = _ladder(msg, "yes")
            asks = [(ONE - px, sz) for px, sz in _ladder(msg, "no")]
            apply = lambda seq: self._snapshot(market, bids, asks, _ts(msg), ts_recv, seq)  # noqa: E731
        elif kind == "orderbook_delta":
            market = text(msg.get("market_ticker"), "market_ticker")
            price = _price(msg, "price_dollars", "price")
            delta = _size(msg, "delta_fp", "delta")
            side = msg.get("side")
            if side not in ("yes", "no"):
                raise BadFrame(f"unknown side {side!r}")
            if not 0 <= price <= ONE:
                raise BadFrame(f"price {price} outside [0, 1] dollars")
            apply = lambda seq: self._delta(market, side, price, delta, _ts(msg), ts_recv, seq)  # noqa: E731
        elif kind == "trade":
            records = self._trade(msg, ts_recv)
            apply = lambda seq: records  # noqa: E731
            market = ""
        elif kind in ("ticker", "ticker_v2"):
            market = text(msg.get("market_ticker"), "market_ticker")
            fields = self._ticker_fields(msg)
            apply = lambda seq: self._ticker(market, fields, _ts(msg), ts_recv, seq)  # noqa: E731
        elif kind in ("market_lifecycle_v2", "market_lifecycle"):
            records = self._lifecycle(msg, ts_recv)
            apply = lambda seq: records  # noqa: E731
            market = ""
        else:
            return []  # channels we do not normalize (fills, positions, ...)
        out: list[Record] = []
        seq = 0
        if "seq" in frame:
            sid = integer(frame.get("sid"), "sid")
            seq = integer(frame["seq"], "seq")
            if market and kind.startswith("orderbook"):
                self._sid_markets.setdefault(sid, set()).add(market)
                self._market_sid[market] = sid
            out += self._check_seq(sid, seq, ts_recv)
        return out + apply(seq)

    # -- sequence ---------------------------------------------------------------------

    def _check_seq(self, sid: int, seq: int, ts_recv: int) -> list[Record]:
        last = self._seq.get(sid)
        self._seq[sid] = (seq, ts_recv)
        if last is None or seq == last[0] + 1:
            return []
        prev, since = last
        markets = sorted(self._sid_markets.get(sid, ()))
        for market in markets:
            self.books.pop(market, None)
            self._quotes.pop(market, None)
            self._awaiting.add(market)
        frames = resubscribe(sid, markets, self._next_ids(2)) if markets else []
        self._sid_markets.pop(sid, None)
        self.resync("resubscribe", markets, f"sid {sid}: seq {prev} -> {seq}", *frames)
        what = "went backwards" if seq <= prev else f"skipped {seq - prev - 1}"
        detail = f"sid {sid} seq {prev} -> {seq} ({what}); books dropped until a new snapshot"
        return [
            self.gap("sequence", m, ts_recv, detail, seq=seq, since_ns=since, count=i == 0)
            for i, m in enumerate(markets or [""])
        ]

    def sids_of(self, markets: Sequence[str]) -> list[int]:
        """The orderbook subscriptions carrying these markets (for `unsubscribe(sids=)`)."""
        return sorted({self._market_sid[m] for m in markets if m in self._market_sid})

    def _next_ids(self, n: int) -> int:
        first, self._cmd_id = self._cmd_id, self._cmd_id + n
        return first

    def _resubscribe_market(self, market: str, why: str) -> None:
        """Queue a resubscribe of one market, with the frames only we can build."""
        sid = self._market_sid.pop(market, None)
        frames: list[str] = []
        if sid is not None:
            self._sid_markets.get(sid, set()).discard(market)
            frames = drop_markets(sid, [market], self._next_ids(2))
        self.resync("resubscribe", [market], why, *frames)

    # -- book -------------------------------------------------------------------------

    def _snapshot(
        self,
        market: str,
        bids: list[Level],
        asks: list[Level],
        ts_event: int,
        ts_recv: int,
        seq: int,
    ) -> list[Record]:
        book = self.books.get(market)
        if book is None:
            book = self.books[market] = L2Book()
        book.apply_snapshot(bids, asks)
        self._awaiting.discard(market)
        bids_out, asks_out = book.snapshot()
        out: list[Record] = [
            self.book_record(market, True, bids_out, asks_out, ts_event, ts_recv, seq)
        ]
        return out + self._check_crossed(market, ts_event, ts_recv, seq)

    def _delta(
        self,
        market: str,
        side: str,
        price: int,
        delta: int,
        ts_event: int,
        ts_recv: int,
        seq: int,
    ) -> list[Record]:
        book = self.books.get(market)
        if book is None:
            if market in self._awaiting:
                return []  # already reported; waiting for the resubscribe's snapshot
            self._awaiting.add(market)
            detail = "orderbook_delta before any snapshot; dropped until a snapshot"
            return [self.gap("resync", market, ts_recv, detail, seq=seq, ts_event=ts_event)]
        book_side, px = ("bid", price) if side == "yes" else ("ask", ONE - price)
        size = book.size_at(book_side, px) + delta
        if size < 0:
            del self.books[market]
            self._awaiting.add(market)
            self._resubscribe_market(market, "delta below zero")
            detail = f"{side} delta {delta} at {price} leaves {size}: a delta was missed"
            return [self.gap("sequence", market, ts_recv, detail, seq=seq, ts_event=ts_event)]
        book.apply(book_side, px, size)  # type: ignore[arg-type]
        level = [(px, size)]
        bids, asks = (level, []) if book_side == "bid" else ([], level)
        out: list[Record] = [self.book_record(market, False, bids, asks, ts_event, ts_recv, seq)]
        return out + self._check_crossed(market, ts_event, ts_recv, seq)

    def _check_crossed(self, market: str, ts_event: int, ts_recv: int, seq: int) -> list[Record]:
        """YES bid >= YES ask means yes_bid + no_bid >= $1: the exchange would have
        matched it, so our book is wrong. Drop it and resubscribe."""
        book = self.books[market]
        if not book.is_crossed():
            return []
        bid, ask = book.best_bid(), book.best_ask()
        del self.books[market]
        self._awaiting.add(market)
        self._resubscribe_market(market, "crossed book")
        detail = f"YES bid {bid} >= YES ask {ask} (= 1 - NO bid); book dropped"
        return [self.gap("crossed", market, ts_recv, detail, seq=seq, ts_event=ts_event)]

    # -- trades, tickers, lifecycle -----------------------------------------------------

    def _trade(self, msg: dict[str, Any], ts_recv: int) -> list[Record]:
        market = text(msg.get("market_ticker"), "market_ticker")
        taker = msg.get("taker_side")
        side: Side = "buy" if taker == "yes" else "sell" if taker == "no" else "unknown"
        return [
            Trade(
                **self.record_fields(market, _ts(msg), ts_recv),
                price=_price(msg, "yes_price_dollars", "yes_price"),
                size=_size(msg, "count_fp", "count"),
                side=side,
                trade_id=str(msg.get("trade_id") or ""),
            )
        ]

    @staticmethod
    def _ticker_fields(msg: dict[str, Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, dollars, cents_key in (
            ("bid_px", "yes_bid_dollars", "yes_bid"),
            ("ask_px", "yes_ask_dollars", "yes_ask"),
        ):
            if dollars in msg or cents_key in msg:
                out[name] = _price(msg, dollars, cents_key)
        for name, key in (("bid_sz", "yes_bid_size_fp"), ("ask_sz", "yes_ask_size_fp")):
            if key in msg:
                out[name] = fixed(msg[key])
        return out

    def _ticker(
        self, market: str, fields: dict[str, int], ts_event: int, ts_recv: int, seq: int
    ) -> list[Record]:
        """ticker_v2 sends only what changed, so the last values are merged per market;
        a quote goes out once both prices are known. Sizes are 0 where Kalshi gives none."""
        state = self._quotes.setdefault(market, {})
        state.update(fields)
        if "bid_px" not in state or "ask_px" not in state:
            return []
        return [
            Quote(
                **self.record_fields(market, ts_event, ts_recv, seq),
                bid_px=state["bid_px"],
                bid_sz=state.get("bid_sz", 0),
                ask_px=state["ask_px"],
                ask_sz=state.get("ask_sz", 0),
            )
        ]

    def _lifecycle(self, msg: dict[str, Any], ts_recv: int) -> list[Record]:
        market = text(msg.get("market_ticker"), "market_ticker")
        event = msg.get("event_type")
        result = str(msg.get("result") or "")
        if msg.get("settlement_value") not in (None, "") and result not in ("yes", "no"):
            result = result or str(msg["settlement_value"])
        if event is None:  # legacy market_lifecycle: infer the state from its timestamps
            if msg.get("settled_ts"):
                event = "settled"
            elif msg.get("determination_ts") or result:
                event = "determined"
            else:
                event = "deactivated" if msg.get("is_deactivated") else "activated"
        if event in ("activated", "deactivated") and "is_deactivated" in msg:
            event = "deactivated" if msg["is_deactivated"] else "activated"
        status = LIFECYCLE_STATUS.get(str(event))
        stamp = msg.get({"settled": "settled_ts", "determined": "determination_ts"}.get(event, ""))
        ts_event = stamp * 1_000_000_000 if isinstance(stamp, int) else 0
        if status is not None:
            return [
                Status(
                    **self.record_fields(market, ts_event, ts_recv),
                    status=status,
                    reason=str(event),
                    result=result,
                )
            ]
        close_ts = msg.get("close_ts")
        return [
            InstrumentRecord(
                **self.record_fields(market, 0, ts_recv),
                kind="binary",
                quote="USD",
                expiry_ns=close_ts * 1_000_000_000 if isinstance(close_ts, int) else 0,
                status=str(event),
            )
        ]


# -- REST reference data -------------------------------------------------------------

_STRUCTURE_TICK = {"linear_cent": SCALE // 100, "deci_cent": SCALE // 1000}
_STRUCTURE_TICK["tapered_deci_cent"] = SCALE // 1000


def _tick(market: dict[str, Any]) -> int:
    """Finest price step: `price_ranges[].step`, else the named price-level structure,
    else legacy integer-cent `tick_size`, else Kalshi's default one-cent grid."""
    ranges = market.get("price_ranges")
    if isinstance(ranges, list) and ranges:
        return min(fixed(obj(r, "price_range").get("step")) for r in ranges)
    structure = market.get("price_level_structure")
    if structure in _STRUCTURE_TICK:
        return _STRUCTURE_TICK[structure]
    if isinstance(market.get("tick_size"), int):
        return cents(market["tick_size"])
    return SCALE // 100


def _instrument(market: dict[str, Any], event: dict[str, Any] | None = None) -> Instrument:
    ticker = text(market.get("ticker"), "ticker")
    status = str(market.get("status") or "")
    close = market.get("close_time")
    extra = {
        key: str(market[key])
        for key in (
            "event_ticker",
            "market_type",
            "title",
            "yes_sub_title",
            "no_sub_title",
            "open_time",
            "expected_expiration_time",
            "latest_expiration_time",
            "notional_value_dollars",
            "settlement_value_dollars",
        )
        if market.get(key) not in (None, "")
    }
    if event:
        for key in ("series_ticker", "title"):
            if event.get(key):
                extra[f"event_{key}"] = str(event[key])
    return Instrument(
        venue=VENUE,
        venue_symbol=ticker,
        symbol=ticker,
        kind="binary",
        quote="USD",
        tick_size=_tick(market),
        lot_size=SCALE // 100 if market.get("fractional_trading_enabled") else SCALE,
        status=REST_STATUS.get(status, status) or "unknown",
        expiry_ns=iso_ns(close) if isinstance(close, str) and close else 0,
        settlement=str(market.get("result") or ""),
        extra=extra,
    )


def parse_markets(body: bytes | str | dict[str, Any]) -> list[Instrument]:
    """`GET /markets` (`{"markets": [...], "cursor"}`) or `GET /markets/{ticker}`.

    Kind `binary` for every market (scalar markets also trade YES/NO contracts at
    $0-$1; `market_type` is kept in `extra`); expiry = `close_time` (trading stops);
    settlement = `result` once determined.
    """
    data = obj(decode_json(body) if isinstance(body, bytes | str) else body, "body")
    rows = data["markets"] if "markets" in data else [data.get("market", data)]
    return [_instrument(obj(m, "market")) for m in arr(rows, "markets")]


def parse_events(body: bytes | str | dict[str, Any]) -> list[Instrument]:
    """`GET /events?with_nested_markets=true` (or `/events/{ticker}`) to the instruments
    of their markets, with the event's series and title kept in `extra`."""
    data = obj(decode_json(body) if isinstance(body, bytes | str) else body, "body")
    if "events" in data:
        events = arr(data["events"], "events")
    else:
        single = obj(data.get("event", data), "event")
        if "markets" in data and "markets" not in single:
            single = {**single, "markets": data["markets"]}
        events = [single]
    out: list[Instrument] = []
    for raw in events:
        event = obj(raw, "event")
        for market in arr(event.get("markets") or [], "markets"):
            out.append(_instrument(obj(market, "market"), event))
    return out
