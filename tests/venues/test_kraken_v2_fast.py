"""The v2 fast paths against their exact references: number text -> fixed-point against
the Decimal of the same text, timestamps against `parse_time`, and the per-level checksum
tokens against `kraken_checksum` from scratch after every frame of synthetic streams
(depth 10 evicts inside the top 10; deeper books update below it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.book.checksum import kraken_checksum
from ssmd.model.records import Gap
from ssmd.model.time import parse_time
from ssmd.replay.synth import KrakenTape
from ssmd.venues.kraken_v2 import KrakenV2Normalizer, _level, _Num, _ts

JSON_NUMBER = st.from_regex(
    r"-?(0|[1-9][0-9]{0,19})(\.[0-9]{1,13})?([eE][+-]?[0-9]{1,2})?", fullmatch=True
)


def _outcome(value: object) -> object:
    try:
        return _level(value)
    except (ValueError, ArithmeticError) as exc:
        return type(exc)


@given(JSON_NUMBER)
def test_number_text_parses_exactly_like_its_decimal(text: str) -> None:
    assert _outcome(_Num(text)) == _outcome(Decimal(text))


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)))
def test_timestamp_fast_path_is_parse_time(moment: datetime) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _ts(text) == parse_time(text)
    later = (moment + timedelta(microseconds=1)).replace(tzinfo=UTC).isoformat()
    assert _ts(later) == parse_time(later)  # another shape: the general parser


@pytest.mark.parametrize(("depth", "seed"), [(10, 1), (10, 2), (25, 3), (100, 4)])
def test_token_checksum_is_the_from_scratch_checksum(depth: int, seed: int) -> None:
    tape = KrakenTape(["BTC/USD", "ETH/EUR", "ADA/USD"], seed=seed, depth=depth, start_ns=0)
    norm = KrakenV2Normalizer(depth=depth)
    norm.on_frame(tape.instrument_snapshot(), 0)
    frames = [tape.book_snapshot(i) for i in range(3)] + tape.take(3000)[0]
    for n, frame in enumerate(frames):
        out = norm.on_frame(frame, n)
        assert not [r for r in out if isinstance(r, Gap)], out
        for state in norm.books.values():
            expected = kraken_checksum(state.book, state.price_decimals, state.qty_decimals)
            assert state.checksum() == expected
    assert norm.stats.checksums_verified > 2000
