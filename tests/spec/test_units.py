"""Durations and sizes: exact values and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.spec import units


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("90s", 90 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("7d", 7 * 86400 * 10**9),
        ("1w", 7 * 86400 * 10**9),
        ("500ms", 500_000_000),
        ("250us", 250_000),
        ("1d12h", 36 * 3600 * 10**9),
        (" 2m ", 120 * 10**9),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert units.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "7 days", "7", "1.5h", "h", "-1s", "1y", "5mins"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(units.UnitError):
        units.parse_duration(text)


def test_format_duration() -> None:
    assert units.format_duration(0) == "0s"
    assert units.format_duration(5400 * 10**9) == "1h30m"
    assert units.format_duration(7 * 86400 * 10**9) == "7d"
    assert units.format_duration(1_500_000_000) == "1s500ms"


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("10GiB", 10 * 2**30),
        ("512MiB", 512 * 2**20),
        ("10GB", 10 * 10**9),
        ("1024", 1024),
        ("1.5KiB", 1536),
        ("0", 0),
        ("3 MB", 3_000_000),
    ],
)
def test_parse_size(text: str, n: int) -> None:
    assert units.parse_size(text) == n


def test_parse_size_errors_have_hints() -> None:
    with pytest.raises(units.UnitError) as exc:
        units.parse_size("10G")
    assert exc.value.hint == "did you mean 'GiB'?"
    with pytest.raises(units.UnitError) as exc:
        units.parse_size("10gib")
    assert exc.value.hint == "did you mean 'GiB'?"
    with pytest.raises(units.UnitError, match="whole number"):
        units.parse_size("1.5B")


def test_format_size() -> None:
    assert units.format_size(10 * 2**30) == "10GiB"
    assert units.format_size(2000) == "2KB"
    assert units.format_size(1500) == "1500B"
    assert units.format_size(0) == "0B"


@given(st.integers(min_value=0, max_value=10**20))
def test_duration_round_trip(ns: int) -> None:
    assert units.parse_duration(units.format_duration(ns)) == ns


@given(st.integers(min_value=0, max_value=2**62))
def test_size_round_trip(n: int) -> None:
    text = units.format_size(n)
    assert units.parse_size(text) == n
    assert len(text) <= len(f"{n}B")


@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(list(units.DURATION_UNITS)))))
def test_duration_parts_add_up(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{u}" for n, u in parts)
    expected = sum(n * units.DURATION_UNITS[u] for n, u in parts)
    if not parts:
        with pytest.raises(units.UnitError):
            units.parse_duration(text)
    else:
        assert units.parse_duration(text) == expected
