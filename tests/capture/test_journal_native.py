"""The journal line in C (`_native.journal_line`) against its reference
(`journal_format.append_line`): the same bytes for every payload C takes, and it takes
every payload Python's strict UTF-8 decoder takes; what it declines, `Journal.write`
writes through `encode_line` (`"b"` base64)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.capture import journal
from ssmd.capture.journal import Journal, SegmentPos, iter_segment, list_segments
from ssmd.capture.journal_format import (
    DIRECTIONS,
    append_line,
    append_lines,
    decode_line,
    encode_line,
)
from ssmd.model.native import _native

pytestmark = pytest.mark.skipif(_native is None, reason="ssmd._native not built")

S = 1_000_000_000
T0 = 1_709_290_795 * S
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
FRAG = b',"c":7,"d":"in","p":'

# Text full of what escaping and UTF-8 validation must get right: every character below
# 0x80, DEL, C1 controls, U+2028/9, BOM, the ends of each UTF-8 length, surrogates (as
# bytes: invalid), and anything else.
SPECIAL = [chr(c) for c in range(0x80)] + [
    *"\x80\x85\x9f\xa0\u07ff\u0800\u2028\u2029\ufeff\uffff\U00010000\U0010ffff"
]
CHARS = st.one_of(st.sampled_from(SPECIAL), st.integers(0, 0x10FFFF).map(chr))
TEXT = st.lists(CHARS, max_size=80).map("".join)


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Valid UTF-8 mostly; then some made invalid by a cut, a flipped or a stray byte."""
    data = draw(TEXT).encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["keep", "keep", "cut", "byte", "raw"]))
    if how == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "byte":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + data[at:]
    elif how == "raw":
        data = draw(st.binary(max_size=80))
    return data


def decodes(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def both(t: int, m: int, payload: Any, prefix: bytes = b"x") -> tuple[bool, bytes, bool, bytes]:
    """(taken, buffer) of C and of the reference, from the same non-empty buffer."""
    c_buf, py_buf = bytearray(prefix), bytearray(prefix)
    c_took = _native.journal_line(c_buf, t, m, FRAG, payload)
    py_took = append_line(py_buf, t, m, FRAG, payload)
    return c_took, bytes(c_buf), py_took, bytes(py_buf)


@settings(max_examples=3000, deadline=None)
@given(INT64, INT64, payloads())
def test_bytes_payload_matches_the_reference(t: int, m: int, payload: bytes) -> None:
    c_took, c_buf, py_took, py_buf = both(t, m, payload)
    assert c_took is py_took is decodes(payload)
    assert c_buf == py_buf


@settings(max_examples=1000, deadline=None)
@given(INT64, INT64, TEXT)
def test_str_payload_matches_the_reference(t: int, m: int, payload: str) -> None:
    c_took, c_buf, py_took, py_buf = both(t, m, payload)  # lone surrogates: both decline
    assert c_took is py_took
    assert c_buf == py_buf


def test_every_ascii_byte_and_run_length() -> None:
    """Each byte below 0x80 alone and at every offset of a run (the 8-byte steps)."""
    for c, n, at in itertools.product(range(0x80), (1, 7, 8, 9, 17), (0, 3, 7, 8)):
        payload = b"a" * at + bytes([c]) * n + b"b" * 5
        c_took, c_buf, _, py_buf = both(1, -1, payload, prefix=b"")
        assert c_took and c_buf == py_buf, payload


def test_utf8_edges_judged_as_python_does() -> None:
    """Every lead byte with the continuation bytes at each range's edges, whole and cut."""
    edges = (0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF)
    for lead in range(0x80, 0x100):
        for tail in itertools.product(edges, (0x80, 0xBF, 0x41), (0x80, 0xBF, 0xC0)):
            for cut in range(1, 5):
                payload = b"12345678" + bytes([lead, *tail])[:cut] + b"z"
                c_took, c_buf, py_took, py_buf = both(5, 6, payload)
                assert c_took is py_took is decodes(payload), payload
                assert c_buf == py_buf


def test_int64_ends_and_beyond() -> None:
    for t in (0, -1, 9, 10, -(1 << 63), (1 << 63) - 1, 10**18, -(10**18)):
        c_took, c_buf, _, py_buf = both(t, -t - 1 if t < 0 else t, b"{}")
        assert c_took and c_buf == py_buf
    buf = bytearray(b"x")
    assert _native.journal_line(buf, 1 << 63, 0, FRAG, b"{}") is False
    assert _native.journal_line(buf, 0, -(1 << 63) - 1, FRAG, b"{}") is False
    assert _native.journal_line(buf, 1.0, 0, FRAG, b"{}") is False
    assert _native.journal_line(buf, 0, 0, FRAG, memoryview(b"{}")) is False
    assert _native.journal_line(buf, 0, 0, FRAG, bytearray(b"{}")) is False
    assert buf == b"x"  # declined: nothing written
    with pytest.raises(TypeError):
        _native.journal_line(b"", 0, 0, FRAG, b"{}")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(payloads(), TEXT), st.integers(-5, 40), INT64), max_size=25),
    st.integers(0, 30),
    st.integers(1, 2_000),
    st.integers(-(1 << 62), 1 << 62),
)
def test_a_read_of_lines_matches_the_reference(
    frames: list[tuple[Any, int, int]], start: int, chunk: int, n: int
) -> None:
    """`journal_lines` (a read's lines in one call) against `append_lines`: the same
    buffer, positions and stopping frame, wherever the window, a declined payload or the
    chunk bound stops it (ts 0..29 in the window [0, 30))."""
    start = min(start, len(frames))
    got = []
    for fn in (_native.journal_lines, append_lines):
        buf, out = bytearray(b"x"), []
        stop = fn(buf, frames, start, FRAG, "seg", n, 0, 30, chunk, out, SegmentPos)
        got.append((stop, bytes(buf), out, [type(p) for p in out]))
    assert got[0] == got[1]
    stop = got[0][0]
    assert got[0][2] == [SegmentPos("seg", n + k) for k in range(stop - start)]
    if stop < len(frames) and len(got[0][1]) < chunk:  # stopped on a frame it refused
        payload, ts, _ = frames[stop]
        assert not (0 <= ts < 30 and append_line(bytearray(), ts, 0, FRAG, payload))


