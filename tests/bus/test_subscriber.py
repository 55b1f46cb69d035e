"""The raw subscriber and the ordered consumer against a real nats-server: batches, flow
control, every stream message once and in order — across a consumer reset and a server
restart — and a first connect that fails fast."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy
from tests.conftest import running, temp_dir

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.subscriber import JsMsg, OrderedConsumer, Subscriber
from ssmd.bus.wire import Msg
from ssmd.stack.nats import NatsServer
from ssmd.stack.ports import free_port

from .helpers import STREAM, add_stream, run, wait_for


async def publish(url: str, start: int, n: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for i in range(start, start + n):
        await nc.publish(f"md.test.feed.trade.S{i % 7}", b"%d" % i, headers={"Nats-Msg-Id": str(i)})
        if i % 500 == 0:
            await js.stream_info(STREAM)  # a round trip: the server keeps up
    await nc.flush()
    await nc.close()


def test_core_messages_arrive_in_batches_with_their_headers(nats_url: str) -> None:
    async def main() -> list[list[Msg]]:
        batches: list[list[Msg]] = []
        sub = await Subscriber(nats_url).start()
        sub.subscribe("t.>", batches.append)
        await sub.flush()
        nc = await nats.connect(nats_url)
        for i in range(2000):
            await nc.publish(f"t.{i}", b"x" * i, reply="r.1", headers={"Nats-Msg-Id": str(i)})
        await nc.flush()
        await wait_for(lambda: sum(map(len, batches)) >= 2000)
        await nc.close()
        await sub.close()
        return batches

    batches = run(main())
    msgs = [m for b in batches for m in b]
    assert [m[1] for m in msgs] == [b"t.%d" % i for i in range(2000)]
    assert all(m[2] == b"r.1" and m[4] == b"x" * i for i, m in enumerate(msgs))
    assert b"Nats-Msg-Id: 7\r\n" in msgs[7][3]
    assert len(batches) < 2000 / 2  # whole reads, not one callback per message


def test_ordered_consumer_delivers_the_stream_once_in_order_across_a_reset(nats_url: str) -> None:
    """Enough data to make the server ask for flow control; a forced reset (as after a
    consumer-sequence gap) resumes right after the last delivered message."""
    n = 20_000

    async def main() -> tuple[list[JsMsg], int]:
        await add_stream(nats_url)
        got: list[JsMsg] = []
        nc = await nats.connect(nats_url)
        sub = await Subscriber(nats_url).start()
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, filter_subject="md.test.>")
        consumer = await OrderedConsumer(nc.jetstream(), sub, STREAM, config, got.extend).start()
        await publish(nats_url, 0, n // 2)
        await wait_for(lambda: len(got) >= 1000)
        consumer._reset("test: as after a gap")
        await publish(nats_url, n // 2, n // 2)
        await wait_for(lambda: len(got) >= n, timeout=30)
        await asyncio.sleep(0.2)
        await consumer.stop()
        await sub.close()
        await nc.close()
        return got, consumer.resets

    got, resets = run(main())
    assert resets == 1
    assert [m[0] for m in got] == list(range(1, n + 1))
    assert [int(m[3]) for m in got] == list(range(n))
    assert got[-1][1] == 0  # nothing pending after the last
    assert b"Nats-Msg-Id: 0\r\n" in got[0][2]


def test_ordered_consumer_resumes_after_a_server_restart() -> None:
    async def main(server: NatsServer) -> tuple[list[JsMsg], int, int]:
        await add_stream(server.url)
        got: list[JsMsg] = []
        nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        sub = await Subscriber(server.url, reconnect_wait=0.2).start()
        config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW, filter_subject="md.test.>")
        consumer = await OrderedConsumer(nc.jetstream(), sub, STREAM, config, got.extend).start()
        await publish(server.url, 0, 100)
        await wait_for(lambda: len(got) >= 100)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.start)
        await wait_for(lambda: sub.connected, timeout=20)
        await publish(server.url, 100, 100)
        await wait_for(lambda: len(got) >= 200, timeout=20)
        await consumer.stop()
        await sub.close()
        await nc.close()
        return got, consumer.resets, sub.reconnects

    with running(NatsServer(temp_dir("nats-sub-restart"), port=free_port())) as server:
        got, resets, reconnects = asyncio.run(main(server))
    assert [int(m[3]) for m in got] == list(range(200))
    assert reconnects >= 1 and resets >= 1


def test_first_connect_fails_fast_when_nats_is_down() -> None:
    async def main() -> None:
        t0 = time.monotonic()
        with pytest.raises(BusUnreachable, match="NATS unreachable at"):
            await Subscriber(f"nats://127.0.0.1:{free_port()}").start()
        assert time.monotonic() - t0 < 5

    run(main())
