"""Synthetic tapes: the market model (`market.py`) encoded in a venue's own protocol.

A tape is a deterministic function of (venue, symbols, seed, depth, start_ns, step_ns):
frame i has the timestamp start_ns + i*step_ns and the same bytes on every connection,
so two runs (or two redundant connectors) see identical data. Every frame carries a tag
(symbol index, channel) so a connection subscribed to a subset can filter it.

Kraken WS v2: book updates with the CRC32 checksum at the pair's precision (levels
pushed out of the depth window are not deleted on the wire, as on Kraken), trades, a
ticker after each trade. Binance spot: depth diffs with U/u continuity (levels leaving
the kept depth are deleted explicitly: Binance streams the full book), trade, aggTrade,
bookTicker when the touch changes; the REST depth snapshot comes from `depth_snapshot`.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence

import orjson

from ssmd.replay.market import SymbolBook, SymbolSpec, spec_for

BOOK, TRADE, TICKER, AGG = 0, 1, 2, 3
"""Channel codes in frame tags (tag = symbol_index * 4 + channel)."""

__all__ = ["AGG", "BOOK", "TICKER", "TRADE", "BinanceTape", "KrakenTape", "Tape", "iso_us"]

_sec_cache: dict[int, str] = {}


def iso_us(ns: int) -> str:
    """RFC 3339 with microseconds, as Kraken v2 prints times: 2024-01-01T00:00:00.123456Z."""
    sec, frac = divmod(ns, 1_000_000_000)
    head = _sec_cache.get(sec)
    if head is None:
        if len(_sec_cache) > 4096:
            _sec_cache.clear()
        head = _sec_cache[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{head}.{frac // 1000:06d}Z"


class Tape:
    """Base: symbols, books, the master scheduler and the frame clock."""

    venue = ""
    channels: tuple[str, ...] = ()
    per_symbol: tuple[str, ...] = ("books",)
    """Attributes holding one entry per symbol: together, a symbol's whole state."""

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 0,
        depth: int = 10,
        start_ns: int = 0,
        step_ns: int = 1000,
    ) -> None:
        if not symbols:
            raise ValueError("synthetic mode needs at least one symbol")
        self.names = [self.wire_name(s) for s in symbols]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate symbols in {list(symbols)}")
        self.specs: list[SymbolSpec] = [self.spec(n) for n in self.names]
        self.books = [
            SymbolBook(spec, depth, seed, name)
            for spec, name in zip(self.specs, self.names, strict=True)
        ]
        self.depth = depth
        self.seed = seed
        self.start_ns = start_ns
        self.step_ns = step_ns
        self.index = 0
        """Frames produced so far (the next frame's index)."""
        self.rng = random.Random(f"{seed}:schedule")

    # -- per venue ----------------------------------------------------------------

    @staticmethod
    def wire_name(symbol: str) -> str:
        raise NotImplementedError

    def spec(self, wire_name: str) -> SymbolSpec:
        raise NotImplementedError

    def _step(self, i: int, out: list[bytes], tags: list[int]) -> None:
        raise NotImplementedError

    # -- common ---------------------------------------------------------------------

    def now_ns(self) -> int:
        return self.start_ns + self.index * self.step_ns

    def take(
        self, n: int, on_step: Callable[[int], None] | None = None
    ) -> tuple[list[bytes], list[int]]:
        """At least `n` more frames (a market event may add up to a few past `n`);
        `on_step(symbol_index)` after each event (rewind.py records them)."""
        out: list[bytes] = []
        tags: list[int] = []
        nsym = len(self.books)
        rnd = self.rng.random
        step = self._step
        while len(out) < n:
            i = int(rnd() * nsym)
            step(i, out, tags)
            if on_step is not None:
                on_step(i)
        return out, tags

    def symbol_state(self, i: int) -> tuple[object, ...]:
        """Symbol `i`'s state (live objects: copy before keeping)."""
        return tuple(getattr(self, name)[i] for name in self.per_symbol)

    def copy(self) -> Tape:
        """An independent twin, ~10x cheaper than deepcopy (a connection's own tape, the
        end of the prebuilt prefix: with 1,000 symbols deepcopy stalled the server ~1 s).
        Mutable state is the RNG and the per-symbol lists; the rest is read-only."""
        twin = copy.copy(self)
        twin.rng = random.Random()
        twin.rng.setstate(self.rng.getstate())
        for name in self.per_symbol:
            setattr(twin, name, list(getattr(self, name)))
        twin.books = [book.copy() for book in self.books]
        return twin

    @staticmethod
    def copy_state(state: tuple[object, ...]) -> tuple[object, ...]:
        """An independent copy of a symbol state: its book (first) is the only mutable
        part; the other per-symbol values are ints and tuples."""
        book, *rest = state
        assert isinstance(book, SymbolBook)
        return (book.copy(), *rest)

    def set_symbol_state(self, i: int, state: tuple[object, ...]) -> None:
        for name, value in zip(self.per_symbol, state, strict=True):
            getattr(self, name)[i] = value


