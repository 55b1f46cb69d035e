"""The C path for Kraken v2 (and `sim`) book updates (`ssmd._native.v2_frame`) against
the Python reference (`KrakenV2Normalizer._frame`): the same records, counters, resyncs
and book state after every frame — on synthetic tapes (depth 10: evictions inside the
top 10; depth 25), on fuzzed copies (each mutation either taken by C exactly as Python
would, or declined and left to Python) and on the fixture recording rewritten as v2.
Each test also counts the frames C took, so a C path declining everything would fail."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from native_paths import counting  # same directory
from test_kraken_v2 import _as_v2  # v1 recording frames as v2

from ssmd.book.checksum import decimals_of
from ssmd.cli.venue import load_frames
from ssmd.model.native import _native
from ssmd.replay.synth import KrakenTape
from ssmd.venues import kraken_v2, sim
from ssmd.venues.kraken_v2 import KrakenV2Normalizer

T0 = 1_700_000_000_000_000_000


def _counting(native: bool) -> AbstractContextManager[list[int]]:
    return counting(kraken_v2, "_native_frame", native)


def _state(n: KrakenV2Normalizer) -> dict[str, Any]:
    """Everything a later frame depends on, per book (checksum() last: it fills caches)."""
    out = {}
    for name, s in n.books.items():
        tokens = (dict(s.ask_tokens), dict(s.bid_tokens))
        out[name] = (s.valid, s.book.snapshot(), tokens, s.scale, s.checksum(), s.bid_part)
    return out


def _tape(depth: int, frames: int, seed: int = 1) -> tuple[bytes, list[bytes]]:
    """(AssetPairs body, frames): instrument and book snapshots, then the market."""
    tape = KrakenTape(("BTC-USD", "ETH-USD", "SOL-USD"), seed=seed, depth=depth, start_ns=T0)
    head = [tape.instrument_snapshot()]
    head += [tape.book_snapshot(i) for i in range(3)]
    return tape.asset_pairs(), head + tape.take(frames)[0]


def _run(
    frames: list[bytes] | list[str], native: bool, make: Callable[[], KrakenV2Normalizer],
    rest: bytes | None = None,
) -> tuple[list[Any], int]:  # fmt: skip
    with _counting(native) as taken:
        n = make()
        if rest is not None:
            n.on_rest("http://sim/0/public/AssetPairs", rest, T0)
        steps = []
        for i, frame in enumerate(frames):
            records = n.on_frame(frame, T0 + i)
            steps.append((records, n.take_resyncs(), _state(n)))
        steps.append(n.stats)
    return steps, taken[0]


def test_the_c_path_is_built() -> None:
    assert kraken_v2.NATIVE and sim.NATIVE, (
        "ssmd._native did not build: install a C compiler and zlib's header "
        "(Debian: apt install gcc zlib1g-dev) and reinstall (make install)"
    )


def test_frames_from_outside_the_read_are_refused() -> None:
    n = sim.SimNormalizer()
    out: list = []
    for start in (-1, 2):
        with pytest.raises(ValueError, match=rf"start {start} outside 0\.\.1"):
            _native.native_frames(n.native, n.books, [(b"{}", T0, 0)], start, n.native_ctx, out, {})
    assert out == [] and n.stats.frames == 0


@pytest.mark.parametrize(("depth", "seed"), [(10, 1), (10, 2), (25, 3)])
@pytest.mark.parametrize("make", [sim.SimNormalizer, KrakenV2Normalizer])
def test_c_and_python_agree_frame_by_frame(depth: int, seed: int, make: Any) -> None:
    rest, frames = _tape(depth, 1500, seed)
    python, _ = _run(frames, False, lambda: make(depth=depth), rest)
    native, taken = _run(frames, True, lambda: make(depth=depth), rest)
    assert native == python
    updates = sum(1 for f in frames if f.startswith(b'{"channel":"book","type":"update"'))
    flows = sum(1 for f in frames if f.startswith((b'{"channel":"trade"', b'{"channel":"ticker"')))
    assert taken == updates + flows and updates > 900 and flows > 200
    assert python[-1].checksums_verified == updates + 3 and python[-1].checksums_failed == 0
    assert python[-1].records["trade"] > flows // 2 and python[-1].records["quote"] > flows // 4


_MUTATIONS: list[Callable[[bytes, st.DrawFn], bytes]] = [  # each applied at random frames
    lambda f, d: f[: d(st.integers(0, max(len(f) - 1, 0)))],  # truncated
    lambda f, d: f.replace(b",", b", ", 1),  # whitespace
    lambda f, d: f.replace(b'"checksum":', b'"checksum":1', 1),  # a wrong checksum
    lambda f, d: f.replace(b'"checksum":', b'"checksum":-', 1),  # a sign
    lambda f, d: f.replace(b'"qty":0', b'"qty":1', 1),  # a changed size
    lambda f, d: f.replace(b'"qty":', b'"qty":-', 1),  # a negative size
    lambda f, d: f.replace(b'"price":', b'"price":1e', 1),  # an exponent
    lambda f, d: f.replace(b'"price":', b'"price":0', 1),  # a leading zero
    lambda f, d: f.replace(b'"price":', b'"price":"', 1),  # a string
    lambda f, d: f.replace(b".", b".1234567890", 1),  # ten decimals
    lambda f, d: f.replace(b'"price":', b'"price":99999999999', 1),  # beyond int64 nanos
    lambda f, d: f.replace(b'"bids"', b'"bidz"', 1),  # an unknown member
    lambda f, d: f.replace(b'"symbol":"BTC/USD"', b'"symbol":"XBT/USD"'),  # no such book
    lambda f, d: f.replace(b'"update"', b'"snapshot"', 1),  # a snapshot (Python's)
    lambda f, d: f.replace(b'Z"', b'"', 1),  # a time in another shape
    lambda f, d: f.replace(b"-11-", b"-13-", 1),  # a month that is not
    lambda f, d: f.replace(b'"asks":', b'"asks":null,"x":', 1),  # asks not a list
    lambda f, d: f.replace(b'"bids":[', b'"bids":[{"price":1.5,"qty":1,"x":2},', 1),
    lambda f, d: f.replace(b'"side":"buy"', b'"side":5', 1),  # trades and tickers:
    lambda f, d: f.replace(b'"side":"sell"', b'"side":"SELL"', 1),
    lambda f, d: f.replace(b'"trade_id":', b'"trade_id":"', 1),
    lambda f, d: f.replace(b'"trade_id":', b'"trade_id":-', 1),
    lambda f, d: f.replace(b'"trade_id":', b'"trade_id":1.5,"t":', 1),
    lambda f, d: f.replace(b'"ord_type":"market"', b'"ord_type":["market"]', 1),
    lambda f, d: f.replace(b'"bid":', b'"bid":null,"b":', 1),
    lambda f, d: f.replace(b'"last":', b'"last":-1.5e-3,"x":', 1),
    lambda f, d: f.replace(b'"vwap":', b'"vwap":01,"x":', 1),
    lambda f, d: f.replace(b'"volume":', b'"volume":tru,"x":', 1),
    lambda f, d: f.replace(b'"ask_qty":', b'"ask_qty":1,"ask_qty":', 1),  # a duplicate
    lambda f, d: f.replace(b'"qty":', b'"qty":12345678901,"q":', 1),  # int beyond int64 nanos
    lambda f, d: f.replace(b'"symbol":"ETH/USD"', b'"symbol":"NEW/USD"'),  # not known yet
    lambda f, d: f.replace(b'"channel":"trade","type"', b'"type":"update","channel":"trade","x"'),
    lambda f, d: f + b" ",  # trailing whitespace
    lambda f, d: f.replace(b"]}]}", b"]},{}]}", 1),  # two entries
    lambda f, d: _replace_byte(f, d),
]


def _replace_byte(frame: bytes, draw: st.DrawFn) -> bytes:
    at = draw(st.integers(0, max(len(frame) - 1, 0)))
    byte = draw(st.sampled_from([b"[", b"]", b"{", b",", b'"', b"0", b"\xff"]))
    return frame[:at] + byte + frame[at + 1 :]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_frames_give_the_same_result_either_way(data: st.DataObject) -> None:
    rest, frames = _tape(10, 60, 4)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(4, len(frames) - 1))
        frames[i] = data.draw(st.sampled_from(_MUTATIONS))(frames[i], data.draw)
    python, _ = _run(frames, False, sim.SimNormalizer, rest)
    native, _ = _run(frames, True, sim.SimNormalizer, rest)
    assert native == python


def test_the_recording_as_v2_is_the_same_either_way(fixtures_dir) -> None:
    frames, precision = [], {}
    for frame in load_frames(fixtures_dir / "recordings" / "KRAKEN.ws.50.0"):
        if frame.direction == "in" and frame.payload.startswith("["):
            msg = msgspec.json.decode(frame.payload)
            if "as" in msg[1]:
                first = msg[1]["as"][0]
                precision[msg[-1]] = (decimals_of(first[0]), decimals_of(first[1]))
            frames.append(_as_v2(msg))

    def make() -> KrakenV2Normalizer:
        n = KrakenV2Normalizer(depth=1000)
        n.precision.update(precision)
        return n

    def run(native: bool) -> tuple[list[Any], Any, int]:
        with _counting(native) as taken:
            n = make()
            records = [r for i, f in enumerate(frames) for r in n.on_frame(f, i + 1)]
            return records, n.stats, taken[0]

    records, stats, _ = run(False)
    native_records, native_stats, taken = run(True)
    assert native_records == records and native_stats == stats
    assert stats.checksums_verified == 4269
    # every update (XBT/CHF's asks beyond int64 nanos come only in its snapshot)
    assert taken == sum(1 for f in frames if '"type":"update"' in f) == 4269


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_read_of_frames_at_once_is_each_frame_in_turn(data: st.DataObject) -> None:
    """`on_frames` (the connector's call per socket read) against `on_frame` per frame,
    on fuzzed tapes cut into reads at random: the same records frame by frame, the same
    resyncs, books and counters after; C takes the same frames either way."""
    rest, frames = _tape(10, 80, 5)
    first = len(frames)  # the first mutated frame
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(4, len(frames) - 1))
        frames[i] = data.draw(st.sampled_from(_MUTATIONS))(frames[i], data.draw)
        first = min(first, i)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(frames) - 1), max_size=12))))
    reads = [frames[a:b] for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True)]

    def run(batched: bool) -> tuple[list[Any], list[Any], dict[str, Any], Any, int]:
        with _counting(True) as taken:
            n = sim.SimNormalizer()
            n.on_rest("http://sim/0/public/AssetPairs", rest, T0)
            records: list[Any] = []
            stamped = [(f, T0 + i, i) for i, f in enumerate(frames)]
            if batched:
                start = 0
                for read in reads:
                    records += n.on_frames(stamped[start : start + len(read)])
                    start += len(read)
            else:
                records = [n.on_frame(f, ts) for f, ts, _ in stamped]
            return records, n.take_resyncs(), _state(n), n.stats, taken[0]

    batched, one_by_one = run(True), run(False)
    assert batched == one_by_one
    assert len(batched[0]) == len(frames)
    # C took at least every update, trade and ticker before the first mutation
    intact = frames[4:first]
    assert batched[4] >= len(intact) == sum(f.startswith(b'{"channel":"') for f in intact)


@pytest.mark.parametrize("token", ["7" * 60, "7½"])
def test_a_top_token_c_cannot_copy_gives_the_checksum_python_gives(token: str) -> None:
    """C copies the top-10 tokens straight into the checksum text; a token longer than
    its buffer or not ASCII (only Python could have made one) takes the general join.
    Planted in the asks' top level of every book: the same records, books and counters
    either way; each book updated in the tape (BTC, ETH) fails its next checksum, the
    gap naming the venue's CRC and ours of the planted text."""
    rest, frames = _tape(10, 40, 6)
    head = 4  # instruments, then the three snapshots

    def run(native: bool) -> tuple[list[Any], dict[str, Any], int]:
        with _counting(native) as taken:
            n = sim.SimNormalizer()
            n.on_rest("http://sim/0/public/AssetPairs", rest, T0)
            for i, f in enumerate(frames[:head]):
                n.on_frame(f, T0 + i)
            for s in n.books.values():
                s.ask_tokens[s.book.side_index("ask")[1][0]] = token
                s.crc_a = -1
            out = [n.on_frame(f, T0 + i) for i, f in enumerate(frames[head:], head)]
            return out, _state(n), taken[0]

    python, native = run(False), run(True)
    assert native[:2] == python[:2]
    gaps = [r for rs in python[0] for r in rs if r.__struct_config__.tag == "gap"]
    assert [(g.symbol, g.reason) for g in gaps] == [
        ("BTC-USD", "checksum"),
        ("ETH-USD", "checksum"),
    ]
    for g in gaps:
        venue, ours = (int(w) for w in g.detail.split() if w.isdigit())
        assert venue != ours
    assert native[2] > 0  # C took the first update of each book (and the trades)
