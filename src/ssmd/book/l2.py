"""An L2 order book over exact fixed-point prices.

Each side is a dict (price -> size) plus a sorted list of keys kept with `bisect`,
so an update costs a dict write and, for a new or removed level, one binary search
and a memmove; reading the top N levels is a slice. Bids are keyed by the negated
price so that both key lists are "best first" in ascending order.

`max_depth` mirrors venues that keep only the subscribed depth (Kraken): after an
insert the worst level beyond the window is dropped, and `apply` returns its price
so the caller can tell consumers (the venue never sends a delete for it).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import Literal

from ssmd.model.records import Level

BookSide = Literal["bid", "ask"]

__all__ = ["BookSide", "L2Book", "Level"]


class L2Book:
    """Price levels of one instrument. Not thread-safe; one owner per book."""

    __slots__ = ("_ask_keys", "_asks", "_bid_keys", "_bids", "max_depth")

    def __init__(self, max_depth: int = 0) -> None:
        self.max_depth = max_depth
        """Levels kept per side (0 = unbounded)."""
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._bid_keys: list[int] = []  # negated prices, ascending = best first
        self._ask_keys: list[int] = []  # prices, ascending = best first

    # -- writes ---------------------------------------------------------------

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """Replace the whole book; zero sizes are ignored, the depth window is applied."""
        self.clear()
        self._bids.update((px, sz) for px, sz in bids if sz)
        self._asks.update((px, sz) for px, sz in asks if sz)
        self._bid_keys[:] = sorted(-px for px in self._bids)
        self._ask_keys[:] = sorted(self._asks)
        if self.max_depth:
            while len(self._bid_keys) > self.max_depth:
                del self._bids[-self._bid_keys.pop()]
            while len(self._ask_keys) > self.max_depth:
                del self._asks[self._ask_keys.pop()]

    def apply(self, side: BookSide, price: int, size: int) -> int | None:
        """Set one level to an absolute size (0 deletes).

        Returns the price of a level pushed out of the depth window, else None.
        Deleting an absent level is a no-op (venues do send those).
        """
        if side == "bid":
            levels, keys, key = self._bids, self._bid_keys, -price
        elif side == "ask":
            levels, keys, key = self._asks, self._ask_keys, price
        else:
            raise ValueError(f"side must be 'bid' or 'ask', not {side!r}")
        if size == 0:
            if levels.pop(price, None) is not None:
                del keys[bisect_left(keys, key)]
            return None
        if price in levels:
            levels[price] = size
            return None
        levels[price] = size
        insort(keys, key)
        if self.max_depth and len(keys) > self.max_depth:
            worst = keys.pop()
            worst_px = -worst if side == "bid" else worst
            del levels[worst_px]
            return worst_px
        return None

    # -- reads ----------------------------------------------------------------

    def best_bid(self) -> Level | None:
        if not self._bid_keys:
            return None
        px = -self._bid_keys[0]
        return (px, self._bids[px])

    def best_ask(self) -> Level | None:
        if not self._ask_keys:
            return None
        px = self._ask_keys[0]
        return (px, self._asks[px])

    def top(self, side: BookSide, n: int) -> list[Level]:
        """The best `n` levels of a side, best first."""
        if side == "bid":
            bids = self._bids
            return [(-k, bids[-k]) for k in self._bid_keys[:n]]
        asks = self._asks
        return [(k, asks[k]) for k in self._ask_keys[:n]]

    def top_prices(self, side: BookSide, n: int) -> list[int]:
        """Prices of the best `n` levels of a side, best first (cheaper than `top`)."""
        if side == "bid":
            return [-k for k in self._bid_keys[:n]]
        return self._ask_keys[:n]

    def within_top(self, side: BookSide, price: int, n: int) -> bool:
        """Is `price` at or better than the n-th best level (or the side shorter than n)?

        Asked right after applying a level, this says whether the update could have
        changed the top n (what a top-n checksum covers).
        """
        if side == "bid":
            keys = self._bid_keys
            return len(keys) < n or -price <= keys[n - 1]
        keys = self._ask_keys
        return len(keys) < n or price <= keys[n - 1]

    def size_at(self, side: BookSide, price: int) -> int:
        """Size resting at a price (0 if none)."""
        return (self._bids if side == "bid" else self._asks).get(price, 0)

    def depth(self, side: BookSide) -> int:
        return len(self._bid_keys if side == "bid" else self._ask_keys)

    def is_crossed(self) -> bool:
        """Best bid >= best ask (locked or crossed): not a tradable state on a lit book."""
        if not self._bid_keys or not self._ask_keys:
            return False
        return -self._bid_keys[0] >= self._ask_keys[0]

    def is_locked(self) -> bool:
        """Best bid == best ask."""
        if not self._bid_keys or not self._ask_keys:
            return False
        return -self._bid_keys[0] == self._ask_keys[0]

    def is_strictly_crossed(self) -> bool:
        """Best bid > best ask."""
        if not self._bid_keys or not self._ask_keys:
            return False
        return -self._bid_keys[0] > self._ask_keys[0]

    def snapshot(self) -> tuple[list[Level], list[Level]]:
        """(bids best first, asks best first)."""
        return self.top("bid", len(self._bid_keys)), self.top("ask", len(self._ask_keys))

    def __len__(self) -> int:
        """Total number of levels, both sides."""
        return len(self._bid_keys) + len(self._ask_keys)

    def __repr__(self) -> str:
        return f"L2Book(bid={self.best_bid()}, ask={self.best_ask()}, levels={len(self)})"