class KrakenTape(Tape):
    """Kraken spot WebSocket v2 frames."""

    venue = "kraken-v2"
    channels = ("book", "trade", "ticker")
    per_symbol = ("books", "trade_ids", "highs", "lows")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.trade_ids = [0] * len(self.books)
        self.highs = [b.last_price for b in self.books]
        self.lows = [b.last_price for b in self.books]
        self.opens = [b.last_price for b in self.books]

    @staticmethod
    def wire_name(symbol: str) -> str:
        return symbol.upper().replace("-", "/")

    def spec(self, wire_name: str) -> SymbolSpec:
        base, _, quote = wire_name.partition("/")
        if not quote:
            raise ValueError(f"Kraken v2 symbols look like BTC/USD or BTC-USD, not {wire_name!r}")
        return spec_for(base, quote, "kraken")

    def _levels(self, spec: SymbolSpec, levels: list[tuple[int, int]]) -> str:
        ps, qs = spec.price_str, spec.qty_str
        return ",".join([f'{{"price":{ps(p)},"qty":{qs(q)}}}' for p, q in levels])

    def _step(self, i: int, out: list[bytes], tags: list[int]) -> None:
        book = self.books[i]
        spec = book.spec
        name = self.names[i]
        fills, change = book.step()
        base = i * 4
        if fills:
            ts = iso_us(self.now_ns())
            rows = []
            for f in fills:
                self.trade_ids[i] += 1
                rows.append(
                    f'{{"symbol":"{name}","side":"{f.side}","price":{spec.price_str(f.price)},'
                    f'"qty":{spec.qty_str(f.qty)},"ord_type":"market",'
                    f'"trade_id":{self.trade_ids[i]},"timestamp":"{ts}"}}'
                )
            out.append(f'{{"channel":"trade","type":"update","data":[{",".join(rows)}]}}'.encode())
            tags.append(base + TRADE)
            self.index += 1
        if change.bids or change.asks:
            ts = iso_us(self.now_ns())
            out.append(
                f'{{"channel":"book","type":"update","data":[{{"symbol":"{name}","bids":['
                f'{self._levels(spec, change.bids)}],"asks":[{self._levels(spec, change.asks)}],'
                f'"checksum":{book.checksum()},"timestamp":"{ts}"}}]}}'.encode()
            )
            tags.append(base + BOOK)
            self.index += 1
        if fills:
            last = book.last_price
            self.highs[i] = max(self.highs[i], last)
            self.lows[i] = min(self.lows[i], last)
            out.append(self.ticker(i, "update"))
            tags.append(base + TICKER)
            self.index += 1

    # -- snapshots and reference data ---------------------------------------------------

    def book_snapshot(self, i: int) -> bytes:
        book = self.books[i]
        bids, asks = book.top(self.depth)
        return (
            f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"{self.names[i]}",'
            f'"bids":[{self._levels(book.spec, bids)}],"asks":[{self._levels(book.spec, asks)}],'
            f'"checksum":{book.checksum()},"timestamp":"{iso_us(self.now_ns())}"}}]}}'
        ).encode()

    def ticker(self, i: int, kind: str) -> bytes:
        book = self.books[i]
        spec = book.spec
        ps, qs = spec.price_str, spec.qty_str
        (bp, bq), (ap, aq) = book.bids.top(1)[0], book.asks.top(1)[0]
        last, opened = book.last_price, self.opens[i]
        change = last - opened
        pct = round(change * 100 / opened, 2) if opened else 0
        return (
            f'{{"channel":"ticker","type":"{kind}","data":[{{"symbol":"{self.names[i]}",'
            f'"bid":{ps(bp)},"bid_qty":{qs(bq)},"ask":{ps(ap)},"ask_qty":{qs(aq)},'
            f'"last":{ps(last)},"volume":{qs(book.volume)},"vwap":{ps(last)},'
            f'"low":{ps(self.lows[i])},"high":{ps(self.highs[i])},'
            f'"change":{"-" if change < 0 else ""}{ps(abs(change))},"change_pct":{pct},'
            f'"timestamp":"{iso_us(self.now_ns())}"}}]}}'
        ).encode()

    def instrument_snapshot(self) -> bytes:
        pairs, assets = [], {}
        for name, spec in zip(self.names, self.specs, strict=True):
            for a in (spec.base, spec.quote):
                assets[a] = {"id": a, "status": "enabled", "precision": 8,
                             "precision_display": 5, "borrowable": False,
                             "collateral_value": 0, "margin_rate": 0}  # fmt: skip
            pairs.append(
                {
                    "symbol": name, "base": spec.base, "quote": spec.quote, "status": "online",
                    "qty_precision": spec.qty_decimals, "price_precision": spec.price_decimals,
                    "qty_increment": _dec(1, spec.qty_decimals),
                    "price_increment": _dec(1, spec.price_decimals),
                    "qty_min": _dec(spec.lot, spec.qty_decimals), "marginable": False,
                    "has_index": True, "cost_min": "0.5", "cost_precision": 5,
                }
            )  # fmt: skip
        doc = {"channel": "instrument", "type": "snapshot",
               "data": {"assets": list(assets.values()), "pairs": pairs}}  # fmt: skip
        return orjson.dumps(doc)

    def asset_pairs(self) -> bytes:
        """REST GET /0/public/AssetPairs for the configured symbols."""
        result = {}
        for name, spec in zip(self.names, self.specs, strict=True):
            result[name.replace("/", "")] = {
                "altname": name.replace("/", ""), "wsname": name, "base": spec.base,
                "quote": spec.quote, "pair_decimals": spec.price_decimals,
                "lot_decimals": spec.qty_decimals, "cost_decimals": 5,
                "tick_size": _dec(1, spec.price_decimals),
                "ordermin": _dec(spec.lot, spec.qty_decimals), "status": "online",
            }  # fmt: skip
        return orjson.dumps({"error": [], "result": result})


