"""What the two Coinbase protocols share (private): per-product L2 books with a crossed check.

Both Coinbase feeds send absolute level sizes (0 deletes) after a full snapshot, so the
book logic is the same; only the envelopes differ.
"""

from __future__ import annotations

from ssmd.book.l2 import L2Book
from ssmd.model.records import Level, Record
from ssmd.venues._normalizer import NormalizerBase

__all__ = ["CoinbaseBooks"]


class CoinbaseBooks:
    """Books of one connection. A product is live after a snapshot; crossed means resync."""

    def __init__(self, owner: NormalizerBase) -> None:
        self._owner = owner
        self.books: dict[str, L2Book] = {}
        self._warned: set[str] = set()

    def snapshot(
        self,
        product: str,
        bids: list[Level],
        asks: list[Level],
        ts_event: int,
        ts_recv: int,
        seq: int = 0,
    ) -> list[Record]:
        book = self.books.get(product)
        if book is None:
            book = self.books[product] = L2Book()
        book.apply_snapshot(bids, asks)
        self._warned.discard(product)
        out: list[Record] = [
            self._owner.book_record(product, True, bids, asks, ts_event, ts_recv, seq)
        ]
        return out + self._check(product, ts_event, ts_recv, seq)

    def update(
        self,
        product: str,
        bids: list[Level],
        asks: list[Level],
        ts_event: int,
        ts_recv: int,
        seq: int = 0,
    ) -> list[Record]:
        book = self.books.get(product)
        if book is None:
            if product in self._warned:
                return []
            self._warned.add(product)
            return [
                self._owner.gap(
                    "resync",
                    product,
                    ts_recv,
                    "book update before any snapshot; dropped until the next snapshot",
                    seq=seq,
                    ts_event=ts_event,
                )
            ]
        for px, sz in bids:
            book.apply("bid", px, sz)
        for px, sz in asks:
            book.apply("ask", px, sz)
        out: list[Record] = [
            self._owner.book_record(product, False, bids, asks, ts_event, ts_recv, seq)
        ]
        return out + self._check(product, ts_event, ts_recv, seq)

    def invalidate(self, products: list[str] | None = None) -> list[str]:
        """Forget books (after a sequence gap); returns the products that had one."""
        names = list(self.books) if products is None else [p for p in products if p in self.books]
        for name in names:
            del self.books[name]
            self._warned.add(name)
        return names

    def _check(self, product: str, ts_event: int, ts_recv: int, seq: int) -> list[Record]:
        book = self.books[product]
        if not book.is_crossed():
            return []
        bid, ask = book.best_bid(), book.best_ask()
        del self.books[product]
        self._warned.add(product)
        self._owner.resync("resubscribe", [product], "crossed book")
        detail = f"best bid {bid} >= best ask {ask}; book dropped until a new snapshot"
        return [self._owner.gap("crossed", product, ts_recv, detail, seq=seq, ts_event=ts_event)]
