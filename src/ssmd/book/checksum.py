"""Kraken's CRC32 book checksum (spot WS v1 and v2).

Both versions checksum the top 10 asks (low to high) then the top 10 bids (high to
low); each level contributes its price then its quantity, written at the pair's
precision with the '.' removed and leading zeros stripped. v1 sends those decimal
strings on the wire; v2 sends JSON numbers and says to format them with the pair's
`price_precision` / `qty_precision`. From fixed-point integers both reduce to
`str(value scaled to the precision)`, so one function serves both.
Sources: docs.kraken.com guides "Book checksum (WebSocket v1)" and "(WebSocket v2)".
"""

from __future__ import annotations

from zlib import crc32

from ssmd.book.l2 import L2Book
from ssmd.model.fixed import DECIMALS

CHECKSUM_LEVELS = 10

__all__ = ["CHECKSUM_LEVELS", "checksum_input", "decimals_of", "kraken_checksum", "scaler"]


def scaler(decimals: int) -> tuple[int, int]:
    """(divisor, multiplier) turning a 1e-9 fixed-point value into an integer at `decimals`."""
    if decimals <= DECIMALS:
        return 10 ** (DECIMALS - decimals), 1
    return 1, 10 ** (decimals - DECIMALS)


def decimals_of(text: str) -> int:
    """Digits after the '.' in a venue decimal string ('0.05000' -> 5)."""
    _, dot, frac = text.partition(".")
    return len(frac) if dot else 0


def checksum_input(book: L2Book, price_decimals: int, qty_decimals: int) -> str:
    """The string Kraken feeds to CRC32 for this book (exposed for debugging)."""
    pdiv, pmul = scaler(price_decimals)
    qdiv, qmul = scaler(qty_decimals)
    parts = [
        f"{px // pdiv * pmul}{sz // qdiv * qmul}"
        for px, sz in book.top("ask", CHECKSUM_LEVELS) + book.top("bid", CHECKSUM_LEVELS)
    ]
    return "".join(parts)


def kraken_checksum(book: L2Book, price_decimals: int, qty_decimals: int) -> int:
    """Unsigned CRC32 of the checksum input, as Kraken sends it (v1 as a string, v2 a number)."""
    return crc32(checksum_input(book, price_decimals, qty_decimals).encode("ascii"))
