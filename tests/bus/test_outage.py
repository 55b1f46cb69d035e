"""NATS outages: restart mid-stream, frozen server (ack timeout), duplicate window limit.

Each test drives the publisher the way the connector does: records have journal
positions 1..N; on Unavailable it keeps journaling, waits for the publisher to
reconnect and replays the journal from `watermark + 1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssmd.bus.publisher import AckTimeout, Publisher, Unavailable
from ssmd.stack.nats import NatsServer
from ssmd.stack.ports import free_port

from .helpers import add_stream, read_stream, run, trade, wait_for, wire


@pytest.fixture
def own_nats() -> Iterator[NatsServer]:
    """A private server on pinned ports, so a restart comes back on the same URL."""
    data = Path(tempfile.mkdtemp(prefix="ssmd-test-bus-nats-"))
    server = NatsServer(data, port=free_port(), monitor_port=free_port()).start()
    try:
        yield server
    finally:
        if server.pid:
            with_cont(server.pid)
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def with_cont(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


class Connector:
    """A stand-in connector: journal = a list; publishes from the watermark on."""

    def __init__(self, pub: Publisher, journal: list) -> None:
        self.pub, self.journal = pub, journal
        self.refused: list[float] = []  # seconds each refused publish call took
        self.max_in_flight = 0
        self.max_buffered = 0

    async def publish_from(self, start: int, stop: int) -> int:
        """Publish journal positions start..stop-1; returns where it stopped (outage)."""
        for pos in range(start, stop):
            began = time.monotonic()
            try:
                await self.pub.publish(*wire(self.journal[pos - 1]), position=pos)
            except Unavailable:
                self.refused.append(time.monotonic() - began)
                return pos
            self.max_in_flight = max(self.max_in_flight, self.pub.in_flight)
            conn = self.pub._conn
            if conn is not None and conn.transport is not None:
                self.max_buffered = max(
                    self.max_buffered, conn.transport.get_write_buffer_size() + len(self.pub._out)
                )
        return stop


def test_nats_restart_mid_stream_every_record_exactly_once(own_nats: NatsServer) -> None:
    n, window = 20_000, 256
    journal = [trade(i) for i in range(n)]
    states: list[str] = []

    async def go() -> tuple[Publisher, Connector]:
        await add_stream(own_nats.url)
        pub = Publisher(own_nats.url, window=window, ack_timeout=2.0, reconnect_wait=(0.05, 0.2),
                        on_state=lambda s, e: states.append(s))  # fmt: skip
        await pub.start()
        conn = Connector(pub, journal)
        loop = asyncio.get_running_loop()
        stopped = await conn.publish_from(1, n // 3)
        assert stopped == n // 3
        stopping = loop.run_in_executor(None, own_nats.stop)
        # the connector keeps going: journal grows, publishes are refused at once
        pos = await conn.publish_from(n // 3, n + 1)
        assert pos <= n and pub.state == "unavailable"
        for _ in range(200):  # still refused, quickly, nothing buffered
            began = time.monotonic()
            with pytest.raises(Unavailable):
                await pub.publish(*wire(journal[pos - 1]), position=pos)
            conn.refused.append(time.monotonic() - began)
        assert pub.in_flight == 0 and len(pub._out) == 0
        # the outage's cause: the dropped connection, or JetStream's 503 (no responders)
        # for publishes that reached a server already shutting its stream down
        error = str(pub.error)
        assert "NATS connection lost" in error or ("JetStream refused" in error and "503" in error)
        await stopping
        await loop.run_in_executor(None, own_nats.start)
        assert await pub.wait_connected(15)
        # catch up from the journal, right after the last acked record
        start = pub.watermark + 1
        assert start <= pos
        assert await conn.publish_from(start, n + 1) == n + 1
        await pub.flush()
        await pub.close()
        return pub, conn

    pub, conn = run(go())
    assert states == ["connected", "unavailable", "connected", "closed"]
    assert pub.stats.reconnects == 1 and pub.stats.dropped <= window
    assert pub.watermark == n and pub.stats.outages == 1
    assert conn.max_in_flight <= window
    assert conn.max_buffered <= window * 400  # bytes: window x (record + protocol framing)
    # refused at once (no await inside); max is loose for a loaded CI box
    assert sorted(conn.refused)[len(conn.refused) // 2] < 0.005 and max(conn.refused) < 0.5
    stored = run(read_stream(own_nats.url))
    assert [mid for mid, _ in stored] == [wire(r)[2] for r in journal]
    assert [data for _, data in stored] == [wire(r)[1] for r in journal]


def test_frozen_server_ack_timeout_then_recovery(own_nats: NatsServer) -> None:
    """SIGSTOP: the socket stays open but nothing is acked; the publisher must notice."""
    n, window = 3_000, 128
    journal = [trade(i) for i in range(n)]
    assert own_nats.pid is not None
    pid = own_nats.pid

    async def go() -> tuple[Publisher, float]:
        await add_stream(own_nats.url)
        pub = await Publisher(own_nats.url, window=window, ack_timeout=0.5, ping_interval=0.5,
                              reconnect_wait=(0.05, 0.2)).start()  # fmt: skip
        conn = Connector(pub, journal)
        assert await conn.publish_from(1, 1001) == 1001
        await pub.flush()
        os.kill(pid, signal.SIGSTOP)
        began = time.monotonic()
        # the window fills, then try_publish says "full" rather than buffering more
        pos = 1001
        while pub.try_publish(*wire(journal[pos - 1]), position=pos):
            pos += 1
        assert pub.in_flight == window and pos == 1001 + window
        await wait_for(lambda: pub.state == "unavailable", timeout=5)
        detected = time.monotonic() - began
        assert isinstance(pub.error, AckTimeout)
        assert "position 1001" in str(pub.error)
        assert pub.watermark == 1000 and pub.in_flight == 0
        with pytest.raises(AckTimeout):
            await pub.publish(*wire(journal[pos - 1]), position=pos)
        os.kill(pid, signal.SIGCONT)
        assert await pub.wait_connected(15)
        assert await conn.publish_from(pub.watermark + 1, n + 1) == n + 1
        await pub.flush()
        await pub.close()
        return pub, detected

    pub, detected = run(go())
    assert 0.5 <= detected < 5.0  # ack_timeout 0.5 s, checked every 0.125 s
    assert pub.stats.dropped == window and pub.watermark == n
    stored = run(read_stream(own_nats.url))
    assert [mid for mid, _ in stored] == [wire(r)[2] for r in journal]


def test_replay_after_the_duplicate_window_stores_a_second_copy(nats_url: str) -> None:
    """The documented limit: Msg-Id dedup only covers the stream's duplicate window."""
    records = [trade(i) for i in range(10)]

    async def go() -> Publisher:
        await add_stream(nats_url, duplicate_window=0.5)
        pub = await Publisher(nats_url).start()
        for rec in records:
            await pub.publish(*wire(rec))
        await pub.flush()
        for rec in records[:5]:  # within the window: deduplicated
            await pub.publish(*wire(rec))
        await pub.flush()
        await asyncio.sleep(1.5)  # the window passes (JetStream purges ids lazily)
        for rec in records[:5]:
            await pub.publish(*wire(rec))
        await pub.flush()
        await pub.close()
        return pub

    pub = run(go())
    assert pub.stats.duplicates == 5
    assert len(run(read_stream(nats_url))) == 15


