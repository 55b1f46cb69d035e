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
from operator import neg
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
        """Replace the whole book: a later duplicate price wins, zero sizes are dropped,
        the depth window is applied. Sorting and copying stay in C (snapshots are big)."""
        bid_map, ask_map = _nonzero(dict(bids)), _nonzero(dict(asks))
        bid_px = sorted(bid_map, reverse=True)
        ask_keys = sorted(ask_map)
        depth = self.max_depth
        if depth:
            for px in bid_px[depth:]:
                del bid_map[px]
            for px in ask_keys[depth:]:
                del ask_map[px]
            del bid_px[depth:], ask_keys[depth:]
        # in place: `side_index` hands out these very objects
        self.clear()
        self._bids.update(bid_map)
        self._asks.update(ask_map)
        self._bid_keys.extend(map(neg, bid_px))
        self._ask_keys.extend(ask_keys)

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

    def update(self, side: BookSide, price: int, size: int) -> tuple[int, int | None]:
        """`apply` that also says where the change landed, for top-N caches (checksums).

        Returns (rank, evicted): the 0-based rank of the level set, or of the level
        deleted as it stood before (-1 when deleting an absent level), and the price
        pushed out of the depth window (else None).
        """
        if side == "bid":
            levels, keys, key = self._bids, self._bid_keys, -price
        elif side == "ask":
            levels, keys, key = self._asks, self._ask_keys, price
        else:
            raise ValueError(f"side must be 'bid' or 'ask', not {side!r}")
        rank = bisect_left(keys, key)
        if size == 0:
            if levels.pop(price, None) is None:
                return -1, None
            del keys[rank]
            return rank, None
        if price in levels:
            levels[price] = size
            return rank, None
        levels[price] = size
        keys.insert(rank, key)
        if self.max_depth and len(keys) > self.max_depth:
            worst = keys.pop()
            worst_px = -worst if side == "bid" else worst
            del levels[worst_px]
            return rank, worst_px
        return rank, None

    def side_index(self, side: BookSide) -> tuple[dict[int, int], list[int]]:
        """The live (price -> size map, sorted keys) of a side, for a venue's hot loop
        that inlines `update`; bid keys are negated prices. The objects stay the same
        for the book's lifetime (snapshots and clears work in place)."""
        if side == "bid":
            return self._bids, self._bid_keys
        return self._asks, self._ask_keys

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

    def level_at(self, side: BookSide, rank: int) -> Level | None:
        """The level at a 0-based rank from the best, or None past the end of the side."""
        if side == "bid":
            if rank < len(self._bid_keys):
                px = -self._bid_keys[rank]
                return (px, self._bids[px])
            return None
        if rank < len(self._ask_keys):
            px = self._ask_keys[rank]
            return (px, self._asks[px])
        return None

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
        bid_px = list(map(neg, self._bid_keys))
        bids = list(zip(bid_px, map(self._bids.__getitem__, bid_px), strict=True))
        asks = list(zip(self._ask_keys, map(self._asks.__getitem__, self._ask_keys), strict=True))
        return bids, asks

    def __len__(self) -> int:
        """Total number of levels, both sides."""
        return len(self._bid_keys) + len(self._ask_keys)

    def __repr__(self) -> str:
        return f"L2Book(bid={self.best_bid()}, ask={self.best_ask()}, levels={len(self)})"


def _nonzero(levels: dict[int, int]) -> dict[int, int]:
    """`levels` without zero sizes (a snapshot seldom has any: checked in C first)."""
    if 0 in levels.values():
        return {px: sz for px, sz in levels.items() if sz}
    return levels
