"""L2 book state with integrity checks (checksum, sequence, crossed) and resync decisions."""

from ssmd.book.checksum import kraken_checksum
from ssmd.book.integrity import BookState
from ssmd.book.l2 import L2Book, Level
from ssmd.book.sequence import BinanceStitcher, SeqTracker

__all__ = [
    "BinanceStitcher",
    "BookState",
    "L2Book",
    "Level",
    "SeqTracker",
    "kraken_checksum",
]
