"""Time parsing: ns or ISO-8601, always UTC ns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.model.time import format_ns, parse_time


def test_iso_and_ns_forms() -> None:
    assert parse_time("1970-01-01T00:00:01Z") == 1_000_000_000
    assert parse_time("2021-04-17T17:00:00") == 1_618_678_800_000_000_000
    assert parse_time("2021-04-17T19:00:00+02:00") == 1_618_678_800_000_000_000
    assert parse_time("1618678800000000000") == 1_618_678_800_000_000_000
    assert parse_time(7) == 7
    assert parse_time("2021-04-17T17:00:00.5Z") == 1_618_678_800_500_000_000


def test_bad_time_says_which_forms_work() -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time("yesterday")


def test_format_ns_keeps_nanoseconds() -> None:
    assert format_ns(1_618_678_800_000_000_001) == "2021-04-17T17:00:00.000000001Z"


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))
def test_format_then_parse_is_identity(ns: int) -> None:
    assert parse_time(format_ns(ns)) == ns