def _dec(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    whole, frac = divmod(units, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}"


class BinanceTape(Tape):
    """Binance spot market-stream events (unwrapped; the server wraps for /stream)."""

    venue = "binance"
    channels = ("depth", "trade", "bookTicker", "aggTrade")
    per_symbol = ("books", "update_ids", "trade_ids", "touch")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.update_ids = [1_000_000 + 1000 * k for k in range(len(self.books))]
        self.trade_ids = [0] * len(self.books)
        self.touch = [self._touch(k) for k in range(len(self.books))]

    @staticmethod
    def wire_name(symbol: str) -> str:
        return symbol.upper().replace("-", "").replace("/", "")

    def spec(self, wire_name: str) -> SymbolSpec:
        for quote in ("USDT", "USDC", "FDUSD", "BUSD", "USD", "EUR", "BTC", "ETH"):
            if wire_name.endswith(quote) and len(wire_name) > len(quote):
                return spec_for(wire_name[: -len(quote)], quote, "binance")
        raise ValueError(f"cannot split Binance symbol {wire_name!r} into base and quote")

    def _touch(self, i: int) -> tuple[int, int, int, int]:
        book = self.books[i]
        (bp, bq), (ap, aq) = book.bids.top(1)[0], book.asks.top(1)[0]
        return bp, bq, ap, aq

    def _step(self, i: int, out: list[bytes], tags: list[int]) -> None:
        book = self.books[i]
        spec = book.spec
        ps, qs = spec.price_str, spec.qty_str
        name = self.names[i]
        fills, change = book.step()
        base = i * 4
        ms = self.now_ns() // 1_000_000
        for f in fills:
            self.trade_ids[i] += 1
            tid = self.trade_ids[i]
            maker = "true" if f.side == "sell" else "false"
            p, q = ps(f.price), qs(f.qty)
            out.append(
                f'{{"e":"trade","E":{ms},"s":"{name}","t":{tid},"p":"{p}","q":"{q}",'
                f'"T":{ms},"m":{maker},"M":true}}'.encode()
            )
            out.append(
                f'{{"e":"aggTrade","E":{ms},"s":"{name}","a":{tid},"p":"{p}","q":"{q}",'
                f'"f":{tid},"l":{tid},"T":{ms},"m":{maker},"M":true}}'.encode()
            )
            tags.append(base + TRADE)
            tags.append(base + AGG)
            self.index += 2
        bids = change.bids + [(p, 0) for p in change.evicted_bids]
        asks = change.asks + [(p, 0) for p in change.evicted_asks]
        if bids or asks:
            first = self.update_ids[i] + 1
            last = self.update_ids[i] = self.update_ids[i] + len(bids) + len(asks)
            b = ",".join([f'["{ps(p)}","{qs(q)}"]' for p, q in bids])
            a = ",".join([f'["{ps(p)}","{qs(q)}"]' for p, q in asks])
            out.append(
                f'{{"e":"depthUpdate","E":{self.now_ns() // 1_000_000},"s":"{name}",'
                f'"U":{first},"u":{last},"b":[{b}],"a":[{a}]}}'.encode()
            )
            tags.append(base + BOOK)
            self.index += 1
            touch = self._touch(i)
            if touch != self.touch[i]:
                self.touch[i] = touch
                bp, bq, ap, aq = touch
                out.append(
                    f'{{"u":{last},"s":"{name}","b":"{ps(bp)}","B":"{qs(bq)}",'
                    f'"a":"{ps(ap)}","A":"{qs(aq)}"}}'.encode()
                )
                tags.append(base + TICKER)
                self.index += 1

    def depth_snapshot(self, i: int, limit: int = 100) -> bytes:
        """REST GET /api/v3/depth body at this tape's current position."""
        book = self.books[i]
        ps, qs = book.spec.price_str, book.spec.qty_str
        bids, asks = book.top(limit)
        doc = {
            "lastUpdateId": self.update_ids[i],
            "bids": [[ps(p), qs(q)] for p, q in bids],
            "asks": [[ps(p), qs(q)] for p, q in asks],
        }
        return orjson.dumps(doc)

    def exchange_info(self) -> bytes:
        symbols = []
        for name, spec in zip(self.names, self.specs, strict=True):
            symbols.append(
                {
                    "symbol": name, "status": "TRADING", "baseAsset": spec.base,
                    "quoteAsset": spec.quote, "baseAssetPrecision": 8, "quoteAssetPrecision": 8,
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": _dec(1, spec.price_decimals),
                         "maxPrice": "1000000.00", "tickSize": _dec(1, spec.price_decimals)},
                        {"filterType": "LOT_SIZE", "minQty": _dec(spec.lot, spec.qty_decimals),
                         "maxQty": "9000.0", "stepSize": _dec(1, spec.qty_decimals)},
                    ],
                }
            )  # fmt: skip
        return orjson.dumps({"timezone": "UTC", "serverTime": self.now_ns() // 1_000_000,
                             "rateLimits": [], "symbols": symbols})  # fmt: skip


TAPES: dict[str, type[Tape]] = {"kraken-v2": KrakenTape, "sim": KrakenTape, "binance": BinanceTape}
