"""Records → outbox Messages (`capture.stamp`): the C path (`_native.messages_lines`) against
the Python reference, frame by frame — the messages, their order and types, and the
counters — for arbitrary records, names needing escapes and every sequence scope; plus
hand-written Msg-Ids for each rule of bus/msgid.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.capture.journal import SegmentPos
from ssmd.capture.outbox import Message
from ssmd.capture.stamp import SCOPES, Stamper
from ssmd.model import native
from ssmd.model.codec import encode_python
from ssmd.model.records import Book, Gap, Quote, Trade

pytestmark = pytest.mark.skipif(native._native is None, reason="ssmd._native is not built")

INTS = st.one_of(
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 7, 2**63 - 1]),
)
NAME = st.one_of(
    st.sampled_from(["BTC-USD", "ETH/USD", "sim", "a:b", "50%", "x y", "é€", "\x7f"]),
    st.text(max_size=12),
)
HEADER = {"feed": NAME, "venue": st.just("sim"), "symbol": NAME, "iid": INTS,
          "ts_event": INTS, "ts_recv": INTS, "seq": INTS}  # fmt: skip
LEVELS = st.lists(st.tuples(INTS, INTS), max_size=5)
RECORD = st.one_of(
    st.builds(Book, snapshot=st.booleans(), bids=LEVELS, asks=LEVELS, **HEADER),
    st.builds(Trade, price=INTS, size=INTS, side=st.sampled_from(["buy", "sell"]),
              trade_id=st.one_of(st.just(""), NAME), **HEADER),
    st.builds(Quote, bid_px=INTS, bid_sz=INTS, ask_px=INTS, ask_sz=INTS, **HEADER),
    st.builds(Gap, reason=st.just("parse"), **HEADER),
)  # fmt: skip
ORIGIN = SegmentPos(Path("/j/seg.jsonl.zst"), 7)


def _run(stamper: Stamper, records: list, use_python: bool) -> object:
    try:
        call = stamper.python if use_python else stamper
        return call(records, ORIGIN)
    except (OverflowError, ValueError, TypeError) as exc:
        return type(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(RECORD, max_size=4), st.sampled_from(SCOPES), st.integers(0, 3))
def test_c_stamps_what_python_stamps(records: list, scope: str, link: int) -> None:
    c_counts, c_symbols, py_counts, py_symbols = Counter(), Counter(), Counter(), Counter()
    c = Stamper("dev", scope, link, c_counts, c_symbols)  # type: ignore[arg-type]
    py = Stamper("dev", scope, link, py_counts, py_symbols)  # type: ignore[arg-type]
    got, want = _run(c, records, False), _run(py, records, True)
    assert got == want
    if isinstance(want, list):
        assert [type(m) for m in got] == [Message] * len(records)  # type: ignore[union-attr]
        assert (c_counts, c_symbols) == (py_counts, py_symbols)


SMALL = st.integers(-(2**62), 2**62)
PLAIN = {"feed": st.sampled_from(["sim", "k:v"]), "venue": st.just("sim"),
         "symbol": st.from_regex(r"[A-Z]{1,5}-(USD|EUR)", fullmatch=True), "iid": SMALL,
         "ts_event": SMALL, "ts_recv": SMALL, "seq": SMALL}  # fmt: skip
PLAIN_RECORD = st.one_of(
    st.builds(Book, snapshot=st.booleans(), bids=st.lists(st.tuples(SMALL, SMALL), max_size=5),
              asks=st.lists(st.tuples(SMALL, SMALL), max_size=5), **PLAIN),
    st.builds(Trade, price=SMALL, size=SMALL, side=st.sampled_from(["buy", "sell"]),
              trade_id=st.from_regex(r'[ -!#-\[\]-~]{0,8}', fullmatch=True), **PLAIN),
    st.builds(Quote, bid_px=SMALL, bid_sz=SMALL, ask_px=SMALL, ask_sz=SMALL, **PLAIN),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(PLAIN_RECORD, min_size=1, max_size=4), st.sampled_from(SCOPES))
def test_c_takes_every_plain_frame(records: list, scope: str) -> None:
    """Names with escapes, trade ids needing `escape_part` (any printable ASCII the JSON
    writer takes), every seq: still C's."""
    c = Stamper("dev", scope, 1, Counter(), Counter())  # type: ignore[arg-type]
    py = Stamper("dev", scope, 1, Counter(), Counter())  # type: ignore[arg-type]
    assert c(records, ORIGIN) == py.python(records, ORIGIN)
    assert c.native_frames == 1


ESCAPED = st.builds(Book, snapshot=st.booleans(), bids=st.just([]), asks=st.just([]),
                    **(PLAIN | {"symbol": st.sampled_from(['A"B', "A\\B", "A\nB"])}))  # fmt: skip
