"""Coinbase Advanced Trade market data WebSocket: level2, market_trades, ticker, heartbeats.

Every message is an envelope `{channel, timestamp, sequence_num, events: [...]}`.
`sequence_num` counts every message **of the connection** (all channels together), so
one gap check covers everything: a jump means a lost message of unknown channel, and
every book on the connection is suspect (dropped, resubscribed). Subscribe with
channel `level2`; its messages say `l2_data`, sides `bid`/`offer`, `new_quantity`
absolute (0 deletes). One channel per subscribe message. Sources: docs.cdp.coinbase.com
Advanced Trade "WebSocket Channels", "WebSocket Rate Limits" (docs/venues/coinbase.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ssmd.model.instrument import Instrument
from ssmd.model.records import InstrumentKind, Level, Quote, Record, Side, Trade
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

INFO = VENUES["coinbase-advanced"]
VENUE = INFO.venue
CHANNELS = ("level2", "market_trades", "ticker", "ticker_batch", "heartbeats")
"""Unauthenticated client messages are limited to 8/s per IP, which the runtime's send
pacing (not this module) must respect."""
_WIDE = ("heartbeats",)
"""Channels subscribed without products."""

_AGGRESSOR: dict[str, Side] = {"BUY": "sell", "SELL": "buy"}
"""market_trades `side` is the maker's side (as on the Exchange feed); we flip it."""

__all__ = [
    "INFO",
    "CoinbaseAdvancedNormalizer",
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


def _control(
    kind: str, channels: Sequence[str], product_ids: Sequence[str], jwt: str | None
) -> list[str]:
    products = check_symbols(product_ids, INFO.max_instruments_per_connection, INFO.name)
    out = []
    for channel in check_channels(channels, CHANNELS, INFO.name):
        # the protocol takes exactly one channel per message
        batches = [None] if channel in _WIDE else chunks(products, INFO.max_symbols_per_message)
        for batch in batches:
            frame: dict[str, Any] = {"type": kind}
            if batch is not None:
                frame["product_ids"] = batch
            frame["channel"] = channel
            if jwt:
                frame["jwt"] = jwt
            out.append(dumps(frame))
    return out


def subscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    jwt: str | None = None,
) -> list[str]:
    """Subscribe frames, one per channel and batch; `jwt` (optional for market data) is
    minted by the runtime, which owns the key. Include `heartbeats`: without it, quiet
    channels close after 60-90 s. `depth`: the feed is full-depth."""
    return _control("subscribe", channels, venue_symbols, jwt)


def unsubscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    jwt: str | None = None,
) -> list[str]:
    return _control("unsubscribe", channels, venue_symbols, jwt)


def heartbeat() -> None:
    """None: no client ping; liveness is the `heartbeats` channel (see `subscribe`)."""
    return None


def instruments_url() -> str:
    return f"{INFO.rest_url}/market/products"


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return parse_products(body)


snapshot_url = no_snapshot
"""None: `level2` starts with its own snapshot."""


def normalizer(
    symbols: Mapping[str, SymbolInfo] | None = None, feed: str = ""
) -> CoinbaseAdvancedNormalizer:
    """A fresh normalizer for one connection."""
    return CoinbaseAdvancedNormalizer(symbols, feed)


# -- frames we receive ---------------------------------------------------------------


