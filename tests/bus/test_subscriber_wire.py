"""The NATS frame parser (pure): any split of a valid stream parses to the same frames;
a broken stream is a WireError, never a parser that waits forever."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssmd.bus.subscriber import ack_position
from ssmd.bus.wire import MAX_LINE, FrameParser, Msg, WireError

tokens = st.text("abcXYZ09_-$", min_size=1, max_size=12).map(str.encode)
subjects = st.lists(tokens, min_size=1, max_size=5).map(b".".join)
payloads = st.binary(max_size=300)  # CR, LF and spaces included: sizes, not delimiters
headers = st.sampled_from([
    b"NATS/1.0\r\nNats-Msg-Id: sim:BTC-USD:t:42\r\n\r\n",
    b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 7\r\n\r\n",
    b"NATS/1.0 100 FlowControl Request\r\n\r\n",
])  # fmt: skip


@st.composite
def frames(draw: st.DrawFn) -> tuple[bytes, Msg | bytes]:
    """One frame's bytes and what the parser must make of it."""
    kind = draw(st.sampled_from(["msg", "hmsg", "line"]))
    if kind == "line":
        line = draw(st.sampled_from([b"PING", b"PONG", b"+OK", b'INFO {"max_payload":1}']))
        return line + b"\r\n", line
    subject, sid, payload = draw(subjects), draw(st.integers(1, 10**6)), draw(payloads)
    reply = draw(st.one_of(st.just(b""), subjects))
    r = b" " + reply if reply else b""
    if kind == "msg":
        head = b"MSG %s %d%s %d\r\n" % (subject, sid, r, len(payload))
        return head + payload + b"\r\n", (sid, subject, reply, b"", payload)
    hdr = draw(headers)
    size = len(hdr) + len(payload)
    head = b"HMSG %s %d%s %d %d\r\n" % (subject, sid, r, len(hdr), size)
    return head + hdr + payload + b"\r\n", (sid, subject, reply, hdr, payload)


def parse_all(chunks: list[bytes]) -> tuple[list[Msg], list[bytes], int]:
    parser = FrameParser()
    msgs: list[Msg] = []
    lines: list[bytes] = []
    for chunk in chunks:
        m, ls = parser.feed(chunk)
        msgs += m
        lines += ls
    return msgs, lines, parser.buffered


@given(st.lists(frames(), max_size=30), st.data())
def test_any_split_of_a_valid_stream_parses_to_the_same_frames(frame_list, data) -> None:
    stream = b"".join(f for f, _ in frame_list)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    msgs, lines, left = parse_all(chunks)
    assert msgs == [want for _, want in frame_list if isinstance(want, tuple)]
    assert lines == [want for _, want in frame_list if isinstance(want, bytes)]
    assert left == 0


@given(st.lists(frames(), min_size=1, max_size=10), st.data())
def test_a_stream_cut_short_waits_for_the_rest(frame_list, data) -> None:
    stream = b"".join(f for f, _ in frame_list)
    cut = data.draw(st.integers(0, len(stream) - 1))
    parser = FrameParser()
    parser.feed(stream[:cut])
    assert parser.buffered <= cut
    msgs, _ = parser.feed(stream[cut:])
    assert parser.buffered == 0 and len(msgs) <= len(frame_list)


@pytest.mark.parametrize(
    "stream",
    [
        b"HELLO world\r\n",
        b"MSG a.b 1\r\n",  # no size
        b"MSG a.b x 3\r\nabc\r\n",  # sid not a number
        b"MSG a.b 1 3\r\nabcd\r\n",  # size does not match: no CRLF after the payload
        b"MSG a.b 1 -3\r\n",
        b"HMSG a.b 1 10 4\r\nNATS/1.0\r\n\r\n",  # header longer than the message
        b"MSG a b c d e f 3\r\nabc\r\n",
        b"MSG a.b 1 99999999999\r\n",  # beyond any max_payload: never waited for
    ],
)
def test_malformed_input_is_a_clear_error(stream: bytes) -> None:
    with pytest.raises(WireError):
        FrameParser().feed(stream)


@given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(
    [b"MSG ", b"HMSG ", b"\r\n", b" 1 ", b" 3", b"PING", b"-ERR 'x'", b"NATS/1.0\r\n"]
)), max_size=30))  # fmt: skip
def test_any_bytes_parse_or_raise_wire_error_only(parts: list[bytes]) -> None:
    """No IndexError, UnicodeError, … from a broken stream: one error the caller handles."""
    parser = FrameParser()
    with contextlib.suppress(WireError):
        for part in parts:
            parser.feed(part)


def test_a_line_that_never_ends_is_an_error_not_a_growing_buffer() -> None:
    parser = FrameParser()
    parser.feed(b"MSG " + b"a" * 100)
    with pytest.raises(WireError, match="no line end"):
        parser.feed(b"a" * MAX_LINE)


@pytest.mark.parametrize(
    "reply",
    [
        b"$JS.ACK.MD_DEV_SIM.c1.1.4821.12.1795650000000000000.7",
        b"$JS.ACK._.ACCHASH.MD_DEV_SIM.c1.1.4821.12.1795650000000000000.7.tok",
    ],
)
def test_ack_position_reads_what_nats_py_metadata_reads(reply: bytes) -> None:
    from nats.aio.msg import Msg as NatsMsg

    md = NatsMsg(None, reply=reply.decode()).metadata  # type: ignore[arg-type]
    want = (md.sequence.stream, md.sequence.consumer, md.num_pending)
    assert ack_position(reply) == want == (4821, 12, 7)