"""A record C declines (its symbol needs JSON escapes): the Python path stamps its line."""


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.one_of(PLAIN_RECORD, PLAIN_RECORD, ESCAPED), max_size=3), max_size=6),
    st.integers(0, 9),
)
def test_lines_stamped_together_are_each_line_in_turn(lines: list, first: int) -> None:
    """`Stamper.lines` (a socket read's frames at once, one C call until a line C
    declines) gives each record the journal line it came from, in order, counted like
    `python()` line by line, and adds each record's latency in order; C stamped exactly
    the non-empty lines without an escape."""
    counts, symbols = Counter[str](), Counter[str]()
    c = Stamper("dev", "venue", 1, counts, symbols)
    py = Stamper("dev", "venue", 1, Counter(), Counter())
    origins = [SegmentPos(ORIGIN.path, first + i) for i in range(len(lines))]
    want = [m for records, o in zip(lines, origins, strict=True) for m in py.python(records, o)]
    latencies: list[int] = [7]
    assert c.lines(lines, origins, latencies) == want
    assert latencies == [7] + [r.ts_recv - r.ts_event for rs in lines for r in rs if r.ts_event]
    assert [m.origin.line for m in want] == [first + i for i, rs in enumerate(lines) for _ in rs]
    assert (counts, symbols) == (py.counts, py.by_symbol)
    plain = [
        rs for rs in lines if rs and not any(any(ch in r.symbol for ch in '"\\\n') for r in rs)
    ]
    assert c.native_frames == len(plain)
    with pytest.raises(ValueError, match="2 lines but 1 origins"):
        c.lines([[], []], [ORIGIN], [])


def test_a_read_of_many_instruments_is_counted_like_each_line() -> None:
    """C keeps a read's counts and names per (type, symbol) until the call returns, in
    tables of 32: a read over 60 instruments (tables full, flushed mid-call), with equal
    names that are different str objects, counts and names exactly as `python()`."""

    def symbol(i: int) -> str:
        return "".join(["S", str(i % 60), "-USD"])  # a new str object every time

    lines = [
        [_book(symbol=symbol(i)), Trade(feed="sim", venue="sim", symbol=symbol(i * 7),
                                        ts_event=i, ts_recv=i + 3, price=10**9, size=10**9,
                                        side="buy", trade_id=str(i))]
        for i in range(150)
    ]  # fmt: skip
    origins = [SegmentPos(ORIGIN.path, i) for i in range(len(lines))]
    counts, symbols = Counter[str](), Counter[str]()
    c = Stamper("dev", "venue", 1, counts, symbols)
    py = Stamper("dev", "venue", 1, Counter(), Counter())
    want = [m for records, o in zip(lines, origins, strict=True) for m in py.python(records, o)]
    assert c.lines(lines, origins, []) == want and c.native_frames == 150
    assert counts == {"book": 150, "trade": 150}
    assert symbols == py.by_symbol and len(symbols) == 60 and symbols["S0-USD"] == 3 + 3
    assert {m.subject for m in want} >= {"md.dev.sim.trade.S59-USD", "md.dev.sim.book.S0-USD"}


def test_stamping_from_outside_the_lines_is_refused() -> None:
    c = Stamper("dev", "venue", 1, Counter(), Counter())
    out: list = []
    with pytest.raises(ValueError, match=r"start 2 outside 0\.\.1"):
        native._native.messages_lines([[_book()]], [ORIGIN], 2, c._ctx, out, [])  # type: ignore[union-attr]
    assert out == [] and c.counts == {}


def _book(**kw: object) -> Book:
    fields = {"feed": "sim", "venue": "sim", "symbol": "BTC-USD", "ts_event": 5, "ts_recv": 9,
              "snapshot": False, "bids": [(100 * 10**9, 10**9)], "asks": []}  # fmt: skip
    return Book(**(fields | kw))  # type: ignore[arg-type]


def test_each_msg_id_rule_by_hand() -> None:
    counts, symbols = Counter[str](), Counter[str]()
    venue = Stamper("dev", "venue", 2, counts, symbols)
    trade = Trade(feed="sim", venue="sim", symbol="BTC-USD", ts_recv=1, price=1, size=1,
                  trade_id="a:b%")  # fmt: skip
    frame = [_book(seq=42), _book(seq=42, snapshot=True), _book(seq=-3), trade]
    got = venue(frame, ORIGIN)
    assert venue.native_frames == 1  # C took it: the common shape
    assert [m.msg_id for m in got] == [
        "sim:book:BTC-USD:s42",
        "sim:book:BTC-USD:S42",
        "sim:book:BTC-USD:s-3",
        "sim:trade:BTC-USD:ta%3Ab%25",
    ]
    assert got[0] == ("md.dev.sim.book.BTC-USD", encode_python(frame[0]), got[0][2], 2, ORIGIN)
    assert counts == {"book": 3, "trade": 1} and symbols == {"BTC-USD": 4}
    # without a venue-wide seq: a content hash, the same whatever the seq on a connection
    conn = Stamper("dev", "connection", 0, Counter(), Counter())
    one, two = conn([_book(seq=1), _book(seq=2)], None)
    assert one.msg_id == two.msg_id and one.msg_id.startswith("sim:book:BTC-USD:h")
    assert len(one.msg_id) == len("sim:book:BTC-USD:h") + 32


def test_a_frame_c_declines_is_counted_once() -> None:
    """A Gap (a type C does not write) sends the whole frame to Python, counted there."""
    counts, symbols = Counter[str](), Counter[str]()
    stamper = Stamper("dev", "venue", 0, counts, symbols)
    gap = Gap(feed="sim", venue="sim", symbol="BTC-USD", ts_recv=3, reason="parse")
    got = stamper([_book(seq=1), gap], ORIGIN)
    assert stamper.native_frames == 0
    assert [m.subject for m in got] == ["md.dev.sim.book.BTC-USD", "md.dev.sim.gap.BTC-USD"]
    assert counts == {"book": 1, "gap": 1} and symbols == {"BTC-USD": 2}