class CoinbaseAdvancedNormalizer(NormalizerBase):
    """One Advanced Trade connection: connection-wide `sequence_num`, books per product."""

    venue = VENUE

    def __init__(self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> None:
        super().__init__(symbols, feed)
        self.books = CoinbaseBooks(self)
        self._last_seq: int | None = None
        self._last_ts = 0

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        msg = obj(decode_json(payload), "frame")
        channel = msg.get("channel")
        if not isinstance(channel, str):
            if msg.get("type") == "error":
                return []  # a rejected subscription: the journal keeps the text
            raise BadFrame("frame without a 'channel'")
        seq = integer(msg.get("sequence_num"), "sequence_num")
        ts_event = iso_ns(msg["timestamp"]) if "timestamp" in msg else 0
        events = arr(msg.get("events", []), "events")
        # Parse the whole frame before touching state, so a bad frame changes nothing.
        if channel == "l2_data":
            parsed: list[Any] = [self._l2_event(e) for e in events]
        elif channel == "market_trades":
            parsed = [self._trades(e, seq, ts_recv) for e in events]
        elif channel in ("ticker", "ticker_batch"):
            parsed = [self._tickers(e, seq, ts_event, ts_recv) for e in events]
        else:
            parsed = []  # heartbeats, subscriptions, status, candles: nothing to normalize
        stale, out = self._check_seq(seq, ts_event, ts_recv)
        if stale:
            return out
        if channel == "l2_data":
            for kind, product, bids, asks, ev_ts in parsed:
                ts = ev_ts or ts_event
                if kind == "snapshot":
                    out += self.books.snapshot(product, bids, asks, ts, ts_recv, seq)
                else:
                    out += self.books.update(product, bids, asks, ts, ts_recv, seq)
        else:
            for records in parsed:
                out += records
        return out

    def _check_seq(self, seq: int, ts_event: int, ts_recv: int) -> tuple[bool, list[Record]]:
        """(drop the frame?, gap records). A gap invalidates every book of the connection."""
        last, since = self._last_seq, self._last_ts
        if last is not None and seq <= last:
            detail = f"sequence_num {seq} after {last}: duplicate or out of order, dropped"
            return True, [self.gap("sequence", "", ts_recv, detail, seq=seq, ts_event=ts_event)]
        self._last_seq, self._last_ts = seq, ts_recv
        if last is None or seq == last + 1:
            return False, []
        lost = self.books.invalidate()
        self.resync("resubscribe", lost, f"sequence_num gap {last} -> {seq}")
        detail = f"sequence_num jumped {last} -> {seq}: {seq - last - 1} message(s) lost"
        return False, [
            self.gap("sequence", p, ts_recv, detail, seq=seq, since_ns=since, count=i == 0)
            for i, p in enumerate(lost or [""])
        ]

    def _l2_event(self, raw: object) -> tuple[str, str, list[Level], list[Level], int]:
        event = obj(raw, "event")
        kind = event.get("type")
        if kind not in ("snapshot", "update"):
            raise BadFrame(f"unknown l2 event type {kind!r}")
        product = text(event.get("product_id"), "product_id")
        bids: list[Level] = []
        asks: list[Level] = []
        last_ts = 0
        for row in arr(event.get("updates"), "updates"):
            update = obj(row, "update")
            level = (fixed(update.get("price_level")), fixed(update.get("new_quantity")))
            side = update.get("side")
            if side == "bid":
                bids.append(level)
            elif side in ("offer", "ask"):
                asks.append(level)
            else:
                raise BadFrame(f"unknown side {side!r}")
            if "event_time" in update:
                last_ts = iso_ns(update["event_time"])
        return kind, product, bids, asks, last_ts

    def _trades(self, raw: object, seq: int, ts_recv: int) -> list[Record]:
        event = obj(raw, "event")
        out: list[Record] = []
        for row in arr(event.get("trades"), "trades"):
            trade = obj(row, "trade")
            product = text(trade.get("product_id"), "product_id")
            side = _AGGRESSOR.get(str(trade.get("side")).upper())
            if side is None:
                raise BadFrame(f"unknown side {trade.get('side')!r}")
            out.append(
                Trade(
                    **self.record_fields(product, iso_ns(trade.get("time")), ts_recv, seq),
                    price=fixed(trade.get("price")),
                    size=fixed(trade.get("size")),
                    side=side,
                    trade_id=text(str(trade.get("trade_id") or ""), "trade_id"),
                )
            )
        return out

    def _tickers(self, raw: object, seq: int, ts_event: int, ts_recv: int) -> list[Record]:
        event = obj(raw, "event")
        out: list[Record] = []
        for row in arr(event.get("tickers"), "tickers"):
            ticker = obj(row, "ticker")
            if "best_bid" not in ticker:
                continue  # ticker_batch omits the book top: nothing to quote
            product = text(ticker.get("product_id"), "product_id")
            out.append(
                Quote(
                    **self.record_fields(product, ts_event, ts_recv, seq),
                    bid_px=fixed(ticker.get("best_bid")),
                    bid_sz=fixed(ticker.get("best_bid_quantity", "0")),
                    ask_px=fixed(ticker.get("best_ask")),
                    ask_sz=fixed(ticker.get("best_ask_quantity", "0")),
                )
            )
        return out

    def _rest(self, endpoint: str, body: bytes | str, ts_recv: int) -> list[Record]:
        """`GET /market/products` or `/products` become instrument records."""
        if not endpoint.split("?")[0].rstrip("/").endswith("/products"):
            return []
        return instrument_records(parse_products(body), self.feed, ts_recv)


# -- REST reference data -------------------------------------------------------------


def _kind(product: dict[str, Any]) -> tuple[InstrumentKind, dict[str, Any]]:
    ptype = str(product.get("product_type") or "SPOT").upper()
    details = product.get("future_product_details")
    details = details if isinstance(details, dict) else {}
    if ptype == "SPOT":
        return "spot", details
    perpetual = details.get("contract_expiry_type") == "PERPETUAL" or bool(
        details.get("funding_interval")
    )
    return ("perp" if perpetual else "future"), details


def _status(product: dict[str, Any]) -> str:
    if product.get("is_disabled") or product.get("trading_disabled"):
        return "halted"
    if product.get("cancel_only"):
        return "cancel_only"
    if product.get("view_only"):
        return "view_only"
    status = str(product.get("status") or "")
    return "open" if status in ("online", "") else status


def parse_products(body: bytes | str | dict[str, Any]) -> list[Instrument]:
    """`GET /api/v3/brokerage/market/products` (`{"products": [...]}`) or one product.

    Tick size is `price_increment` (the order price grid; `quote_increment` is the
    funds grid), lot size `base_increment`. Futures: kind `perp` when the contract is
    perpetual-style (PERPETUAL, or has a funding interval: Coinbase's US "perps" are
    5-year futures that fund hourly), else `future`; expiry from `contract_expiry`.
    """
    data = obj(decode_json(body) if isinstance(body, bytes | str) else body, "body")
    rows = data.get("products", [data])
    out: list[Instrument] = []
    for raw in arr(rows, "products"):
        product = obj(raw, "product")
        pid = text(product.get("product_id"), "product_id")
        kind, details = _kind(product)
        expiry = details.get("contract_expiry") if kind != "spot" else None
        extra = {
            key: str(value)
            for key, value in (
                ("display_name", product.get("display_name")),
                ("product_venue", product.get("product_venue")),
                ("quote_increment", product.get("quote_increment")),
                ("contract_size", details.get("contract_size")),
                ("alias", product.get("alias")),
            )
            if value not in (None, "")
        }
        base = product.get("base_currency_id") or details.get("contract_root_unit") or ""
        out.append(
            Instrument(
                venue=VENUE,
                venue_symbol=pid,
                symbol=pid,
                kind=kind,
                base=str(base),
                quote=str(product.get("quote_currency_id") or ""),
                tick_size=fixed(product.get("price_increment") or product.get("quote_increment")),
                lot_size=fixed(product.get("base_increment")),
                status=_status(product),
                expiry_ns=iso_ns(expiry) if isinstance(expiry, str) and expiry else 0,
                extra=extra,
            )
        )
    return out
