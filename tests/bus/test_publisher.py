"""The acked publisher against a real nats-server: counts, order, ids, duplicates."""

from __future__ import annotations

import asyncio
import time

import pytest

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.publisher import Publisher, PublishRejected, Unavailable

from .helpers import add_stream, read_stream, run, trade, wire


def test_n_records_land_once_in_order_with_their_ids(nats_url: str) -> None:
    n = 3000
    records = [trade(i) for i in range(n)]
    acked: list[tuple[int, bool]] = []

    async def go() -> Publisher:
        await add_stream(nats_url)
        pub = await Publisher(
            nats_url, window=256, on_ack=lambda p, d: acked.append((p, d))
        ).start()
        for pos, rec in enumerate(records, start=1):
            await pub.publish(*wire(rec), position=pos * 10)  # positions need not be dense
        await pub.flush()
        await pub.close()
        return pub

    pub = run(go())
    assert acked == [(pos * 10, False) for pos in range(1, n + 1)]
    assert pub.watermark == n * 10
    assert (pub.stats.published, pub.stats.acked, pub.stats.duplicates) == (n, n, 0)
    stored = run(read_stream(nats_url))
    assert stored == [(wire(r)[2], wire(r)[1]) for r in records]
    assert stored[0][0] == "feed:trade:BTC-USD:t0"


def test_republishing_adds_nothing_and_counts_duplicates(nats_url: str) -> None:
    records = [trade(i) for i in range(500)]
    dups: list[bool] = []

    async def go() -> Publisher:
        await add_stream(nats_url)
        pub = await Publisher(nats_url, on_ack=lambda p, d: dups.append(d)).start()
        for rec in records:
            await pub.publish(*wire(rec))
        await pub.flush()
        assert dups == [False] * 500
        for rec in records:  # e.g. a replay after a lost ack
            await pub.publish(*wire(rec))
        await pub.flush()
        await pub.close()
        return pub

    pub = run(go())
    assert dups == [False] * 500 + [True] * 500
    assert (pub.stats.acked, pub.stats.duplicates) == (1000, 500)
    assert len(run(read_stream(nats_url))) == 500


def test_a_b_connectors_yield_one_copy_of_each_event(nats_url: str) -> None:
    """Two connectors capture the same events (their own ts_recv) and publish concurrently."""
    n = 2000
    a = [trade(i, ts_recv=1_000) for i in range(n)]
    b = [trade(i, ts_recv=9_999_999) for i in range(n)]
    assert a[0] != b[0] and wire(a[0])[2] == wire(b[0])[2]

    async def side(records: list) -> Publisher:
        pub = await Publisher(nats_url, window=64).start()
        for rec in records:
            await pub.publish(*wire(rec))
            if rec.trade_id.endswith("7"):
                await asyncio.sleep(0)  # interleave the two sides
        await pub.flush()
        await pub.close()
        return pub

    async def go() -> tuple[Publisher, Publisher]:
        await add_stream(nats_url)
        return await asyncio.gather(side(a), side(b))

    pa, pb = run(go())
    stored = run(read_stream(nats_url))
    ids = [mid for mid, _ in stored]
    assert sorted(ids) == sorted(wire(r)[2] for r in a)
    assert len(set(ids)) == n
    assert pa.stats.duplicates + pb.stats.duplicates == n
    assert pa.stats.acked == pb.stats.acked == n


def test_no_stream_for_the_subject_is_reported_not_buffered(nats_url: str) -> None:
    async def go() -> Publisher:
        pub = await Publisher(nats_url, reconnect_wait=(5, 5)).start()
        await pub.publish("md.nowhere.x.trade.BTC", b"{}", "id1")
        with pytest.raises(Unavailable):
            await pub.flush()
        assert pub.state == "unavailable"
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await pub.publish("md.nowhere.x.trade.BTC", b"{}", "id2")
        assert time.monotonic() - started < 0.05
        await pub.close()
        return pub

    pub = run(go())
    assert isinstance(pub.error, PublishRejected)
    assert "no stream bound to the subject" in str(pub.error)
    assert "position 1" in str(pub.error)
    assert (pub.watermark, pub.stats.dropped, pub.stats.outages) == (0, 1, 1)


def test_unreachable_server_fails_fast() -> None:
    async def go() -> None:
        started = time.monotonic()
        with pytest.raises(BusUnreachable, match=r"127\.0\.0\.1:1"):
            await Publisher("nats://127.0.0.1:1", connect_timeout=1).start()
        assert time.monotonic() - started < 1.5

    run(go())


def test_positions_must_increase(nats_url: str) -> None:
    async def go() -> None:
        await add_stream(nats_url)
        pub = await Publisher(nats_url).start()
        await pub.publish(*wire(trade(1)), position=5)
        with pytest.raises(ValueError, match="does not follow 5"):
            await pub.publish(*wire(trade(2)), position=5)
        await pub.close()

    run(go())


def test_protocol_breaking_input_is_refused_and_closed_publisher_says_so(nats_url: str) -> None:
    async def go() -> None:
        await add_stream(nats_url)
        pub = await Publisher(nats_url).start()
        with pytest.raises(ValueError, match="would break the protocol"):
            await pub.publish("md.test.feed.trade.A B", b"{}", "id")
        with pytest.raises(ValueError, match="would break the protocol"):
            await pub.publish("md.test.feed.trade.A", b"{}", "id\r\nX: y")
        await pub.publish(*wire(trade(1)))
        await pub.close()
        assert pub.watermark == 1  # close drains in-flight acks first
        with pytest.raises(Unavailable, match="publisher closed"):
            await pub.publish(*wire(trade(2)))

    run(go())


def test_error_ack_is_reported_with_the_servers_words(nats_url: str) -> None:
    """A stream full with discard=new answers {"error": ...}: an outage, not a lost record."""
    import nats
    from nats.js.api import DiscardPolicy, StreamConfig

    async def go() -> Publisher:
        nc = await nats.connect(nats_url)
        await nc.jetstream().add_stream(
            StreamConfig(name="TINY", subjects=["tiny.>"], max_msgs=2, discard=DiscardPolicy.NEW)
        )
        await nc.close()
        pub = await Publisher(nats_url, reconnect_wait=(5, 5)).start()
        for i in range(1, 4):
            await pub.publish("tiny.x", b"{}", f"id{i}", i)
        with pytest.raises(PublishRejected):
            await pub.flush()
        await pub.close()
        return pub

    pub = run(go())
    assert pub.watermark == 2
    assert "JetStream refused position 3" in str(pub.error)
    assert "maximum messages exceeded" in str(pub.error)
