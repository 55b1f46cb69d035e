"""A synthetic limit order book per symbol: the market behind the replay server's
synthetic mode, independent of any venue's wire format.

Why integers on grids: prices are integer ticks (10^-price_decimals) and sizes integer
units (10^-qty_decimals, drawn as multiples of a lot), so every number the encoders
print is exact at the pair's precision and checksums are plain `str(int)`.

Each symbol has its own RNG (seeded from the server seed and the symbol), so a symbol's
evolution does not depend on which other symbols a client subscribed to: two
connections with the same seed see the same book for a symbol at the same update.
The book is never crossed: inserts stay on their side of the touch and trades only
consume the opposite side, never its last level.
"""

from __future__ import annotations

import random
import zlib
from bisect import bisect_left, insort
from dataclasses import dataclass

__all__ = ["BookChange", "SymbolBook", "SymbolSpec", "TradeFill", "spec_for"]

Level = tuple[int, int]


@dataclass(frozen=True)
class SymbolSpec:
    """Grid and starting point of one synthetic symbol."""

    base: str
    quote: str
    price_decimals: int
    qty_decimals: int
    start_price: int
    """Initial mid, in ticks."""
    lot: int
    """Sizes are multiples of this many qty units."""

    def price_str(self, ticks: int) -> str:
        d = self.price_decimals
        if d == 0:
            return str(ticks)
        whole, frac = divmod(ticks, 10**d)
        return f"{whole}.{frac:0{d}d}"

    def qty_str(self, units: int) -> str:
        d = self.qty_decimals
        if d == 0:
            return str(units)
        whole, frac = divmod(units, 10**d)
        return f"{whole}.{frac:0{d}d}"


# (price_decimals, qty_decimals, start price as a decimal string, lot as qty units)
_KNOWN = {
    "BTC": (1, 8, "60000.0", 10_000),
    "ETH": (2, 8, "3000.00", 100_000),
    "SOL": (2, 8, "150.00", 1_000_000),
}
_BINANCE = {
    "BTC": (2, 5, "60000.00", 10),
    "ETH": (2, 4, "3000.00", 10),
    "SOL": (2, 3, "150.00", 10),
}


def spec_for(base: str, quote: str, venue: str = "kraken") -> SymbolSpec:
    """A plausible grid for a pair; unknown bases get 4 price decimals around 1.0000."""
    table = _BINANCE if venue == "binance" else _KNOWN
    pd, qd, start, lot = table.get(base.upper(), (4, 2, "1.0000", 100))
    whole, _, frac = start.partition(".")
    ticks = int(whole) * 10**pd + int(frac.ljust(pd, "0")[:pd] or 0)
    return SymbolSpec(base.upper(), quote.upper(), pd, qd, ticks, lot)


@dataclass(slots=True)
class BookChange:
    """Absolute sizes after one event (0 = deleted); `evicted` are levels that fell out of
    the kept depth (a depth-limited venue sends nothing for them)."""

    bids: list[Level]
    asks: list[Level]
    evicted_bids: list[int]
    evicted_asks: list[int]


@dataclass(slots=True)
class TradeFill:
    price: int
    qty: int
    side: str
    """Aggressor: 'buy' or 'sell'."""


class _Side:
    """Levels of one side; keys sorted best first (bids stored negated)."""

    __slots__ = ("crc", "keys", "levels", "sign", "tokens")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, int] = {}
        self.keys: list[int] = []
        self.tokens: dict[int, str] = {}
        """Checksum token per level (str(price)+str(qty)), kept as levels change."""
        self.crc: str | None = None
        """Joined tokens of the top 10, or None when a change may have touched them."""

    def copy(self) -> _Side:
        twin = _Side(self.sign)
        twin.levels, twin.keys, twin.tokens = dict(self.levels), list(self.keys), dict(self.tokens)
        twin.crc = self.crc
        return twin

    def best(self) -> int:
        return self.keys[0] * self.sign

    def worst(self) -> int:
        return self.keys[-1] * self.sign

    def price_at(self, i: int) -> int:
        return self.keys[i] * self.sign

    def set(self, price: int, qty: int) -> None:
        if price not in self.levels:
            insort(self.keys, price * self.sign)
        self.levels[price] = qty
        self.tokens[price] = f"{price}{qty}"
        self.crc = None

    def delete(self, price: int) -> None:
        del self.levels[price]
        del self.tokens[price]
        del self.keys[bisect_left(self.keys, price * self.sign)]
        self.crc = None

    def pop_worst(self) -> int:
        price = self.keys.pop() * self.sign
        del self.levels[price]
        del self.tokens[price]
        return price

    def top_tokens(self) -> str:
        if self.crc is None:
            s, tk = self.sign, self.tokens
            self.crc = "".join([tk[k * s] for k in self.keys[:10]])
        return self.crc

    def top(self, n: int) -> list[Level]:
        s, lv = self.sign, self.levels
        return [(k * s, lv[k * s]) for k in self.keys[:n]]


