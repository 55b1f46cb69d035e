"""The JSON wire form of records: decimals as canonical strings, lossless round trips."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.model import Book, Gap, Quote, Trade, to_fixed
from ssmd.model.codec import decode, encode, to_wire

INT64 = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)


def test_trade_wire_form_uses_canonical_decimal_strings() -> None:
    trade = Trade(
        venue="kraken",
        symbol="BTC-USD",
        ts_recv=1_618_680_000_000_000_000,
        price=to_fixed("55410.30000"),
        size=to_fixed("0.00100000"),
        side="sell",
        trade_id="42",
    )
    wire = to_wire(trade)
    assert wire["type"] == "trade"
    assert wire["price"] == "55410.3"
    assert wire["size"] == "0.001"
    assert decode(encode(trade)) == trade


def test_book_levels_are_pairs_of_strings() -> None:
    book = Book(
        venue="binance",
        symbol="ETH-USDT",
        ts_recv=5,
        seq=7,
        snapshot=False,
        bids=[(to_fixed("3000.01"), 0)],
        asks=[(to_fixed("3000.5"), to_fixed("12"))],
    )
    wire = to_wire(book)
    assert wire["bids"] == [["3000.01", "0"]]
    assert wire["asks"] == [["3000.5", "12"]]
    assert decode(encode(book)) == book


def test_decode_rejects_bad_records_with_a_reason() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        decode(b"{nope")
    with pytest.raises(ValueError, match="JSON object"):
        decode(b"[1]")
    with pytest.raises(ValueError, match="decimals"):
        decode(
            b'{"type":"trade","venue":"v","symbol":"s","ts_recv":1,"price":"0.0000000001","size":"1"}'
        )
    with pytest.raises(ValueError, match="invalid trade record"):
        decode(b'{"type":"trade","venue":"v","symbol":"s","price":"1","size":"1"}')


@given(bid=INT64, bsz=INT64, ask=INT64, asz=INT64, ts=st.integers(0, 2**63 - 1))
def test_quote_round_trip(bid: int, bsz: int, ask: int, asz: int, ts: int) -> None:
    quote = Quote(venue="v", symbol="S", ts_recv=ts, bid_px=bid, bid_sz=bsz, ask_px=ask, ask_sz=asz)
    assert decode(encode(quote)) == quote


def test_gap_round_trip_keeps_reason_and_window() -> None:
    gap = Gap(venue="kalshi", symbol="X", ts_recv=9, reason="sequence", since_ns=1, until_ns=2)
    assert decode(encode(gap)) == gap
    assert to_wire(gap)["reason"] == "sequence"


TEXT = st.text(max_size=12)
HEADER = {
    "feed": TEXT, "venue": TEXT, "symbol": TEXT, "iid": st.integers(0, 2**63 - 1),
    "ts_event": st.integers(0, 2**63 - 1), "ts_recv": st.integers(0, 2**63 - 1),
    "seq": st.integers(0, 2**63 - 1),
}  # fmt: skip
LEVELS = st.lists(st.tuples(INT64, INT64), max_size=5)


def reference(record: object) -> bytes:
    """The encoding the fast path must reproduce byte for byte."""
    return msgspec.json.encode(to_wire(record))  # type: ignore[arg-type]


@given(st.builds(Book, snapshot=st.booleans(), bids=LEVELS, asks=LEVELS, **HEADER))
def test_fast_book_encoding_is_the_reference_bytes(book: Book) -> None:
    assert encode(book) == reference(book)
    assert decode(encode(book)) == book


@given(st.builds(Trade, price=INT64, size=INT64, side=st.sampled_from(["buy", "sell", "unknown"]),
                 trade_id=TEXT, **HEADER))  # fmt: skip
def test_fast_trade_encoding_is_the_reference_bytes(trade: Trade) -> None:
    assert encode(trade) == reference(trade)


@given(st.builds(Quote, bid_px=INT64, bid_sz=INT64, ask_px=INT64, ask_sz=INT64, **HEADER))
def test_fast_quote_encoding_is_the_reference_bytes(quote: Quote) -> None:
    assert encode(quote) == reference(quote)
