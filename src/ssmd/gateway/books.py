"""Live L2 book cache of the gateway: what a `book` subscriber gets first.

Why a cache and not "read back the last snapshot": a snapshot can be hours old (venues
send one on subscribe and on resync), so reconstructing on every subscribe would re-read
the stream each time. The gateway keeps one book per symbol, fed by the same shared
consumer that fans out the deltas, so the book handed to a new subscriber and the first
delta it then receives meet exactly (same event-loop step, same stream order).

A book known to be wrong is never served (DESIGN.md, "Guarantees"): a `gap` record of the
symbol newer than the last snapshot makes the book unknown until the next snapshot. The
rule compares `ts_recv`, not arrival order, because gaps and books come from two
consumers (two subjects) whose relative order is not guaranteed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ssmd.model.codec import encode
from ssmd.model.records import Book


@dataclass
class BookState:
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    snapshot_ts: int = -1
    """ts_recv of the snapshot the book starts from; -1 = none seen."""
    gap_ts: int = -1
    """ts_recv of the newest gap record of the symbol."""
    last: Book | None = None
    """The newest record applied (its feed, venue, iid, times, seq go on the served book)."""
    seq: int = 0
    """Stream sequence of the newest record applied."""

    @property
    def known(self) -> bool:
        return self.snapshot_ts >= 0 and self.snapshot_ts > self.gap_ts


class BookCache:
    """Books of one feed, by symbol."""

    def __init__(self) -> None:
        self.books: dict[str, BookState] = {}

    def apply(self, book: Book, stream_seq: int = 0) -> None:
        state = self.books.get(book.symbol)
        if state is None:
            state = self.books[book.symbol] = BookState()
        if book.snapshot:
            state.bids = dict(book.bids)
            state.asks = dict(book.asks)
            state.snapshot_ts = book.ts_recv
        elif not state.known:
            return
        else:
            for side, levels in ((state.bids, book.bids), (state.asks, book.asks)):
                for px, sz in levels:
                    if sz:
                        side[px] = sz
                    else:
                        side.pop(px, None)
        state.last = book
        state.seq = stream_seq

    def gap(self, symbol: str, ts_recv: int) -> None:
        state = self.books.get(symbol)
        if state is None:
            state = self.books[symbol] = BookState()
        state.gap_ts = max(state.gap_ts, ts_recv)

    def current(self, symbol: str) -> Book | None:
        """The book now as one snapshot record, or None when it is not known."""
        state = self.books.get(symbol)
        if state is None or not state.known or state.last is None:
            return None
        last = state.last
        return Book(
            feed=last.feed, venue=last.venue, symbol=last.symbol, iid=last.iid,
            ts_event=last.ts_event, ts_recv=last.ts_recv, seq=last.seq, snapshot=True,
            bids=sorted(state.bids.items(), reverse=True), asks=sorted(state.asks.items()),
        )  # fmt: skip

    def unknown_reason(self, symbol: str) -> str:
        state = self.books.get(symbol)
        if state is None or state.snapshot_ts < 0:
            return "no snapshot seen since the gateway started watching this book"
        return f"gap at ts_recv {state.gap_ts} after the last snapshot; waiting for a resync"

    def symbols(self) -> list[str]:
        return sorted(self.books)

    def encoded(self, symbol: str) -> bytes | None:
        book = self.current(symbol)
        return None if book is None else encode(book)