def test_start_without_waiting_while_nats_is_down(own_nats: NatsServer) -> None:
    """A connector may start during an outage: it journals until NATS appears."""
    own_nats.stop()

    async def go() -> Publisher:
        loop = asyncio.get_running_loop()
        pub = await Publisher(own_nats.url, reconnect_wait=(0.05, 0.2)).start(wait=False)
        await asyncio.sleep(0.3)
        assert pub.state == "connecting"
        assert "NATS unreachable" in str(pub.error)
        with pytest.raises(Unavailable):
            await pub.publish(*wire(trade(1)), position=1)
        await loop.run_in_executor(None, own_nats.start)
        assert await pub.wait_connected(15)
        await add_stream(own_nats.url)
        await pub.publish(*wire(trade(1)), position=1)
        await pub.flush()
        await pub.close()
        return pub

    pub = run(go())
    assert (pub.watermark, pub.stats.acked, pub.state) == (1, 1, "closed")
    assert (pub.stats.outages, pub.stats.reconnects) == (0, 0)


def test_tail_msg_ids_guard_a_replay_past_the_duplicate_window(nats_url: str) -> None:
    """After the window passed, skipping the tail's ids keeps the replay exact."""
    import nats

    from ssmd.bus.recovery import tail_msg_ids

    records = [trade(i) for i in range(20)]

    async def go() -> tuple[set[str], int]:
        await add_stream(nats_url, duplicate_window=0.5)
        pub = await Publisher(nats_url).start()
        for pos, rec in enumerate(records[:12], start=1):  # 12 stored, acks "lost" after 8
            await pub.publish(*wire(rec), position=pos)
        await pub.flush()
        await asyncio.sleep(1.2)  # outage longer than the duplicate window
        nc = await nats.connect(nats_url)
        tail = await tail_msg_ids(nc.jetstream(), "MD_TEST_FEED", count=8)
        await nc.close()
        for pos, rec in enumerate(records[8:], start=9):  # replay from watermark 8 + 1
            if wire(rec)[2] not in tail:
                await pub.publish(*wire(rec), position=pos)
        await pub.flush()
        await pub.close()
        return tail, pub.stats.duplicates

    tail, dups = run(go())
    assert tail == {wire(r)[2] for r in records[4:12]}
    stored = run(read_stream(nats_url))
    assert [mid for mid, _ in stored] == [wire(r)[2] for r in records]
    assert dups == 0
