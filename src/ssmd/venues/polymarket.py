"""Polymarket CLOB market channel (book, price_change, last_trade_price, tick_size_change,
best_bid_ask, new_market, market_resolved) and REST markets (CLOB and gamma). Pure.

Decisions (docs/venues/polymarket.md):

* **Symbol = the token id** (`asset_id`, a 77-digit decimal string, kept as a string:
  it does not fit any integer type). It is the only id the stream carries and the
  only stable one; slug, outcome and condition id go to the instrument's `extra`.
  Each outcome token has its own book; the two tokens of a market mirror each other
  (price p on one is 1 - p on the other) and are both published when subscribed.
* **Tick-size changes never touch prices.** Prices are exact decimals (fixed-point
  1e-9) whatever the grid; `tick_size_change` becomes an `instrument` record and
  levels already resting on the old grid are kept as they are.
* **Crossed books and bursts.** The matching engine publishes the legs of one match
  as several `price_change` messages with the same `timestamp`; between them a naive
  book can cross (a taker's level lands before the maker levels it consumed are
  removed). Every `price_change` entry also carries the venue's own `best_bid` /
  `best_ask`. So: after each message we compare our top of book with the venue's.
  Equal and uncrossed: verified. Otherwise the asset is *pending* and is judged at
  its next message with a **different timestamp** (the burst is over): if the book is
  then still crossed -> `gap(crossed)`; still different from the venue's top ->
  `gap(checksum)`. Either way the book is dropped and a resubscribe is requested.
  We publish the venue's deltas as they come (consumers see the same transient
  state the venue sent); the verdict rides on the gap records.
* **price_change before any book**: nothing to apply it to. One `gap(resync)` per
  asset until a book arrives, plus a resubscribe when the asset is one we were asked
  for (in `symbols`). Price changes of a market's other token that we did not
  subscribe to arrive too; with a `symbols` map they are ignored silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ssmd.book.l2 import L2Book
from ssmd.model.fixed import SCALE
from ssmd.model.instrument import Instrument
from ssmd.model.records import InstrumentRecord, Level, Quote, Record, Side, Status, Trade
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
    iso_ns,
    ms_ns,
    no_snapshot,
    obj,
    text,
    with_query,
)
from ssmd.venues.base import SymbolInfo
from ssmd.venues.registry import VENUES

INFO = VENUES["polymarket"]
VENUE = INFO.venue
PING = "PING"
"""Client heartbeat: the text frame PING every 10 s; the server answers PONG."""
ONE = SCALE

_SIDE: dict[str, str] = {"BUY": "bid", "SELL": "ask"}
_TRADE_SIDE: dict[str, Side] = {"BUY": "buy", "SELL": "sell"}

__all__ = [
    "INFO",
    "LAST_PAGE",
    "PING",
    "PolymarketNormalizer",
    "heartbeat",
    "instruments_url",
    "next_page",
    "normalizer",
    "parse_clob_markets",
    "parse_gamma_markets",
    "parse_instruments",
    "parse_markets",
    "snapshot_url",
    "subscribe",
    "unsubscribe",
]


# -- the venue-module contract (venues/base.py) ------------------------------------------


def _assets(channels: Sequence[str], asset_ids: Sequence[str]) -> list[list[str]]:
    check_channels(channels, INFO.channels, INFO.name)
    assets = check_symbols(asset_ids, INFO.max_instruments_per_connection, INFO.name)
    return chunks(assets, INFO.max_symbols_per_message)


def subscribe(
    channels: Sequence[str],
    venue_symbols: Sequence[str],
    depth: int | None = None,
    *,
    initial: bool = True,
    custom_features: bool = True,
) -> list[str]:
    """Subscription frames for token ids on the `market` channel. The first frame of a
    connection is the `type: market` handshake; later additions (`initial=False`) use
    `operation: subscribe`. `custom_features` turns on best_bid_ask, new_market and
    market_resolved. `depth`: books are full-depth."""
    out = []
    for i, batch in enumerate(_assets(channels, venue_symbols)):
        frame: dict[str, Any] = {"assets_ids": batch}
        if initial and i == 0:
            frame["type"] = "market"
        else:
            frame["operation"] = "subscribe"
        frame["custom_feature_enabled"] = custom_features
        out.append(dumps(frame))
    return out


def unsubscribe(
    channels: Sequence[str], venue_symbols: Sequence[str], depth: int | None = None
) -> list[str]:
    return [
        dumps({"operation": "unsubscribe", "assets_ids": batch})
        for batch in _assets(channels, venue_symbols)
    ]


def heartbeat() -> str:
    return PING


def instruments_url() -> str:
    """CLOB GET /markets, first page (`next_page` follows `next_cursor`)."""
    return f"{INFO.rest_url}/markets"


LAST_PAGE = "LTE="
"""The CLOB's `next_cursor` after the last page (base64 of -1)."""


