"""Replay → live without gap or duplicate while a real connector keeps publishing, and
the slow-consumer policy that never slows the other clients."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import msgspec
from tests.bus.helpers import read_stream, wait_for

from ssmd.capture.connector import Connector, Options
from ssmd.gateway.stream import StreamOptions
from ssmd.model.time import now_ns
from ssmd.replay.server import ReplayServer

from .stream_harness import (
    SYMBOLS,
    Bus,
    StalledClient,
    collect,
    definition,
    gateway,
    recv_json,
    subscribe,
    trade,
    until,
)


def test_replay_then_live_has_no_gap_and_no_duplicate_at_the_seam(
    pg_url, nats_url, tokens, tmp_path: Path
):
    """The connector captures the synthetic venue into JetStream the whole time; a client
    subscribes with `from` = the start, mid-capture. What it receives must be exactly the
    stream's records of those types from `from` on, in stream order, each once."""

    async def main() -> tuple[list[dict], int]:
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=11, rate=2000) as rs:
            options = Options(tmp_path, nats_url, ws_url=rs.url, rest_url=rs.rest_url)
            connector = Connector(definition(), "sim", options=options)
            stop = asyncio.Event()
            start = now_ns()
            task = asyncio.create_task(connector.run(stop))
            await wait_for(lambda: connector.records.get("trade", 0) > 200, timeout=20)
            async with gateway(pg_url, nats_url) as gw, gw.connect(tokens["all"]) as ws:
                ok = await subscribe(
                    ws,
                    id="r",
                    feed="sim",
                    types=["trade", "quote"],
                    symbols=["*"],
                    **{"from": start},
                )
                assert ok["op"] == "subscribed" and ok["from"] == start
                msgs = await until(ws, lambda m: m.get("op") == "live", timeout=30)
                replayed = msgs[-1]["replayed"]
                await asyncio.sleep(1.0)  # live records keep coming after the seam
                stop.set()
                await asyncio.wait_for(task, 60)
                await asyncio.sleep(0.5)
                msgs += await collect(ws, 1.0)
            return [m for m in msgs if "op" not in m], replayed

    got, replayed = asyncio.run(main())
    stream = asyncio.run(read_stream(nats_url, "MD_DEV_SIM"))
    wanted = [
        msgspec.json.decode(p)
        for _, p in stream
        if msgspec.json.decode(p)["type"] in ("trade", "quote")
    ]
    key = lambda r: (r["type"], r["symbol"], r["ts_recv"], r.get("trade_id"), r.get("seq"))  # noqa: E731
    keys = [key(r) for r in got]
    dupes = [k for k, n in collections.Counter(keys).items() if n > 1]
    assert dupes == []
    # exactly the stream's records, each once, in stream order per record type (two
    # shared consumers feed the live side, so trades and quotes may interleave differently)
    for kind in ("trade", "quote"):
        assert [k for k in keys if k[0] == kind] == [key(r) for r in wanted if r["type"] == kind]
    assert len(keys) == len(wanted)
    assert 0 < replayed < len(got)  # part replayed, part live
    assert all(r["id"] == "r" for r in got)
    assert got[0]["price" if got[0]["type"] == "trade" else "bid_px"]


def test_slow_consumer_drop_oldest_gets_a_gap_notice_while_others_keep_up(pg_url, nats_url, tokens):
    opts = StreamOptions(heartbeat_s=5, queue_items=5000, policy="drop_oldest")
    n, rate = 40_000, 10_000

    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url, opts) as gw:
            slow = await asyncio.to_thread(StalledClient, gw.port, tokens["all"])
            slow.send('{"op":"subscribe","id":"slow","feed":"sim","types":["trade"]}')
            fast = [await gw.connect(tokens["all"]).__aenter__() for _ in range(3)]
            for i, ws in enumerate(fast):
                await subscribe(ws, id=i, feed="sim", types=["trade"])
            slow_session = next(s for s in gw.gw.stream_service.sessions if "slow" in s.subs)

            async def drain(ws) -> list[int]:
                ids: list[int] = []
                while len(ids) < n:
                    ids += [int(m["trade_id"]) for m in await recv_json(ws, 5) if "op" not in m]
                    if ids and ids[-1] == n - 1:
                        break
                return ids

            readers = [asyncio.create_task(drain(ws)) for ws in fast]
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for k in range(0, n, rate // 20):  # paced: `rate` records/s
                await bus.publish_fast([trade(i) for i in range(k, k + rate // 20)])
                await asyncio.sleep(0.05)
            results = await asyncio.gather(*readers)
            elapsed = loop.time() - t0
            for ids in results:  # every fast client got everything, in order
                assert ids == list(range(n))
            assert slow_session.queue.dropped_total > 0 and not slow_session.closed.is_set()
            # the gap notice leads the slow client's next batch: what it lost, per id
            notice = slow_session.queue.take(10, 1 << 20, now_ns())[0]
            g = msgspec.json.decode(notice)
            assert g["op"] == "gap" and g["reason"] == "slow_consumer" and g["dropped"] > 0
            assert g["ids"] == [{"id": "slow", "dropped": g["dropped"]}]
            print(
                f"\n3 fast clients: {n} records each in {elapsed:.2f}s; slow dropped {g['dropped']}"
            )
            slow.close()
            for ws in fast:
                await ws.close()

    asyncio.run(main())
