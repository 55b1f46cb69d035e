"""The C path for Kraken v1 book frames (`ssmd._native.v1_book`) against the Python
reference (`KrakenV1Normalizer._frame`): the same records, counters, resyncs and book
state after every frame — on seeded streams (depth-10 evictions inside the top 10,
off-precision strings, prices beyond int64), on fuzzed copies of them (each mutation
either taken by C exactly as Python would, or declined and left to Python) and on the
fixture recording. Each test also counts the frames C took, so a C path that quietly
declined everything would fail here."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_paths import counting  # same directory
from test_kraken_v1_incremental import _stream

from ssmd.venues import kraken_v1
from ssmd.venues.kraken_v1 import KrakenV1Normalizer


def _compact(frames: list[str]) -> list[str]:
    """Kraken sends compact JSON (the generator's has spaces, which C leaves to Python)."""
    return [json.dumps(json.loads(f), separators=(",", ":")) for f in frames]


def _counting(native: bool) -> AbstractContextManager[list[int]]:
    return counting(kraken_v1, "_native_book", native)


def _state(n: KrakenV1Normalizer) -> dict[str, Any]:
    """Everything a later frame depends on, per book (checksum() last: it fills caches)."""
    out = {}
    for pair, s in n.books.items():
        tops = [(t.prices[:], t.tokens[:], dict(t.odd)) for t in (s.asks, s.bids)]
        out[pair] = (s.valid, s.book.snapshot(), tops, s.price_decimals, s.checksum())
    return out


def _run(frames: list[str] | list[bytes], native: bool, depth: int = 10) -> tuple[list[Any], int]:
    """Per frame: (records, resyncs, state); and how many frames C took."""
    with _counting(native) as taken:
        n = KrakenV1Normalizer()
        n.on_frame(
            f'{{"channelID":1,"channelName":"book-{depth}","event":"subscriptionStatus",'
            '"pair":"XBT/USD","status":"subscribed"}',
            0,
        )
        steps = []
        for i, frame in enumerate(frames):
            records = n.on_frame(frame, i + 1)
            steps.append((records, n.take_resyncs(), _state(n)))
        steps.append(n.stats)
    return steps, taken[0]


def test_the_c_path_is_built() -> None:
    assert kraken_v1.NATIVE, (
        "ssmd._native did not build: install a C compiler and zlib's header "
        "(Debian: apt install gcc zlib1g-dev) and reinstall (make install)"
    )


@pytest.mark.parametrize(("seed", "depth"), [(1, 10), (2, 10), (3, 25), (4, 1000), (6, 10)])
def test_c_and_python_agree_frame_by_frame(seed: int, depth: int) -> None:
    """Off-precision levels come and go, so the book passes between the two paths."""
    frames = _compact(_stream(seed, depth, 600))
    python, _ = _run(frames, native=False, depth=depth)
    native, taken = _run(frames, native=True, depth=depth)
    assert native == python
    assert python[-1].checksums_verified == len(frames) - 1
    assert 100 < taken < len(frames) - 100  # both paths took a real share of the frames


def _clean_stream(seed: int, depth: int, frames: int) -> list[str]:
    """A venue stream with every level at the pair's precision (the common shape), a
    snapshot ask beyond int64 nanos, deletes and depth evictions inside the top 10."""
    return _compact(_stream(seed, depth, frames, odd=False))


@pytest.mark.parametrize("seed", [7, 9, 11])
def test_c_takes_every_frame_of_the_common_shape(seed: int) -> None:
    """All but the snapshot, whose ask beyond int64 nanos is Python's to keep; the book
    keeps that level, so C's walks through the sorted keys meet it too."""
    frames = _clean_stream(seed, 10, 300)
    python, _ = _run(frames, native=False)
    native, taken = _run(frames, native=True)
    assert native == python
    assert python[-1].checksums_verified == 300
    assert taken == 300


_MUTATIONS: list[Callable[[str, st.DrawFn], str]] = [
    lambda f, d: f[: d(st.integers(0, max(len(f) - 1, 0)))],  # truncated
    lambda f, d: f.replace(",", ", ", 1),  # whitespace
    lambda f, d: f.replace('"c":"', '"c":"1', 1),  # checksum digit added
    lambda f, d: f.replace('"a":', '"x":', 1),  # unknown member
    lambda f, d: f.replace(".", "", 1),  # a level off-precision
    lambda f, d: f.replace('"a":[[', '"a":[["-', 1),  # a sign
    lambda f, d: f.replace('"]', '\\u0030"]', 1),  # an escape
    lambda f, d: f.replace("XBT/USD", "XBT/EUR"),  # a pair without a book
    lambda f, d: f.replace('"book-10"', '"trade"'),  # another channel
    lambda f, d: f + " ",  # trailing whitespace
    lambda f, d: f.replace("[", "[99999999999999999999", 1) if f.startswith("[1,") else f,
    lambda f, d: f.replace('"c":', '"c":"1","c":', 1),  # duplicate member
    lambda f, d: f.replace('],"c"', ',["1.00","1.00000000","x"]],"c"', 1),  # bad time
    lambda f, d: f.replace(',"c":"', ',"c":"0', 1),  # leading zero checksum
    lambda f, d: (  # one byte replaced
        (lambda i: f[:i] + d(st.sampled_from('[]{},:"0.9\x00é')) + f[i + 1 :])(
            d(st.integers(0, max(len(f) - 1, 0)))
        )
    ),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_frames_give_the_same_result_either_way(data: st.DataObject) -> None:
    frames = _clean_stream(8, 10, 40)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(frames) - 1))
        mutate = data.draw(st.sampled_from(_MUTATIONS))
        frames[i] = mutate(frames[i], data.draw)
    if data.draw(st.booleans()):
        frames = [f.encode() for f in frames]
    python, _ = _run(frames, native=False)
    native, _ = _run(frames, native=True)
    assert native == python


def test_non_utf8_and_huge_frames_are_left_to_python() -> None:
    frames = [b'[1,{"a":[["\xff"]]},"book-10","XBT/USD"]', b"[" * 100_000, "x" * 1_000_000]
    python, _ = _run(frames, native=False)
    native, taken = _run(frames, native=True)
    assert native == python and taken == 0
    assert python[-1].parse_errors == 3


def test_the_recording_is_the_same_either_way(fixtures_dir) -> None:
    from ssmd.cli.venue import load_recording

    frames, _ = load_recording(fixtures_dir / "recordings" / "KRAKEN.ws.50.0")
    data = [(f.payload.encode(), f.ts_recv) for f in frames if f.direction == "in"]

    def run(native: bool) -> tuple[list[Any], Any, int]:
        with _counting(native) as taken:
            n = KrakenV1Normalizer()
            records = [r for p, ts in data for r in n.on_frame(p, ts)]
            return records, n.stats, taken[0]

    records, stats, _ = run(False)
    native_records, native_stats, taken = run(True)
    assert native_records == records and native_stats == stats
    assert stats.checksums_verified == 4269
    book_frames = sum(1 for p, _ in data if p.startswith(b"[") and b'"book-' in p[-40:])
    # all but the XBT/CHF snapshot, whose asks reach 9999999997 (beyond int64 nanos)
    assert taken == book_frames - 1
