"""Status heartbeats land in KV ssmd_{env}_status (real NATS) and read back with ages."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from ssmd.bus.connection import connect
from ssmd.bus.subjects import status_bucket
from ssmd.ops.status import CPU_BOUND, Rates, StatusPublisher, bottleneck, read_status, status_key


def test_status_key() -> None:
    assert status_key("connector", "kraken", 0) == "connector.kraken.0"
    assert status_key("gateway") == "gateway.-.-"
    assert status_key("connector", "a b*", "1/4") == "connector.a_b_.1_4"


def test_rates() -> None:
    r = Rates()
    assert r.rate("in", 100, 10.0) == 0.0
    assert r.rate("in", 600, 15.0) == 100.0
    assert r.rate("in", 600, 15.0) == 0.0  # no time passed
    assert r.rate("in", 0, 20.0) == 0.0  # counter reset: never negative


def test_bottleneck_names_what_holds_a_connector_back() -> None:
    assert bottleneck(0.3, 0) == ""  # keeping up with room to spare
    assert bottleneck(0.3, 2) == "nats"  # links catching up while the CPU idles: acks
    assert bottleneck(0.95, 0) == "cpu"  # keeping up, but its one core is nearly full
    assert bottleneck(1.0, 1) == "cpu"  # lagging because the core is full: shard
    assert bottleneck(CPU_BOUND, 0) == "cpu"
    assert bottleneck(CPU_BOUND - 0.01, 1) == "nats"


def test_heartbeats_land_in_kv(nats_url: str) -> None:
    async def main() -> None:
        nc = await connect(nats_url)
        try:
            assert await read_status(nc, "t1") == []
            counter = {"frames": 0}
            rates = Rates()

            def collect() -> dict[str, object]:
                counter["frames"] += 500
                now = time.monotonic()
                return {
                    "connections": [{"name": "c0", "state": "open", "symbols": 3}],
                    "msgs_in_per_s": rates.rate("in", counter["frames"], now),
                    "lag_s": 0.002,
                    "last_gap": None,
                    "clock": {"ok": True, "alarms": []},
                }

            pub = StatusPublisher(
                nc, "t1", "connector", feed="kr", shard=1, interval=0.2, collect=collect
            )
            task = asyncio.create_task(pub.run())
            await asyncio.sleep(0.7)
            pub.stop()
            await asyncio.wait_for(task, 5)
            assert pub.published >= 3 and pub.last_error == ""

            kv = await nc.jetstream().key_value(status_bucket("t1"))
            entry = await kv.get("connector.kr.1")
            doc = orjson.loads(entry.value)
            assert doc["component"] == "connector" and doc["feed"] == "kr" and doc["shard"] == "1"
            assert doc["connections"] == [{"name": "c0", "state": "open", "symbols": 3}]
            assert doc["msgs_in_per_s"] > 0 and doc["lag_s"] == 0.002
            assert isinstance(doc["pid"], int) and doc["host"]
            assert abs(doc["ts"] - time.time_ns()) < 5 * 10**9

            (row,) = await read_status(nc, "t1")
            assert row["key"] == "connector.kr.1" and row["stale"] is False
            assert row["age_s"] < 1.0
            # Later (3 intervals without a heartbeat) the same document reads as stale.
            (later,) = await read_status(nc, "t1", now_ns=doc["ts"] + 10**9)
            assert later["stale"] is True and later["age_s"] == pytest.approx(1.0)
        finally:
            await nc.close()

    asyncio.run(main())


def test_publisher_survives_nats_errors(nats_url: str) -> None:
    async def main() -> None:
        nc = await connect(nats_url)
        pub = StatusPublisher(nc, "t2", "gateway", interval=0.05)
        await nc.close()  # every put now fails
        task = asyncio.create_task(pub.run())
        await asyncio.sleep(0.2)
        pub.stop()
        await asyncio.wait_for(task, 5)
        assert pub.published == 0 and pub.last_error

    asyncio.run(main())