def next_page(url: str, body: bytes) -> str | None:
    """The next page of CLOB GET /markets: `next_cursor`, until it is LTE= or empty (the
    gamma flavour, a bare list, is one page)."""
    data = decode_json(body)
    cursor = data.get("next_cursor") if isinstance(data, dict) else None
    if not isinstance(cursor, str) or cursor in ("", LAST_PAGE):
        return None
    return with_query(url, next_cursor=cursor)


def parse_instruments(body: bytes | str) -> list[Instrument]:
    return parse_markets(body)


snapshot_url = no_snapshot
"""None: the channel sends a `book` per token on subscribe."""


def normalizer(
    symbols: Mapping[str, SymbolInfo] | None = None, feed: str = ""
) -> PolymarketNormalizer:
    """A fresh normalizer for one connection."""
    return PolymarketNormalizer(symbols, feed)


# -- frames we receive ---------------------------------------------------------------


def _levels(raw: object, what: str) -> list[Level]:
    out: list[Level] = []
    for row in arr(raw, what):
        level = obj(row, what)
        out.append((fixed(level.get("price")), fixed(level.get("size"))))
    return out


class _Asset:
    """Per-token state: the book, and the pending burst verdict (ts, venue bid, ask)."""

    __slots__ = ("book", "pending", "warned")

    def __init__(self) -> None:
        self.book: L2Book | None = None
        self.pending: tuple[int, int | None, int | None] | None = None
        self.warned = False


def _venue_top(entry: dict[str, Any]) -> tuple[int | None, int | None] | None:
    """The venue's best bid/ask from a price_change entry; None when it sends none."""
    if "best_bid" not in entry and "best_ask" not in entry:
        return None
    bid, ask = entry.get("best_bid"), entry.get("best_ask")
    return (
        fixed(bid) if bid not in (None, "") else None,
        fixed(ask) if ask not in (None, "") else None,
    )


def _top_matches(book: L2Book, venue: tuple[int | None, int | None]) -> bool:
    """Our best prices equal the venue's; an empty side matches 0 (bid) / 1 (ask) / none."""
    bid, ask = book.best_bid(), book.best_ask()
    ok_bid = venue[0] in (None, 0) if bid is None else bid[0] == venue[0]
    ok_ask = venue[1] in (None, ONE) if ask is None else ask[0] == venue[1]
    return ok_bid and ok_ask


