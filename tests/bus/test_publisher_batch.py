"""The batched publish path: `try_publish_many` (HPUB framing in C, `_native/nats.c`) and
acks taken as runs, held to the per-message Python path — the same bytes on the wire,
the same refusals, the same watermark through early and duplicate acks — against a real
nats-server, plus a count that the C paths really took the messages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.bus import publisher as publisher_module
from ssmd.bus.publisher import Publisher, _acks_python
from ssmd.capture.outbox import Message, Outbox
from ssmd.model.native import _native

from .helpers import add_stream, read_stream, run, trade, wire

needs_c = pytest.mark.skipif(_native is None, reason="ssmd._native not built")

SUBJECT = st.text(min_size=1, max_size=40).filter(lambda s: not {" ", "\r", "\n"} & set(s))
MSG_ID = st.text(max_size=40).filter(lambda s: "\n" not in s)
PAYLOAD = st.binary(max_size=300)
VALID = st.tuples(SUBJECT, PAYLOAD, MSG_ID)
INVALID = st.one_of(
    st.tuples(st.sampled_from(["a b", "a\rb", "a\nb", " ", "x\n"]), PAYLOAD, MSG_ID),
    st.tuples(SUBJECT, PAYLOAD, st.sampled_from(["a\nb", "\n", "id\r\nX: y"])),
)


def plain_ack(inbox: bytes, n: int, dup: bool = False, space: bool = True) -> bytes:
    body = b'{"stream":"MD_TEST_FEED","seq":%d%s}' % (
        n + 1,
        (b',"duplicate": true' if space else b',"duplicate":true') if dup else b"",
    )
    return b"MSG %s%d 1 %d\r\n%s\r\n" % (inbox, n, len(body), body)


@needs_c
def test_c_framing_is_the_python_framing_and_refuses_the_same(nats_url: str) -> None:
    async def go() -> None:
        pub = await Publisher(nats_url, window=1 << 20).start()

        @settings(max_examples=300, deadline=None)
        @given(st.lists(VALID, min_size=1, max_size=5), INVALID, st.integers(0, 4))
        def check(batch: list[tuple[str, bytes, str]], bad: Any, at: int) -> None:
            n = pub._next_n
            for subject, payload, msg_id in batch:  # the Python path, one by one
                assert pub.try_publish(subject, payload, msg_id)
            python = bytes(pub._out)
            pub._out.clear()  # nothing of it goes out
            framed = bytearray(b"kept")
            assert _native.hpub(framed, batch, pub._inbox, n, 99, pub._max_payload) == len(batch)
            assert framed == b"kept" + python
            # C stops at a message try_publish refuses; try_publish_many raises only for a
            # first one, so what it queued before is never lost
            mixed = [*batch[:at], bad, *batch[at:]]
            assert _native.hpub(bytearray(), mixed, pub._inbox, 0, 99, 1 << 20) == min(
                at, len(batch)
            )
            with pytest.raises(ValueError) as python_error:
                pub.try_publish(*bad)
            queued = min(at, len(batch))
            if queued:
                assert pub.try_publish_many(mixed) == queued
            with pytest.raises(ValueError) as batch_error:
                pub.try_publish_many(mixed[queued:])
            assert str(batch_error.value) == str(python_error.value)
            pub._out.clear()

        check()
        await pub.close(drain=0)

    run(go())


@needs_c
def test_c_refuses_what_is_too_big_or_not_a_message() -> None:
    out = bytearray()
    msg = ("md.a.b", b"x" * 10, "id")
    assert _native.hpub(out, [msg], b"_INBOX.x.", 0, 5, 10) == 1
    assert _native.hpub(out, [msg], b"_INBOX.x.", 0, 5, 9) == 0
    assert _native.hpub(out, [msg] * 9, b"_INBOX.x.", 0, 5, 10) == 5  # the room
    for odd in [("md.a", bytearray(b"x"), "id"), ("md.a", b"x"), ["md.a", b"x", "id"], 7]:
        assert _native.hpub(out, [msg, odd], b"_INBOX.x.", 0, 5, 10) == 1
    assert _native.hpub(out, [("", b"", "id")], b"_INBOX.x.", 0, 5, 10) == 0
    assert _native.hpub(out, [("\ud800", b"", "id")], b"_INBOX.x.", 0, 5, 10) == 0


ACK = st.tuples(
    st.one_of(st.integers(0, 40), st.integers(10**17, 10**19)), st.booleans(), st.booleans()
)
NOISE = st.sampled_from(
    [b"PING\r\n", b"MSG _INBOX.x.y 2 2\r\n{}\r\n", b"MSG _INBOX.x.5 1 2\r\n{}\r\n",
     b'MSG .5 1 9\r\n{"stream":"S","seq":1}\r\n', b"MSG x.5 1 9\r\n", b"MSG x. 1 1\r\n",
     b'MSG x.5 1 9\r\n{"stream":"S","seq":1,"duplicate":false}\r\n', b"-ERR 'x'\r\n",
     b'MSG x.5 1 9\r\n{"stream":"S"', b'MSG a.b.7 1 1\r\n{"stream":"","seq":3}\r\n']
)  # fmt: skip


@needs_c
@given(
    st.lists(st.one_of(ACK, NOISE), max_size=12),
    st.sampled_from([b"_INBOX.ab12.", b"_INBOX.ab12.7", b"x.y z."]),
)
def test_c_ack_scan_is_the_python_scan(items: list[Any], inbox: bytes) -> None:
    buf = b"".join(
        item if isinstance(item, bytes) else plain_ack(inbox, item[0], item[1], item[2])
        for item in items
    )
    for pos in range(len(buf) + 1):
        assert _native.acks(buf, pos) == _acks_python(buf, pos), (buf, pos)


def test_batches_land_in_order_and_replays_count_as_duplicates(nats_url: str) -> None:
    n = 3000
    messages = [wire(trade(i)) for i in range(n)]
    told: list[tuple[int, int]] = []

    async def go() -> Publisher:
        await add_stream(nats_url)
        pub = await Publisher(
            nats_url, window=256, on_acks=lambda p, d: told.append((p, d))
        ).start()
        for rounds in range(2):  # the second: a replay after a lost ack, all duplicates
            base, i = rounds * n, 0
            while i < n:
                done = pub.try_publish_many(messages[i : i + 700], base + i + 1)
                i += done
                if not done:
                    await pub._wait_change()
            await pub.flush()
        await pub.close()
        return pub

    pub = run(go())
    positions = [p for p, _ in told]
    assert positions == sorted(set(positions)) and positions[-1] == 2 * n
    assert len(told) < n  # per read, not per message
    assert sum(d for p, d in told if p <= n) == 0 and sum(d for _, d in told) == n
    assert (pub.watermark, pub.stats.published, pub.stats.acked) == (2 * n, 2 * n, 2 * n)
    assert pub.stats.duplicates == n
    assert run(read_stream(nats_url)) == [(mid, payload) for _, payload, mid in messages]


def test_early_and_repeated_acks_move_the_watermark_in_order(nats_url: str) -> None:
    """Acks that overtake older ones (fed in before the server's own, which then come
    again for messages already acked) wait for the older ones; on_ack still goes in
    position order, on_acks once per read."""
    each: list[tuple[int, bool]] = []
    told: list[tuple[int, int]] = []

    async def go() -> Publisher:
        await add_stream(nats_url)
        pub = await Publisher(
            nats_url,
            on_ack=lambda p, d: each.append((p, d)),
            on_acks=lambda p, d: told.append((p, d)),
        ).start()
        n0, inbox = pub._next_n, pub._inbox
        assert pub.try_publish_many([wire(trade(i)) for i in range(6)], 11) == 6
        late, mid = plain_ack(inbox, n0 + 5, True), plain_ack(inbox, n0 + 2)
        pub._received(pub._epoch, plain_ack(inbox, n0 + 3, True) + plain_ack(inbox, n0 + 4, True))
        pub._received(pub._epoch, late[:20])  # a read ending inside an ack
        assert (pub.watermark, told) == (0, [])
        pub._received(pub._epoch, late[20:] + mid + plain_ack(inbox, n0 + 1, False, False))
        assert (pub.watermark, told) == (0, [])
        pub._received(pub._epoch, plain_ack(inbox, n0))
        assert (pub.watermark, told) == (16, [(16, 3)])
        await pub.flush()  # the server's acks for n0..n0+5 change nothing now
        await asyncio.sleep(0.05)
        await pub.close()
        return pub

    pub = run(go())
    assert each == [(11, False), (12, False), (13, False), (14, True), (15, True), (16, True)]
    assert told == [(16, 3)]
    assert (pub.watermark, pub.stats.acked, pub.stats.duplicates) == (16, 6, 3)


@needs_c
def test_the_outbox_goes_through_the_c_paths(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every message framed by one C call per bulk and every ack scanned in C: a C path
    that declined everything would leave it to Python and fail here."""
    framed, scanned, calls = [0], [0], [0]

    def hpub(*args: Any) -> int:
        calls[0] += 1
        framed[0] += (got := _native.hpub(*args))
        return got

    def acks(*args: Any) -> tuple[int, int, int, bool]:
        got = _native.acks(*args)
        scanned[0] += got[2]
        return got

    monkeypatch.setattr(publisher_module, "_hpub", hpub)
    monkeypatch.setattr(publisher_module, "_acks", acks)
    n = 5000
    newest: dict[int, Any] = {}

    async def go() -> Outbox:
        await add_stream(nats_url)
        pub = await Publisher(nats_url).start()  # a window the outbox never fills
        outbox = Outbox(pub, 4096, lambda m: newest.__setitem__(m.link, m.origin))
        runner = asyncio.ensure_future(outbox.run())
        for i in range(0, n, 10):
            while outbox.room < 10:
                await asyncio.sleep(0.001)
            outbox.put(Message(*wire(trade(j)), j % 3, j) for j in range(i, i + 10))  # type: ignore[arg-type]
            await asyncio.sleep(0)
        await outbox.drained()
        runner.cancel()
        await pub.close()
        return outbox

    outbox = run(go())
    assert framed[0] == scanned[0] == outbox.acked == n
    assert calls[0] < n
    assert newest == {0: n - 2, 1: n - 1, 2: n - 3}


