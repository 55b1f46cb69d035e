"""Coinbase Exchange (ex-Pro) WebSocket feed: level2, ticker, matches; REST /products.

The fixture recording COINBASE.ws.28.0 speaks this protocol (then at
ws-feed.pro.coinbase.com). Wire facts this module relies on (docs/venues/coinbase.md):

* `level2` / `level2_batch`: one `snapshot` per product (`bids`/`asks` as
  `[price, size]`), then `l2update` with `changes: [[side, price, size]]`, absolute
  sizes, side `buy`/`sell`. **No sequence number**: a lost update is undetectable
  here, so the only integrity check is the crossed-book check.
* `matches`: `match` (and one `last_match` on subscribe) with `trade_id`, `sequence`,
  and `side` = the **maker** order's side; the aggressor is the other side.
  `trade_id` is contiguous per product, so a skipped id is a lost trade.
* `ticker`: `sequence`, `best_bid`/`best_ask` (sizes only on newer feeds), `time`.
  `sequence` is the product's full-channel sequence: ticker and matches see a
  subset, so forward jumps are normal and only a step backwards is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ssmd.model.instrument import Instrument
from ssmd.model.records import Level, Quote, Record, Side, Trade
from ssmd.venues._coinbase_common import CoinbaseBooks
from ssmd.venues._normalizer import (
    BadFrame,
    NormalizerBase,
    arr,
    check_channels,
    check_symbols,
    chunks,
    decode_json,
    dumps,
    fixed,
    instrument_records,
    integer,
    iso_ns,
    no_snapshot,
    obj,
    text,
)
from ssmd.venues.base import SymbolInfo
from ssmd.venues.registry import VENUES

INFO = VENUES["coinbase-exchange"]
VENUE = INFO.venue
CHANNELS = ("level2", "level2_batch", "ticker", "matches", "heartbeat")
"""What `subscribe` takes: the registry's channels, the unauthenticated `level2_batch`,
and `heartbeat` (the venue's liveness channel: it has no client ping)."""

_AGGRESSOR: dict[str, Side] = {"buy": "sell", "sell": "buy"}
"""A match's `side` is the maker's; the taker (aggressor) did the opposite."""

__all__ = [
    "INFO",
    "CoinbaseExchangeNormalizer",
    "heartbeat",
    "instruments_url",
    "normalizer",
    "parse_instruments",
    "parse_products",
    "snapshot_url",
    "subscribe",
    "unsubscribe",
]


# -- the venue-module contract (venues/base.py) ------------------------------------------


def _control(kind: str, channels: Sequence[str], product_ids: Sequence[str]) -> list[str]:
    products = check_symbols(product_ids, INFO.max_instruments_per_connection, INFO.name)
    chans = check_channels(channels, CHANNELS, INFO.name)
    return [
        dumps({"type": kind, "product_ids": batch, "channels": chans})
        for batch in chunks(products, INFO.max_symbols_per_message)
    ]


def subscribe(
    channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None
) -> list[str]:
    """Subscribe frames (one per batch of products, all channels in each). Authentication
    fields, where a channel needs them (`level2` since 2023; `level2_batch` does not), are
    added by the runtime, which owns the credentials. `depth`: the feed is full-depth."""
    return _control("subscribe", channels, venue_symbols)


def unsubscribe(
    channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None
) -> list[str]:
    return _control("unsubscribe", channels, venue_symbols)


def heartbeat() -> None:
    """None: Coinbase Exchange has no client ping; liveness comes from subscribing to the
    `heartbeat` channel (one server message per product per second)."""
    return None


def instruments_url() -> str:
    return f"{INFO.rest_url}/products"


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return parse_products(body)


snapshot_url = no_snapshot
"""None: `level2` starts with its own snapshot."""


def normalizer(
    symbols: Mapping[str, SymbolInfo] | None = None, feed: str = ""
) -> CoinbaseExchangeNormalizer:
    """A fresh normalizer for one connection."""
    return CoinbaseExchangeNormalizer(symbols, feed)


# -- frames we receive ---------------------------------------------------------------


def _levels(raw: object, what: str) -> list[Level]:
    out: list[Level] = []
    for level in arr(raw, what):
        row = arr(level, what)
        if len(row) < 2:
            raise BadFrame(f"{what}: level {row!r} has no size")
        out.append((fixed(row[0]), fixed(row[1])))
    return out


class CoinbaseExchangeNormalizer(NormalizerBase):
    """One Coinbase Exchange connection: books per product, trade-id and sequence checks."""

    venue = VENUE

    def __init__(self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> None:
        super().__init__(symbols, feed)
        self.books = CoinbaseBooks(self)
        self._last_seq: dict[tuple[str, str], int] = {}
        self._last_trade: dict[str, int] = {}

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        msg = obj(decode_json(payload), "frame")
        kind = msg.get("type")
        if kind == "l2update":
            return self._l2update(msg, ts_recv)
        if kind in ("match", "last_match"):
            return self._match(msg, ts_recv)
        if kind == "ticker":
            return self._ticker(msg, ts_recv)
        if kind == "snapshot":
            product = text(msg.get("product_id"), "product_id")
            bids = _levels(msg.get("bids"), "bids")
            asks = _levels(msg.get("asks"), "asks")
            ts_event = iso_ns(msg["time"]) if "time" in msg else 0
            return self.books.snapshot(product, bids, asks, ts_event, ts_recv)
        if kind == "heartbeat":
            product = text(msg.get("product_id"), "product_id")
            seq = integer(msg.get("sequence"), "sequence")
            return self._sequence("heartbeat", product, seq, ts_recv)
        if isinstance(kind, str):
            return []  # subscriptions, error, status, ...: "clients ignore unsupported types"
        raise BadFrame("frame without a 'type'")

    def _l2update(self, msg: dict[str, Any], ts_recv: int) -> list[Record]:
        product = text(msg.get("product_id"), "product_id")
        ts_event = iso_ns(msg.get("time"))
        bids: list[Level] = []
        asks: list[Level] = []
        for change in arr(msg.get("changes"), "changes"):
            row = arr(change, "change")
            if len(row) < 3:
                raise BadFrame(f"change {row!r} is not [side, price, size]")
            side = row[0]
            level = (fixed(row[1]), fixed(row[2]))
            if side == "buy":
                bids.append(level)
            elif side == "sell":
                asks.append(level)
            else:
                raise BadFrame(f"unknown side {side!r}")
        return self.books.update(product, bids, asks, ts_event, ts_recv)

    def _sequence(self, channel: str, product: str, seq: int, ts_recv: int) -> list[Record]:
        """Per product and channel the sequence only moves forward (see module doc)."""
        key = (channel, product)
        last = self._last_seq.get(key)
        if last is not None and seq <= last:
            detail = f"{channel} sequence {seq} after {last}: duplicate or out of order, dropped"
            return [self.gap("sequence", product, ts_recv, detail, seq=seq)]
        self._last_seq[key] = seq
        return []

    def _match(self, msg: dict[str, Any], ts_recv: int) -> list[Record]:
        product = text(msg.get("product_id"), "product_id")
        seq = integer(msg.get("sequence"), "sequence")
        trade_id = integer(msg.get("trade_id"), "trade_id")
        maker = msg.get("side")
        if maker not in _AGGRESSOR:
            raise BadFrame(f"unknown side {maker!r}")
        price, size = fixed(msg.get("price")), fixed(msg.get("size"))
        ts_event = iso_ns(msg.get("time"))
        out: list[Record] = []
        last_id = self._last_trade.get(product)
        if last_id is not None and trade_id <= last_id:
            detail = f"trade_id {trade_id} after {last_id}: duplicate or out of order, dropped"
            return [self.gap("sequence", product, ts_recv, detail, seq=seq, ts_event=ts_event)]
        stale = self._sequence("matches", product, seq, ts_recv)
        if stale:
            return stale
        if last_id is not None and trade_id != last_id + 1:
            missing = trade_id - last_id - 1
            out.append(
                self.gap(
                    "sequence",
                    product,
                    ts_recv,
                    f"trade_id jumped {last_id} -> {trade_id}: {missing} trade(s) missed",
                    seq=seq,
                    ts_event=ts_event,
                )
            )
        self._last_trade[product] = trade_id
        out.append(
            Trade(
                **self.record_fields(product, ts_event, ts_recv, seq),
                price=price,
                size=size,
                side=_AGGRESSOR[maker],
                trade_id=str(trade_id),
            )
        )
        return out

    def _ticker(self, msg: dict[str, Any], ts_recv: int) -> list[Record]:
        product = text(msg.get("product_id"), "product_id")
        seq = integer(msg.get("sequence"), "sequence")
        bid_px, ask_px = fixed(msg.get("best_bid")), fixed(msg.get("best_ask"))
        bid_sz = fixed(msg["best_bid_size"]) if "best_bid_size" in msg else 0
        ask_sz = fixed(msg["best_ask_size"]) if "best_ask_size" in msg else 0
        ts_event = iso_ns(msg["time"]) if "time" in msg else 0
        stale = self._sequence("ticker", product, seq, ts_recv)
        if stale:
            return stale
        return [
            Quote(
                **self.record_fields(product, ts_event, ts_recv, seq),
                bid_px=bid_px,
                bid_sz=bid_sz,
                ask_px=ask_px,
                ask_sz=ask_sz,
            )
        ]

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        """`GET /products` becomes instrument records; other endpoints feed nothing."""
        if not endpoint.split("?")[0].rstrip("/").endswith("/products"):
            return []
        return instrument_records(parse_products(body), self.feed, ts_recv)


# -- REST reference data -------------------------------------------------------------


def _status(product: dict[str, Any]) -> str:
    status = str(product.get("status") or "")
    if status != "online":
        return status or "unknown"
    if product.get("trading_disabled"):
        return "halted"
    if product.get("cancel_only"):
        return "cancel_only"
    if product.get("post_only") or product.get("limit_only"):
        return "limited"
    return "open"


def parse_products(body: bytes | str | list[Any]) -> list[Instrument]:
    """`GET /products` (a JSON array) to instruments: BTC-USD stays BTC-USD; tick size is
    `quote_increment`, lot size `base_increment`. BadFrame on a malformed body."""
    data = decode_json(body) if isinstance(body, bytes | str) else body
    out: list[Instrument] = []
    for raw in arr(data, "products"):
        product = obj(raw, "product")
        pid = text(product.get("id"), "id")
        extra = {
            key: str(product[key])
            for key in ("display_name", "base_min_size", "base_max_size", "min_market_funds")
            if product.get(key) not in (None, "")
        }
        out.append(
            Instrument(
                venue=VENUE,
                venue_symbol=pid,
                symbol=pid,
                kind="spot",
                base=str(product.get("base_currency") or ""),
                quote=str(product.get("quote_currency") or ""),
                tick_size=fixed(product.get("quote_increment")),
                lot_size=fixed(product.get("base_increment")),
                status=_status(product),
                extra=extra,
            )
        )
    return out
