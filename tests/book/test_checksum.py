"""Kraken checksum string rules on hand-built books."""

from __future__ import annotations

from zlib import crc32

from ssmd.book.checksum import checksum_input, decimals_of, kraken_checksum, scaler
from ssmd.book.l2 import L2Book
from ssmd.model.fixed import to_fixed


def test_checksum_input_follows_kraken_formatting() -> None:
    book = L2Book()
    book.apply_snapshot(
        [(to_fixed("0.04940"), to_fixed("0.00000500")), (to_fixed("0.04765"), to_fixed("1.5"))],
        [(to_fixed("0.05120"), to_fixed("0.00000500")), (to_fixed("10.00000"), to_fixed("2"))],
    )
    # asks low->high, then bids high->low; '.' removed, leading zeros stripped
    text = "5120" + "500" + "1000000" + "200000000" + "4940" + "500" + "4765" + "150000000"
    assert checksum_input(book, 5, 8) == text
    assert kraken_checksum(book, 5, 8) == crc32(text.encode())


def test_only_top_ten_levels_count() -> None:
    book = L2Book()
    book.apply_snapshot([(to_fixed(str(p)), to_fixed("1")) for p in range(1, 30)], [])
    base = kraken_checksum(book, 1, 1)
    book.apply("bid", to_fixed("1"), to_fixed("3"))  # 29th level: outside the top 10
    assert kraken_checksum(book, 1, 1) == base
    book.apply("bid", to_fixed("25"), to_fixed("3"))
    assert kraken_checksum(book, 1, 1) != base


def test_precision_helpers() -> None:
    assert decimals_of("0.05000") == 5 and decimals_of("12") == 0
    assert scaler(5) == (10_000, 1) and scaler(12) == (1, 1000)