class SymbolBook:
    """One symbol's book and its random walk. `step()` mutates and reports the change."""

    def __init__(self, spec: SymbolSpec, depth: int, seed: int, name: str) -> None:
        self.spec = spec
        self.depth = depth
        self.rng = random.Random(f"{seed}:{name}")
        self.bids = _Side(-1)
        self.asks = _Side(1)
        self.trades = 0
        self.last_price = spec.start_price
        self.volume = 0
        mid = spec.start_price
        rng = self.rng
        bid, ask = mid - 1, mid + 1
        for _ in range(depth):
            self.bids.set(bid, self._size())
            self.asks.set(ask, self._size())
            bid -= 1 + int(rng.expovariate(1.5))
            ask += 1 + int(rng.expovariate(1.5))

    def copy(self) -> SymbolBook:
        """An independent twin (rewind.py keeps many): ~20x cheaper than deepcopy."""
        twin = SymbolBook.__new__(SymbolBook)
        twin.spec, twin.depth = self.spec, self.depth
        twin.rng = random.Random()
        twin.rng.setstate(self.rng.getstate())
        twin.bids, twin.asks = self.bids.copy(), self.asks.copy()
        twin.trades, twin.last_price, twin.volume = self.trades, self.last_price, self.volume
        return twin

    def _size(self) -> int:
        return self.spec.lot * (1 + int(self.rng.expovariate(1 / 300)))

    def _pick(self, side: _Side) -> int:
        n = len(side.keys)
        return side.price_at(min(int(self.rng.expovariate(0.35)), n - 1))

    # -- events ---------------------------------------------------------------------

    def step(self) -> tuple[list[TradeFill], BookChange]:
        """One market event: a trade sweeping the touch (~12%) or a book edit."""
        if self.rng.random() < 0.12:
            return self._trade()
        return [], self._edit()

    def _edit(self) -> BookChange:
        rng = self.rng
        is_bid = rng.random() < 0.5
        side, other = (self.bids, self.asks) if is_bid else (self.asks, self.bids)
        changes: list[Level] = []
        evicted: list[int] = []
        r = rng.random()
        if r < 0.42 or (r >= 0.72 and len(side.keys) <= 2):
            price = self._pick(side)
            qty = self._size()
            side.set(price, qty)
            changes.append((price, qty))
        elif r < 0.72 or abs(other.best() - side.best()) > 6:
            best = side.best()
            spread = abs(other.best() - best)
            if spread > 1 and (spread > 6 or rng.random() < 0.6):
                # inside the spread: the touch comes back after a sweep (mean reversion)
                price = best - side.sign * (1 + int(rng.random() * min(spread - 1, 2)))
            else:
                price = best + side.sign * int(rng.expovariate(0.25))
            qty = self._size()
            side.set(price, qty)
            changes.append((price, qty))
            if len(side.keys) > self.depth:
                evicted.append(side.pop_worst())
        else:
            price = self._pick(side)
            side.delete(price)
            changes.append((price, 0))
            changes.extend(self._refill(side))
        if is_bid:
            return BookChange(changes, [], evicted, [])
        return BookChange([], changes, [], evicted)

    def _refill(self, side: _Side) -> list[Level]:
        """Keep the kept depth full: a new level behind the worst one."""
        out = []
        while len(side.keys) < self.depth:
            price = side.worst() + side.sign * (1 + int(self.rng.expovariate(1.0)))
            if price <= 0:
                break
            qty = self._size()
            side.set(price, qty)
            out.append((price, qty))
        return out

    def _trade(self) -> tuple[list[TradeFill], BookChange]:
        rng = self.rng
        buy = rng.random() < 0.5
        book = self.asks if buy else self.bids
        want = self._size() * (1 + int(rng.expovariate(0.7)))
        fills: list[TradeFill] = []
        changes: list[Level] = []
        while want > 0 and len(book.keys) > 1 and len(fills) < 4:
            price = book.best()
            avail = book.levels[price]
            qty = min(want, avail)
            want -= qty
            fills.append(TradeFill(price, qty, "buy" if buy else "sell"))
            if qty == avail:
                book.delete(price)
                changes.append((price, 0))
            else:
                book.set(price, avail - qty)
                changes.append((price, avail - qty))
        changes.extend(self._refill(book))
        self.trades += len(fills)
        self.last_price = fills[-1].price
        self.volume += sum(f.qty for f in fills)
        if buy:
            return fills, BookChange([], changes, [], [])
        return fills, BookChange(changes, [], [], [])

    # -- views ----------------------------------------------------------------------

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        return self.bids.top(n), self.asks.top(n)

    def checksum(self) -> int:
        """Kraken's CRC32 over the top 10 asks then bids; price and qty at the pair's
        precision with '.' and leading zeros dropped are exactly str(ticks), str(units)."""
        return zlib.crc32((self.asks.top_tokens() + self.bids.top_tokens()).encode())

    def is_crossed(self) -> bool:
        return self.bids.best() >= self.asks.best()