LIMIT, WINDOW = 256, 32
"""The wait_room tests: a full outbox of LIMIT messages behind a publisher's small window."""


async def full_outbox(nats_url: str) -> tuple[Publisher, Outbox]:
    await add_stream(nats_url)
    pub = await Publisher(nats_url, window=WINDOW).start()
    outbox = Outbox(pub, LIMIT)
    outbox.put(Message(*wire(trade(j))) for j in range(LIMIT))  # type: ignore[arg-type]
    assert outbox.room == 0
    return pub, outbox


def test_wait_room_wakes_when_the_publisher_takes_from_the_queue(nats_url: str) -> None:
    """`wait_room` returns once the queue has drained to the room asked for (as acks let
    the publisher take more), not before, and nothing put is lost on the way."""
    seen: list[int] = []

    async def go() -> Outbox:
        pub, outbox = await full_outbox(nats_url)
        waiter = asyncio.ensure_future(outbox.wait_room(LIMIT // 2))
        await asyncio.sleep(0)
        assert not waiter.done()  # nothing published yet: no room
        runner = asyncio.ensure_future(outbox.run())
        try:
            await asyncio.wait_for(waiter, 10)
            seen.append(outbox.room)
            await asyncio.wait_for(outbox.wait_room(LIMIT), 10)  # all handed on
            seen.append(outbox.room)
            await asyncio.wait_for(outbox.drained(), 10)
        finally:
            runner.cancel()
        await pub.close()
        return outbox

    outbox = run(go())
    assert LIMIT // 2 <= seen[0] < LIMIT // 2 + WINDOW  # woken by the bulk that made room
    assert seen[1] == LIMIT
    assert outbox.acked == LIMIT and outbox.duplicates == 0


def test_wait_room_wakes_every_waiter_when_its_room_comes(nats_url: str) -> None:
    """Two callers waiting for different room (catch-up and crash recovery may overlap):
    each returns once its own room is there."""

    async def go() -> list[int]:
        pub, outbox = await full_outbox(nats_url)
        rooms: list[int] = []

        async def wait(room: int) -> None:
            await outbox.wait_room(room)
            rooms.append(outbox.room)

        waiters = [asyncio.ensure_future(wait(r)) for r in (1, LIMIT)]  # the small one first
        runner = asyncio.ensure_future(outbox.run())
        try:
            await asyncio.wait_for(asyncio.gather(*waiters), 10)
            await asyncio.wait_for(outbox.drained(), 10)
        finally:
            runner.cancel()
        await pub.close()
        return rooms

    rooms = run(go())
    assert len(rooms) == 2 and 1 <= rooms[0] < 1 + WINDOW and rooms[1] == LIMIT