class PolymarketNormalizer(NormalizerBase):
    """One market-channel connection: a book per token, burst-aware integrity checks."""

    venue = VENUE

    def __init__(self, symbols: Mapping[str, SymbolInfo] | None = None, feed: str = "") -> None:
        super().__init__(symbols, feed)
        self.assets: dict[str, _Asset] = {}

    def book(self, asset_id: str) -> L2Book | None:
        """The live book of a token (None before its first `book`, or after a gap)."""
        state = self.assets.get(asset_id)
        return state.book if state else None

    def _frame(self, payload: bytes | str, ts_recv: int) -> list[Record]:
        if payload in ("PONG", b"PONG", "PING", b"PING"):
            return []
        data = decode_json(payload)
        messages = data if isinstance(data, list) else [data]  # the initial dump is an array
        parsed = [self._parse(obj(m, "message")) for m in messages]
        out: list[Record] = []
        for handler, args in parsed:
            out += handler(*args, ts_recv)
        return out

    def _parse(self, msg: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        """Validate one message fully (may raise) and return the state change to run."""
        kind = msg.get("event_type")
        if kind == "book" or (kind is None and "bids" in msg and "asks" in msg):
            asset = text(msg.get("asset_id"), "asset_id")
            bids, asks = _levels(msg.get("bids"), "bids"), _levels(msg.get("asks"), "asks")
            return self._on_book, (asset, bids, asks, ms_ns(msg.get("timestamp")))
        if kind == "price_change":
            return self._on_price_change, (self._changes(msg), ms_ns(msg.get("timestamp")))
        if kind == "last_trade_price":
            asset = text(msg.get("asset_id"), "asset_id")
            side = _TRADE_SIDE.get(str(msg.get("side")).upper(), "unknown")
            trade = (fixed(msg.get("price")), fixed(msg.get("size")), side)
            tx = str(msg.get("transaction_hash") or "")
            return self._on_trade, (asset, trade, tx, ms_ns(msg.get("timestamp")))
        if kind == "tick_size_change":
            asset = text(msg.get("asset_id"), "asset_id")
            tick = fixed(msg.get("new_tick_size"))
            return self._on_tick, (asset, tick, ms_ns(msg.get("timestamp")))
        if kind == "best_bid_ask":
            asset = text(msg.get("asset_id"), "asset_id")
            top = (fixed(msg.get("best_bid")), fixed(msg.get("best_ask")))
            return self._on_bbo, (asset, top, ms_ns(msg.get("timestamp")))
        if kind == "new_market":
            return self._on_new_market, (self._new_market(msg),)
        if kind == "market_resolved":
            assets = [text(a, "assets_ids") for a in arr(msg.get("assets_ids"), "assets_ids")]
            winner = text(msg.get("winning_asset_id"), "winning_asset_id")
            outcome = str(msg.get("winning_outcome") or "")
            return self._on_resolved, (assets, winner, outcome, ms_ns(msg.get("timestamp")))
        if isinstance(kind, str):
            return (lambda ts_recv: []), ()
        raise BadFrame("message without an 'event_type'")

    @staticmethod
    def _changes(msg: dict[str, Any]) -> dict[str, list[tuple[str, int, int, Any]]]:
        """price_change entries grouped by token, in order: (side, price, size, venue top).
        Reads the current `price_changes` form and the pre-2025 `asset_id` + `changes`."""
        grouped: dict[str, list[tuple[str, int, int, Any]]] = {}
        if "price_changes" in msg:
            rows = [(obj(e, "price_change"), None) for e in arr(msg["price_changes"], "changes")]
        else:
            asset = text(msg.get("asset_id"), "asset_id")
            rows = [(obj(e, "change"), asset) for e in arr(msg.get("changes"), "changes")]
        for entry, asset in rows:
            asset_id = asset or text(entry.get("asset_id"), "asset_id")
            side = _SIDE.get(str(entry.get("side")).upper())
            if side is None:
                raise BadFrame(f"unknown side {entry.get('side')!r}")
            change = (side, fixed(entry.get("price")), fixed(entry.get("size")), _venue_top(entry))
            grouped.setdefault(asset_id, []).append(change)
        return grouped

    # -- integrity ----------------------------------------------------------------------

    def _settle(self, asset: str, state: _Asset, ts: int, ts_recv: int) -> list[Record]:
        """Judge a pending burst once a message with another timestamp arrives."""
        pending = state.pending
        if pending is None or pending[0] == ts or state.book is None:
            return []
        state.pending = None
        book = state.book
        unknown = pending[1] is None and pending[2] is None  # the venue gave no top
        if not book.is_crossed() and (unknown or _top_matches(book, pending[1:])):
            self.stats.checksums_verified += 1
            return []
        crossed = book.is_crossed()
        bid, ask = book.best_bid(), book.best_ask()
        detail = (
            f"after the burst at {pending[0] // 1_000_000} ms our top is bid {bid} ask {ask}, "
            f"venue says bid {pending[1]} ask {pending[2]}; book dropped until a new book"
        )
        self._drop(asset, state, "crossed book" if crossed else "top of book mismatch")
        reason = "crossed" if crossed else "checksum"
        return [self.gap(reason, asset, ts_recv, detail, ts_event=pending[0])]

    def _drop(self, asset: str, state: _Asset, why: str) -> None:
        state.book = None
        state.pending = None
        state.warned = True
        self.resync("resubscribe", [asset], why)

    def _state(self, asset: str) -> _Asset:
        state = self.assets.get(asset)
        if state is None:
            state = self.assets[asset] = _Asset()
        return state

    # -- handlers -----------------------------------------------------------------------

    def _on_book(
        self, asset: str, bids: list[Level], asks: list[Level], ts: int, ts_recv: int
    ) -> list[Record]:
        state = self._state(asset)
        out = self._settle(asset, state, ts, ts_recv)
        book = state.book = L2Book()
        book.apply_snapshot(bids, asks)
        state.pending, state.warned = None, False
        bids_out, asks_out = book.snapshot()
        out.append(self.book_record(asset, True, bids_out, asks_out, ts, ts_recv))
        if book.is_crossed():
            detail = f"book message is crossed: bid {book.best_bid()} ask {book.best_ask()}"
            self._drop(asset, state, "crossed book snapshot")
            out.append(self.gap("crossed", asset, ts_recv, detail, ts_event=ts))
        return out

    def _on_price_change(
        self, grouped: dict[str, list[tuple[str, int, int, Any]]], ts: int, ts_recv: int
    ) -> list[Record]:
        out: list[Record] = []
        for asset, changes in grouped.items():
            if self.symbols and asset not in self.symbols and asset not in self.assets:
                continue  # the other token of a market we did not subscribe to
            state = self._state(asset)
            out += self._settle(asset, state, ts, ts_recv)
            book = state.book
            if book is None:
                if not state.warned:
                    state.warned = True
                    if asset in self.symbols:
                        self.resync("resubscribe", [asset], "price_change before book")
                    detail = "price_change before any book; ignored until a book arrives"
                    out.append(self.gap("resync", asset, ts_recv, detail, ts_event=ts))
                continue
            bids: list[Level] = []
            asks: list[Level] = []
            venue_top = None
            for side, price, size, top in changes:
                book.apply(side, price, size)  # type: ignore[arg-type]
                (bids if side == "bid" else asks).append((price, size))
                venue_top = top or venue_top
            out.append(self.book_record(asset, False, bids, asks, ts, ts_recv))
            if venue_top is None:
                state.pending = (ts, None, None) if book.is_crossed() else None
            elif not book.is_crossed() and _top_matches(book, venue_top):
                self.stats.checksums_verified += 1
                state.pending = None
            else:
                state.pending = (ts, *venue_top)
        return out

    def _on_trade(
        self, asset: str, trade: tuple[int, int, Side], tx: str, ts: int, ts_recv: int
    ) -> list[Record]:
        out = self._settle(asset, self._state(asset), ts, ts_recv)
        price, size, side = trade
        out.append(
            Trade(
                **self.record_fields(asset, ts, ts_recv),
                price=price,
                size=size,
                side=side,
                trade_id=tx,
            )
        )
        return out

    def _on_tick(self, asset: str, tick: int, ts: int, ts_recv: int) -> list[Record]:
        """Only reference data changes; the book and its exact prices are left alone."""
        out = self._settle(asset, self._state(asset), ts, ts_recv)
        out.append(
            InstrumentRecord(
                **self.record_fields(asset, ts, ts_recv), kind="binary", tick_size=tick
            )
        )
        return out

    def _on_bbo(self, asset: str, top: tuple[int, int], ts: int, ts_recv: int) -> list[Record]:
        """best_bid_ask has prices only; sizes come from our book when its top agrees."""
        state = self._state(asset)
        out = self._settle(asset, state, ts, ts_recv)
        bid_sz = ask_sz = 0
        if state.book is not None:
            bid_sz = state.book.size_at("bid", top[0])
            ask_sz = state.book.size_at("ask", top[1])
        out.append(
            Quote(
                **self.record_fields(asset, ts, ts_recv),
                bid_px=top[0],
                bid_sz=bid_sz,
                ask_px=top[1],
                ask_sz=ask_sz,
            )
        )
        return out

    def _new_market(self, msg: dict[str, Any]) -> list[tuple[str, int, str, int]]:
        assets = arr(msg.get("assets_ids") or msg.get("clob_token_ids"), "assets_ids")
        tick_raw = msg.get("order_price_min_tick_size")
        tick = fixed(tick_raw) if tick_raw not in (None, "") else 0
        status = "active" if msg.get("active") else "inactive"
        ts = ms_ns(msg.get("timestamp"))
        return [(text(a, "assets_ids"), tick, status, ts) for a in assets]

    def _on_new_market(self, rows: list[tuple[str, int, str, int]], ts_recv: int) -> list[Record]:
        out: list[Record] = []
        for asset, tick, status, ts in rows:
            out.append(
                InstrumentRecord(
                    **self.record_fields(asset, ts, ts_recv),
                    kind="binary",
                    quote="USDC",
                    tick_size=tick,
                    status=status,
                )
            )
        return out

    def _on_resolved(
        self, assets: list[str], winner: str, outcome: str, ts: int, ts_recv: int
    ) -> list[Record]:
        """Each token settles: the winner pays $1 (result 'yes'), the others $0 ('no')."""
        out: list[Record] = []
        for asset in assets:
            out.append(
                Status(
                    **self.record_fields(asset, ts, ts_recv),
                    status="resolved",
                    reason=f"winning outcome: {outcome}" if outcome else "resolved",
                    result="yes" if asset == winner else "no",
                )
            )
        return out


# -- REST reference data -------------------------------------------------------------


def _json_list(value: object, what: str) -> list[Any]:
    """gamma sends some arrays as JSON text (`"[\\"Yes\\", \\"No\\"]"`)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadFrame(f"{what}: not a JSON array: {value!r}") from None
    return arr(value, what)


def _time(value: object) -> int:
    if not isinstance(value, str) or not value:
        return 0
    return iso_ns(value if "T" in value else f"{value}T00:00:00Z")


def _market_status(active: object, closed: object, accepting: object, resolved: bool) -> str:
    if resolved:
        return "resolved"
    if closed:
        return "closed"
    if active and accepting is not False:
        return "active"
    return "inactive"


def parse_clob_markets(body: bytes | str | dict[str, Any]) -> list[Instrument]:
    """CLOB `GET /markets` (`{"data": [...], "next_cursor"}`) or `GET /markets/{id}`:
    one instrument per outcome token."""
    data = obj(decode_json(body) if isinstance(body, bytes | str) else body, "body")
    rows = arr(data["data"], "data") if "data" in data else [data]
    out: list[Instrument] = []
    for raw in rows:
        market = obj(raw, "market")
        tokens = [obj(t, "token") for t in arr(market.get("tokens"), "tokens")]
        resolved = any(t.get("winner") is True for t in tokens)
        status = _market_status(
            market.get("active"), market.get("closed"), market.get("accepting_orders"), resolved
        )
        tick = market.get("minimum_tick_size")
        base_extra = {
            "condition_id": market.get("condition_id"),
            "question_id": market.get("question_id"),
            "question": market.get("question"),
            "slug": market.get("market_slug"),
            "neg_risk": market.get("neg_risk"),
            "min_order_size": market.get("minimum_order_size"),
        }
        for token in tokens:
            token_id = text(token.get("token_id"), "token_id")
            extra = {**base_extra, "outcome": token.get("outcome")}
            out.append(
                Instrument(
                    venue=VENUE,
                    venue_symbol=token_id,
                    symbol=token_id,
                    kind="binary",
                    quote="USDC",
                    tick_size=fixed(tick) if tick not in (None, "") else 0,
                    status=status,
                    expiry_ns=_time(market.get("end_date_iso")),
                    settlement=("yes" if token.get("winner") else "no") if resolved else "",
                    extra={k: str(v) for k, v in extra.items() if v not in (None, "")},
                )
            )
    return out


def parse_gamma_markets(body: bytes | str | list[Any] | dict[str, Any]) -> list[Instrument]:
    """gamma `GET /markets` (an array) or one market: one instrument per `clobTokenIds`
    entry, paired with `outcomes` by position; slug and event slug kept in `extra`."""
    data = decode_json(body) if isinstance(body, bytes | str) else body
    rows = data if isinstance(data, list) else [obj(data, "market")]
    out: list[Instrument] = []
    for raw in rows:
        market = obj(raw, "market")
        tokens = _json_list(market.get("clobTokenIds") or "[]", "clobTokenIds")
        outcomes = _json_list(market.get("outcomes") or "[]", "outcomes")
        prices = _json_list(market.get("outcomePrices") or "[]", "outcomePrices")
        closed = bool(market.get("closed"))
        resolved = closed and any(str(p) == "1" for p in prices)
        status = _market_status(
            market.get("active"), closed, market.get("acceptingOrders"), resolved
        )
        tick = market.get("orderPriceMinTickSize")
        events = market.get("events")
        event_slug = events[0].get("slug") if isinstance(events, list) and events else None
        for i, token in enumerate(tokens):
            outcome = outcomes[i] if i < len(outcomes) else None
            won = resolved and i < len(prices) and str(prices[i]) == "1"
            extra = {
                "condition_id": market.get("conditionId"),
                "question_id": market.get("questionID"),
                "question": market.get("question"),
                "slug": market.get("slug"),
                "event_slug": event_slug,
                "outcome": outcome,
                "neg_risk": market.get("negRisk"),
                "min_order_size": market.get("orderMinSize"),
                "gamma_id": market.get("id"),
            }
            out.append(
                Instrument(
                    venue=VENUE,
                    venue_symbol=text(token, "clobTokenIds"),
                    symbol=token,
                    kind="binary",
                    quote="USDC",
                    tick_size=fixed(tick) if tick not in (None, "") else 0,
                    status=status,
                    expiry_ns=_time(market.get("endDate") or market.get("endDateIso")),
                    settlement=("yes" if won else "no") if resolved else "",
                    extra={k: str(v) for k, v in extra.items() if v not in (None, "")},
                )
            )
    return out


def parse_markets(body: bytes | str | list[Any] | dict[str, Any]) -> list[Instrument]:
    """Either REST flavour, told apart by shape (CLOB `tokens` vs gamma `clobTokenIds`)."""
    data = decode_json(body) if isinstance(body, bytes | str) else body
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(data, list) or (isinstance(first, dict) and "clobTokenIds" in first):
        return parse_gamma_markets(data)
    return parse_clob_markets(data)
