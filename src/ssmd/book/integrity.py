"""Per-symbol book state: whether it may be served, and how a failure withdraws it.

A failure (checksum, sequence, crossed, parse) produces a `Gap` record (the venue
normalizer's `fail`) and marks the book invalid: the normalizer stops emitting book
records for that symbol until a new snapshot arrives, so a consumer never receives a
book we know to be wrong.
"""

from __future__ import annotations

from ssmd.book.l2 import L2Book

__all__ = ["BookState", "crossed_detail"]


RESYNC_TIMEOUT_NS = 2_000_000_000
"""How long a resynced book may wait for its snapshot before the resync is asked again."""


class BookState:
    """One symbol's book, whether it may be served, and its venue precision."""

    __slots__ = (
        "book", "iid", "invalid_since", "price_decimals", "qty_decimals", "symbol", "valid",
        "venue_symbol",
    )  # fmt: skip

    def __init__(self, venue_symbol: str, symbol: str, iid: int = 0, max_depth: int = 0) -> None:
        self.venue_symbol = venue_symbol
        self.symbol = symbol
        self.iid = iid
        self.book = L2Book(max_depth)
        self.valid = False
        """True between a good snapshot and the next integrity failure."""
        self.price_decimals = -1
        self.qty_decimals = -1
        self.invalid_since = 0
        """ts_recv when the book was last declared wrong (or its resync last re-asked)."""

    def invalidate(self, ts_recv: int = 0) -> None:
        """Drop the state: it is known wrong, only a fresh snapshot can fix it."""
        self.valid = False
        self.book.clear()
        self.invalid_since = ts_recv

    def overdue(self, ts_recv: int, timeout_ns: int = RESYNC_TIMEOUT_NS) -> bool:
        """True (once per `timeout_ns`) while an invalid book waits in vain for its
        snapshot — the resubscribe got lost — so the normalizer asks again. Judged on
        ts_recv, so reprocessing the journal decides exactly as the live run did."""
        if self.valid or not self.invalid_since or ts_recv - self.invalid_since < timeout_ns:
            return False
        self.invalid_since = ts_recv
        return True


def crossed_detail(book: L2Book) -> str:
    bid, ask = book.best_bid(), book.best_ask()
    kind = "locked" if book.is_locked() else "crossed"
    return f"book {kind}: best bid {bid} >= best ask {ask}"
