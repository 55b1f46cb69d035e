"""Decimal <-> fixed-point: exact round trips (hypothesis), and the fast book parser agrees."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.model import fixed
from ssmd.model.fixed import INT64_MAX, from_fixed, to_decimal, to_fixed
from ssmd.venues._normalizer import parse_fixed

FIXED = st.integers(min_value=-INT64_MAX, max_value=INT64_MAX)
DECIMALS = st.decimals(
    min_value=Decimal("-9223372036"), max_value=Decimal("9223372036"), places=9,
    allow_nan=False, allow_infinity=False,
)  # fmt: skip


@given(FIXED)
def test_fixed_string_fixed(value: int) -> None:
    text = from_fixed(value)
    assert to_fixed(text) == value
    assert "e" not in text.lower() and not text.endswith(".")
    assert to_decimal(value) == Decimal(text)


@given(DECIMALS)
def test_decimal_fixed_decimal(value: Decimal) -> None:
    assert to_decimal(to_fixed(value)) == value
    assert to_fixed(str(value)) == to_fixed(value)


@given(st.integers(min_value=0, max_value=10**20), st.integers(min_value=0, max_value=9))
def test_fast_parser_matches(units: int, places: int) -> None:
    whole, frac = divmod(units, 10**places)
    text = f"{whole}.{frac:0{places}d}" if places else str(whole)
    expected = int(Decimal(text).scaleb(9))
    assert parse_fixed(text) == expected
    if expected <= INT64_MAX:
        assert to_fixed(text) == expected


@pytest.mark.parametrize("bad", ["", ".", "1.2.3", "abc", "1e5", "-1", "0.0000000001", " 1"])
def test_fast_parser_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_fixed(bad)


def _outcome(parse, text: str) -> object:
    try:
        return parse(text)
    except ValueError:
        return ValueError


def _general(text: str) -> int:
    """`to_fixed` of a string without its fast path: `_parse_str`, then the range check."""
    out = fixed._parse_str(text)
    if not -INT64_MAX <= out <= INT64_MAX:
        raise ValueError(text)
    return out


NUMBER_TEXT = st.from_regex(r"[-+ ]?[0-9٣]{0,21}(\.[0-9٣]{0,12})?([eE]-?[0-9])?", fullmatch=True)


@given(NUMBER_TEXT | st.text(max_size=12))
def test_to_fixed_fast_path_is_the_general_parse(text: str) -> None:
    assert _outcome(to_fixed, text) == _outcome(_general, text)