def test_a_read_starting_outside_the_frames_is_refused() -> None:
    frames = [(b"{}", 1, 1)]
    for start in (-1, 2):
        buf, out = bytearray(), []
        with pytest.raises(ValueError, match=rf"start {start} outside 0\.\.1"):
            _native.journal_lines(buf, frames, start, FRAG, "s", 0, 0, 9, 99, out, SegmentPos)
        assert (buf, out) == (bytearray(), [])


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """`Journal.write`'s C call, counting the lines it wrote."""
    count = [0]

    def call(*args: Any) -> bool:
        took = _native.journal_line(*args)
        count[0] += took
        return took

    monkeypatch.setattr(journal, "_append", call)
    yield count


def _write(root: Path, frames: list[tuple[str, bytes | str, str]]) -> bytes:
    """Journal `frames` (direction, payload, url) through the CHUNK spills; the lines."""
    with Journal(root, "e", "f", 0, 7, rotate_ns=3600 * S, rotate_bytes=1 << 40) as j:
        for i, (d, payload, url) in enumerate(frames):
            j.write(T0 + i, i - 3, d, payload, url)  # type: ignore[arg-type]
    (seg,) = list_segments(root, "e", "f")
    with seg.path.open("rb") as fh:  # a frame per spill: read them all
        return zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()


@settings(max_examples=30, deadline=None)
@given(st.lists(payloads(), min_size=1, max_size=40))
def test_journal_reads_back_the_exact_payloads(
    tmp_path_factory: pytest.TempPathFactory, frames: list[bytes]
) -> None:
    root = tmp_path_factory.mktemp("j")
    lines = _write(root, [("in", p, "") for p in frames])
    (seg,) = list_segments(root, "e", "f")
    assert [ln.data for ln in iter_segment(seg.path)] == frames
    for line, payload in zip(lines.splitlines(keepends=True), frames, strict=True):
        assert (b'"p":' in line) is decodes(payload)  # else `"b"`: base64


def test_c_path_taken_and_lines_as_the_python_writer(
    tmp_path: Path, taken: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    frames: list[tuple[str, bytes | str, str]] = []
    for i in range(3000):  # several CHUNKs: the spills happen in between
        text = f'{{"channel":"book","seq":{i},"data":[{{"price":"6{i}.5","q":"\\u00e9\\n"}}]}}'
        frames.append(("in", text.encode(), ""))
    frames += [("in", b"\xff\xfe", ""), ("rest", b"{}", "https://x/y?a=1"), ("open", "é", "")]
    frames += [(d, "\ud800", "") for d in DIRECTIONS]
    lines = _write(tmp_path / "c", frames)
    assert taken[0] == 3001  # the text frames and the `open`; not \xff, the url, surrogates
    monkeypatch.setattr(journal, "_append", append_line)  # the pure-Python writer
    assert _write(tmp_path / "py", frames) == lines
    expected = [encode_line(T0 + i, i - 3, 7, *f) for i, f in enumerate(frames)]
    assert lines.splitlines(keepends=True) == expected
    assert [decode_line(x).data for x in expected[-9:-7]] == [b"\xff\xfe", b"{}"]
