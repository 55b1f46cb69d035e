"""Per-symbol book state: whether it may be served, and how a failure withdraws it.

A failure (checksum, sequence, crossed, parse) produces a `Gap` record (the venue
normalizer's `fail`) and marks the book invalid: the normalizer stops emitting book
records for that symbol until a new snapshot arrives, so a consumer never receives a
book we know to be wrong.
"""

from __future__ import annotations

from ssmd.book.l2 import L2Book

__all__ = ["BookState", "crossed_detail"]


class BookState:
    """One symbol's book, whether it may be served, and its venue precision."""

    __slots__ = ("book", "iid", "price_decimals", "qty_decimals", "symbol", "valid", "venue_symbol")

    def __init__(self, venue_symbol: str, symbol: str, iid: int = 0, max_depth: int = 0) -> None:
        self.venue_symbol = venue_symbol
        self.symbol = symbol
        self.iid = iid
        self.book = L2Book(max_depth)
        self.valid = False
        """True between a good snapshot and the next integrity failure."""
        self.price_decimals = -1
        self.qty_decimals = -1

    def invalidate(self) -> None:
        """Drop the state: it is known wrong, only a fresh snapshot can fix it."""
        self.valid = False
        self.book.clear()


def crossed_detail(book: L2Book) -> str:
    bid, ask = book.best_bid(), book.best_ask()
    kind = "locked" if book.is_locked() else "crossed"
    return f"book {kind}: best bid {bid} >= best ask {ask}"
