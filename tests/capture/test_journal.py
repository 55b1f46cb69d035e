"""Raw journal: round trip, rotation names, manifests, reader, listing, verification."""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path

import msgspec
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import ssmd
from ssmd.capture.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalCorrupt,
    JournalError,
    decode_line,
    encode_line,
    iter_segment,
    list_segments,
    open_segments,
    read_manifest,
    verify_segment,
)
from ssmd.capture.journal_read import SegmentTail
from ssmd.venues.recording import iter_journal

S = 1_000_000_000
T0 = 1_709_290_795 * S  # 2024-03-01T10:59:55Z
BIG = 1 << 40


class FakeClock:
    """Monotonic clock the test moves by hand (flush scheduling)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def journal(root: Path, **kw: object) -> Journal:
    args: dict = {"rotate_ns": BIG, "rotate_bytes": BIG} | kw
    return Journal(root, "dev", "kraken", 3, 1, **args)


payloads = st.lists(st.text() | st.binary(), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(payloads)
def test_round_trip_text_and_binary(items: list[str | bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        j = journal(Path(tmp))
        positions = [j.write(T0 + i, i, "in", p) for i, p in enumerate(items)]
        j.close()
        path = positions[0].path
        assert [p.line for p in positions] == list(range(len(items)))
        back = list(iter_segment(path))
    assert len(back) == len(items)
    for i, (p, line) in enumerate(zip(items, back, strict=True)):
        assert (line.t, line.m, line.c, line.d) == (T0 + i, i, 1, "in")
        if isinstance(p, str):
            assert line.payload == p
        else:  # bytes: exact bytes back (valid UTF-8 comes back as the same text)
            assert line.data == p
            assert isinstance(line.payload, bytes) or line.payload == p.decode()


@given(st.text() | st.binary(), st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_line_codec_is_exact(p: str | bytes, t: int, m: int) -> None:
    raw = encode_line(t, m, 7, "out", p)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    line = decode_line(raw)
    assert (line.t, line.m, line.c, line.d) == (t, m, 7, "out")
    assert line.data == (p if isinstance(p, bytes) else p.encode())


def test_binary_encoding_on_the_wire() -> None:
    assert encode_line(5, 6, 0, "in", b"\xff\x00") == b'{"t":5,"m":6,"c":0,"d":"in","b":"/wA="}\n'
    text = encode_line(5, 6, 0, "in", b'{"a":1}')
    assert text == b'{"t":5,"m":6,"c":0,"d":"in","p":"{\\"a\\":1}"}\n'
    rest = encode_line(5, 6, 0, "rest", "{}", url="https://x/depth")
    assert rest == b'{"t":5,"m":6,"c":0,"d":"rest","p":"{}","u":"https://x/depth"}\n'
    lone = decode_line(encode_line(1, 1, 0, "in", "a\ud800"))
    assert lone.data == "a\ud800".encode("utf-8", "surrogatepass")
    # hand-written journals may hold the frame as a JSON value
    assert decode_line('{"t":1,"d":"in","p":{"x":[1]}}').payload == '{"x":[1]}'
    with pytest.raises(ValueError):
        encode_line(1, 1, 0, "sideways", "x")


def test_recording_reader_shares_the_format(tmp_path: Path) -> None:
    j = journal(tmp_path)
    pos = j.write(T0, 1, "in", '{"event":"heartbeat"}')
    j.write(T0 + 1, 2, "rest", "{}", url="https://api/x")
    j.write(T0 + 2, 3, "in", b"\xfe")
    j.close()
    text = zstandard.ZstdDecompressor().decompressobj().decompress(pos.path.read_bytes())
    frames = list(iter_journal(text.decode().splitlines()))
    assert [(f.ts_recv, f.direction, f.payload, f.endpoint) for f in frames[:2]] == [
        (T0, "in", '{"event":"heartbeat"}', ""),
        (T0 + 1, "rest", "{}", "https://api/x"),
    ]
    assert frames[2].payload.encode("utf-8", "surrogateescape") == b"\xfe"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=300).map(str.encode) | st.binary(max_size=300),
            st.sampled_from([0, 1, 1000, S // 3, 2 * S, 3600 * S]),  # ts steps: same, flush, hour
        ),
        min_size=1,
        max_size=400,
    ),
    st.lists(st.integers(1, 399), max_size=30),
)
def test_a_read_written_at_once_is_each_frame_written_in_turn(
    frames: list[tuple[bytes, int]], cuts: list[int]
) -> None:
    """`write_in` (the connector's call per socket read) against `write` per frame: the
    same positions, the same segments byte for byte (zstd frames cut at the same lines),
    the same manifests — across flush deadlines, size and hour rotation, text and binary."""
    stamped, t = [], T0
    for i, (payload, step) in enumerate(frames):
        t += step
        stamped.append((payload, t, i))
    cut = sorted({c for c in cuts if c < len(stamped)})
    reads = [stamped[a:b] for a, b in zip([0, *cut], [*cut, len(stamped)], strict=True)]

    def run(batched: bool) -> tuple[list[tuple[str, int]], dict[str, bytes], list[dict]]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            j = journal(root, rotate_ns=10 * S, rotate_bytes=30_000)
            if batched:
                pos = [p for read in reads for p in j.write_in(read)]
            else:
                pos = [j.write(ts, mono, "in", payload) for payload, ts, mono in stamped]
            j.close()
            files = {f.relative_to(root).as_posix(): f.read_bytes() for f in root.rglob("*.zst")}
            at = [(p.path.relative_to(root).as_posix(), p.line) for p in pos]
            manifests = [{**msgspec.structs.asdict(m), "closed_ns": 0} for m in j.manifests]
            return at, files, manifests

    batched, one_by_one = run(True), run(False)
    assert batched == one_by_one
    at, files, manifests = batched
    assert len(at) == len(stamped) and sum(m["lines"] for m in manifests) == len(stamped)
    assert len(files) == len(manifests)


def test_rotation_by_time_and_hour_exact_names(tmp_path: Path) -> None:
    j = journal(tmp_path, rotate_ns=10 * S)
    for i in range(30):  # one frame a second from 10:59:55 to 11:00:24
        j.write(T0 + i * S, i, "in", f"frame {i}")
    j.close()
    segs = list_segments(tmp_path, "dev", "kraken")
    names = [s.path.relative_to(tmp_path).as_posix() for s in segs]
    assert names == [
        "raw/dev/kraken/2024-03-01/10/3-1-1709290795000000000.jsonl.zst",
        "raw/dev/kraken/2024-03-01/11/3-1-1709290800000000000.jsonl.zst",
        "raw/dev/kraken/2024-03-01/11/3-1-1709290810000000000.jsonl.zst",
        "raw/dev/kraken/2024-03-01/11/3-1-1709290820000000000.jsonl.zst",
    ]
    assert [m.closed_by for m in j.manifests] == ["hour", "time", "time", "close"]
    assert [m.lines for m in j.manifests] == [5, 10, 10, 5]
    assert [(m.first_t, m.last_t) for m in j.manifests][1] == (T0 + 5 * S, T0 + 14 * S)


def test_rotation_by_size(tmp_path: Path) -> None:
    rng = random.Random(7)
    j = journal(tmp_path, rotate_bytes=20_000)
    items = [rng.randbytes(150).hex() for _ in range(2_000)]  # ~incompressible: 300 B
    pos = [j.write(T0 + i, i, "in", p) for i, p in enumerate(items)]
    j.close()
    segs = list_segments(tmp_path, "dev", "kraken")
    assert len(segs) == len(j.manifests) > 4
    # every line is where write() said, and each file is named by its first line's ts
    back = {s.path: list(iter_segment(s.path)) for s in segs}
    for i, p in enumerate(pos):
        assert back[p.path][p.line].payload == items[i]
    for seg, m in zip(segs, j.manifests, strict=True):
        first = back[seg.path][0]
        assert seg.path.name == f"3-1-{first.t}.jsonl.zst" == m.segment
        assert seg.path.parent.as_posix().endswith("raw/dev/kraken/2024-03-01/10")
    assert all(m.size >= 20_000 and m.closed_by == "size" for m in j.manifests[:-1])
    # over by at most what zstd holds back (one 128 KiB block) plus one 64 KiB chunk
    assert all(m.size < 20_000 + 192 * 1024 // 2 for m in j.manifests)
    assert j.manifests[-1].closed_by == "close"
    assert [ln.payload for s in segs for ln in back[s.path]] == items


def test_manifest_fields(tmp_path: Path) -> None:
    j = journal(tmp_path)
    t = T0
    for i in range(100):
        if i in (11, 51):
            t += 2 * S  # flush interval passed: this write ends the frame first
        j.write(t, 5_000 + i, "in" if i % 3 else "out", f"x{i}")
        t += 1000
    j.close()
    (m,) = j.manifests
    path = tmp_path / m.key
    data = path.read_bytes()
    assert read_manifest(path) == m
    assert m.sha256 == hashlib.sha256(data).hexdigest()
    assert m.size == len(data) == m.readable_bytes
    assert (m.lines, m.frames) == (100, 3)
    assert (m.first_t, m.last_t, m.first_m, m.last_m) == (T0, t - 1000, 5_000, 5_099)
    assert (m.env, m.feed, m.shard, m.conn, m.start_ns) == ("dev", "kraken", 3, 1, T0)
    assert m.key == "raw/dev/kraken/2024-03-01/10/3-1-1709290795000000000.jsonl.zst"
    assert (m.ssmd_version, m.schema_version) == (ssmd.__version__, SCHEMA_VERSION)
    assert (m.recovered, m.truncated, m.problem, m.closed_by) == (False, False, "", "close")
    assert verify_segment(path)
    reader = iter_segment(path)
    assert len(list(reader)) == 100 and reader.frames == 3 and not reader.truncated


def test_flush_makes_lines_readable_while_open(tmp_path: Path) -> None:
    clock = FakeClock()
    j = journal(tmp_path, clock=clock)
    pos = j.write(T0, 1, "in", "a")
    j.write(T0 + 1, 2, "in", "b")
    assert list(iter_segment(pos.path)) == []  # still in our buffer
    j.flush()
    assert [ln.payload for ln in iter_segment(pos.path)] == ["a", "b"]
    j.write(T0 + 2, 3, "in", "c")
    j.write(T0 + S + 2, 4, "in", "d")  # a second later: this write ends the frame first
    assert [ln.payload for ln in iter_segment(pos.path, start_line=1)] == ["b", "c"]
    assert open_segments(tmp_path, "dev", "kraken")[0].path == pos.path
    assert not verify_segment(pos.path)  # open: no manifest yet
    j.write(T0 + S + 3, 5, "in", "e")
    j.tick(T0 + S + 4)
    assert len(list(iter_segment(pos.path))) == 3  # neither the wall nor the clock is due
    clock.now += S
    j.tick(T0 + S + 5)  # idle connection, clock due: tick flushes
    assert len(list(iter_segment(pos.path))) == 5
    j.close()
    assert open_segments(tmp_path, "dev", "kraken") == []


def test_segment_tail_follows_the_writer(tmp_path: Path) -> None:
    """A connector catching up reads each line once while the segment grows: lines
    appear per flushed frame, `take` stops at the limit and resumes there, `skip_to`
    jumps forward over lines derived meanwhile."""
    j = journal(tmp_path, clock=FakeClock())
    path = j.write(T0, 0, "in", "p0").path
    tail = SegmentTail(path, start_line=1, read_size=7)  # tiny reads: frames cut anywhere
    assert tail.take(10) == []  # p0 is skipped; nothing else flushed yet
    for i in range(1, 6):
        j.write(T0 + i, i, "in", f"p{i}")
    assert tail.take(10) == []  # still in the writer's buffer
    j.flush()
    assert [(n, ln.payload) for n, ln in tail.take(3)] == [(1, "p1"), (2, "p2"), (3, "p3")]
    for i in range(6, 12):
        j.write(T0 + i, i, "in", f"p{i}")
    j.flush()
    assert [n for n, _ in tail.take(2)] == [4, 5]
    tail.skip_to(9)  # 6..8 were derived live
    assert [ln.payload for _, ln in tail.take(10)] == ["p9", "p10", "p11"]
    with pytest.raises(ValueError):
        tail.skip_to(3)
    tail.close()
    j.close()


def test_tick_closes_an_idle_segment_when_its_time_is_up(tmp_path: Path) -> None:
    j = journal(tmp_path, rotate_ns=60 * S)
    pos = j.write(T0 + 100, 1, "in", "a")  # 10:59:55: the hour ends in 5 s
    j.tick(T0 + 4 * S)
    assert j.path == pos.path
    j.tick(T0 + 5 * S)
    assert j.path is None and j.manifests[0].closed_by == "hour"
    assert verify_segment(pos.path)
    j.close()


def test_same_first_ts_gets_the_next_free_name(tmp_path: Path) -> None:
    j = journal(tmp_path, rotate_bytes=1)  # every spill seals
    for _ in range(3):
        j.write(T0, 1, "in", "x" * 300_000)  # > a zstd block: output at once, sealed
    j.close()
    assert [m.start_ns for m in j.manifests] == [T0, T0 + 1, T0 + 2]
    assert [m.first_t for m in j.manifests] == [T0, T0, T0]


def test_misuse(tmp_path: Path) -> None:
    j = journal(tmp_path)
    with pytest.raises(ValueError, match="direction"):
        j.write(T0, 1, "sideways", "x")  # type: ignore[arg-type]
    assert list_segments(tmp_path, "dev", "kraken") == []  # nothing opened for it
    j.close()
    j.close()
    with pytest.raises(JournalError, match="write after close"):
        j.write(T0, 1, "in", "x")
    with pytest.raises(ValueError):
        journal(tmp_path, rotate_bytes=0)


def test_corruption_is_reported_not_skipped(tmp_path: Path) -> None:
    clock = FakeClock()
    j = journal(tmp_path, clock=clock)
    for i in range(200):
        j.write(T0 + i, i, "in", f"line {i} " + "y" * (i % 50))
        if i == 99:
            j.flush()
    j.close()
    path = tmp_path / j.manifests[0].key
    data = bytearray(path.read_bytes())
    data[len(data) - 20] ^= 0xFF  # inside the second frame
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as err:
        list(iter_segment(path))
    assert err.value.path == path
    reader = iter_segment(path, stop_on_corrupt=True)
    lines = list(reader)
    assert len(lines) >= 100 and reader.frames == 1 and reader.problem
    verdict = verify_segment(path)
    assert not verdict and "sha256" in verdict.problem


def test_truncated_tail_reads_to_the_last_complete_frame(tmp_path: Path) -> None:
    j = journal(tmp_path)
    for i in range(50):
        j.write(T0 + i, i, "in", f"a{i}")
    j.flush()
    for i in range(50, 60):
        j.write(T0 + i, i, "in", f"b{i}")
    j.close()
    path = tmp_path / j.manifests[0].key
    first_frame_end = len(path.read_bytes()) - 1
    cut = path.read_bytes()[:first_frame_end]
    path.write_bytes(cut)
    reader = iter_segment(path)
    got = [ln.payload for ln in reader]
    assert got[:50] == [f"a{i}" for i in range(50)]
    assert reader.truncated and reader.frames == 1


def test_list_segments_filters(tmp_path: Path) -> None:
    for shard, start in ((0, T0), (1, T0 + 2 * S), (0, T0 + 3600 * S)):
        j = Journal(tmp_path, "dev", "kraken", shard, 0, rotate_ns=BIG, rotate_bytes=BIG)
        j.write(start, 1, "in", "x")
        if start != T0 + 3600 * S:
            j.close()
        else:
            j.flush()
            still_open = j
    all_ = list_segments(tmp_path, "dev", "kraken")
    assert [(s.shard, s.start_ns, s.closed) for s in all_] == [
        (0, T0, True),
        (1, T0 + 2 * S, True),
        (0, T0 + 3600 * S, False),
    ]
    assert len(list_segments(tmp_path, "dev", "kraken", closed_only=True)) == 2
    assert [s.shard for s in list_segments(tmp_path, "dev", "kraken", until_ns=T0 + 2 * S)] == [0]
    # since 11:00: the 10:xx segments cannot hold lines that late
    since = list_segments(tmp_path, "dev", "kraken", since_ns=T0 + 5 * S)
    assert [s.start_ns for s in since] == [T0 + 3600 * S]
    assert [s.start_ns for s in open_segments(tmp_path, "dev", "kraken", shard=0)] == [
        T0 + 3600 * S
    ]
    assert list_segments(tmp_path, "dev", "other") == []
    still_open.close()


def test_wall_clock_step_back_across_the_hour(tmp_path: Path) -> None:
    j = journal(tmp_path, fsync_on_flush=True)
    a = j.write(T0 + 10 * S, 1, "in", "after")  # 11:00:05
    b = j.write(T0, 2, "in", "before")  # clock stepped back to 10:59:55
    j.close()
    assert a.path.parent.name == "11" and b.path.parent.name == "10"
    assert [m.closed_by for m in j.manifests] == ["hour", "close"]
    segs = list_segments(tmp_path, "dev", "kraken")
    assert [s.path for s in segs] == [b.path, a.path]  # listed by start time
    assert all(verify_segment(s.path) for s in segs)
