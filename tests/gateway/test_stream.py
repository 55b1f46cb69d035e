"""`/v1/stream` end to end: real uvicorn, real Postgres keys, real JetStream records."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import websockets
from tests.bus.helpers import wait_for

from ssmd.gateway.stream import StreamOptions

from .stream_harness import (
    Bus,
    StalledClient,
    book,
    gap,
    gateway,
    quote,
    recv_json,
    subscribe,
    trade,
    until,
)


def records(msgs: list[dict]) -> list[dict]:
    return [m for m in msgs if "op" not in m]


def test_live_records_carry_the_wire_form_and_the_subscription_id(pg_url, nats_url, tokens):
    async def main() -> None:
        async with (
            Bus(nats_url) as bus,
            gateway(pg_url, nats_url) as gw,
            gw.connect(tokens["all"]) as ws,
        ):
            ok = await subscribe(
                ws, id="t1", feed="sim", types=["trade"], symbols=["BTC-*", "SOL-USD"]
            )
            assert ok["op"] == "subscribed" and ok["types"] == ["trade"]
            assert ok["narrowed"] is False
            t = trade(7, "BTC-USD")
            await bus.publish(trade(1, "ETH-USD"), quote(1, "BTC-USD"), t, trade(8, "SOL-USD"))
            msgs = await until(ws, lambda m: m.get("trade_id") == "8")
            got = records(msgs)
            assert [(m["id"], m["symbol"], m["trade_id"]) for m in got] == [
                ("t1", "BTC-USD", "7"),
                ("t1", "SOL-USD", "8"),
            ]
            first = got[0]
            assert first["type"] == "trade" and first["price"] == "107"
            assert first["size"] == "0.01" and first["side"] == "buy"
            assert first["ts_recv"] == t.ts_recv and first["feed"] == "sim"
            # unsubscribe: acknowledged, nothing more arrives
            await ws.send('{"op":"unsubscribe","id":"t1"}')
            await until(ws, lambda m: m.get("op") == "unsubscribed")
            await bus.publish(trade(9, "BTC-USD"))
            await ws.send('{"op":"ping","id":5}')
            msgs = await until(ws, lambda m: m.get("op") == "pong")
            assert records(msgs) == []
            assert msgs[-1]["id"] == 5

    asyncio.run(main())


def test_heartbeats_and_one_shared_consumer_per_feed_and_type(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            clients = [await gw.connect(tokens["all"]).__aenter__() for _ in range(5)]
            try:
                for i, ws in enumerate(clients):
                    await subscribe(ws, id=i, feed="sim", types=["trade", "quote"])
                svc = gw.gw.stream_service
                assert sorted(svc.sources) == [("sim", "quote"), ("sim", "trade")]
                await bus.publish(trade(1), quote(2))
                for ws in clients:
                    msgs = await until(ws, lambda m: m.get("type") == "quote")
                    assert [m["type"] for m in records(msgs)] == ["trade", "quote"]
                beats = await until(clients[0], lambda m: m.get("op") == "heartbeat", 3)
                assert beats[-1]["ts"] > 0
            finally:
                for ws in clients:
                    await ws.close()

    asyncio.run(main())


def test_book_subscribers_get_the_current_book_then_deltas(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            await bus.publish(
                book("BTC-USD", True, [(100, 1), (99, 2)], [(101, 1), (102, 3)], 1),
                book("BTC-USD", False, [(100, 0), (98, 5)], [(101, 4)], 2),
                book("ETH-USD", True, [(10, 1)], [(11, 1)], 1),
                gap("ETH-USD"),  # ETH's book is no longer known
            )
            async with gw.connect(tokens["all"]) as ws:
                ok = await subscribe(ws, id="b", feed="sim", types=["book"], symbols=["*"])
                assert ok["op"] == "subscribed"
                msgs = await until(ws, lambda m: m.get("op") == "book_unknown")
                snap = next(m for m in msgs if m.get("type") == "book")
                assert snap["symbol"] == "BTC-USD" and snap["snapshot"] is True
                assert snap["bids"] == [["99", "2"], ["98", "5"]]
                assert snap["asks"] == [["101", "4"], ["102", "3"]]
                assert snap["seq"] == 2
                unknown = next(m for m in msgs if m.get("op") == "book_unknown")
                assert unknown["symbol"] == "ETH-USD" and "gap" in unknown["reason"]
                await bus.publish(book("BTC-USD", False, [(99, 0)], [], 3))
                msgs = await until(ws, lambda m: m.get("seq") == 3)
                delta = records(msgs)[-1]
                assert delta["snapshot"] is False and delta["bids"] == [["99", "0"]]

    asyncio.run(main())


def test_malformed_frames_get_error_frames_and_the_connection_stays(pg_url, nats_url, tokens):
    cases = [
        ("not json", "bad_json"),
        ("[1,2]", "bad_request"),
        ('{"op":"launch"}', "unknown_op"),
        ('{"op":"subscribe","id":"x"}', "bad_request"),
        ('{"op":"subscribe","id":"x","feed":"sim","types":["trades"]}', "bad_request"),
        ('{"op":"subscribe","id":"x","feed":"sim","from":"yesterday"}', "bad_request"),
        ('{"op":"subscribe","id":"x","feed":"nope"}', "unknown_feed"),
        ('{"op":"unsubscribe","id":"zz"}', "unknown_id"),
        ('{"op":"subscribe","id":true,"feed":"sim"}', "bad_request"),
        ('{"op":"subscribe","id":"x","feed":"sim","extra":1}', "bad_request"),
    ]

    async def main() -> None:
        async with gateway(pg_url, nats_url) as gw, gw.connect(tokens["all"]) as ws:
            # no stream yet (no connector ran): refused, saying so
            nostream = await subscribe(ws, id="x", feed="sim", types=["trade"])
            assert nostream["code"] == "unavailable"
            assert "MD_DEV_SIM" in nostream["message"]
            await Bus(nats_url).__aenter__()
            for frame, code in cases:
                await ws.send(frame)
                msgs = await until(ws, lambda m: m.get("op") == "error")
                err = msgs[-1]
                assert err["code"] == code, (frame, err)
                assert err["message"]
            ok = await subscribe(ws, id="x", feed="sim", types=["trade"])
            assert ok["op"] == "subscribed", ok
            dup = await subscribe(ws, id="x", feed="sim", types=["trade"])
            assert dup["code"] == "duplicate_id" and dup["id"] == "x"

    asyncio.run(main())


def test_shutdown_drains_and_closes_with_going_away(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            ws = await gw.connect(tokens["all"]).__aenter__()
            await subscribe(ws, id=1, feed="sim", types=["trade"])
            await bus.publish(*(trade(i) for i in range(50)))
            await asyncio.sleep(0.3)
            await gw.gw.stream_service.close("maintenance")
            got = []
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    got.extend(records(await recv_json(ws)))
            assert closed.value.rcvd.code == 1001
            assert closed.value.rcvd.reason == "maintenance"
            assert [int(m["trade_id"]) for m in got] == list(range(50))

    asyncio.run(main())


def test_slow_consumer_disconnect_policy(pg_url, nats_url, tokens):
    opts = StreamOptions(heartbeat_s=5, queue_items=200, policy="disconnect")

    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url, opts) as gw:
            slow = await asyncio.to_thread(StalledClient, gw.port, tokens["all"])
            slow.send('{"op":"subscribe","id":1,"feed":"sim","types":["trade"]}')
            await wait_for(lambda: hasattr(gw.gw, "stream_service"))
            svc = gw.gw.stream_service
            await wait_for(lambda: any(1 in s.subs for s in svc.sessions))
            session = next(iter(svc.sessions))
            big = [trade(i) for i in range(20_000)]
            await bus.publish_fast(big)
            for _ in range(200):
                if session.closed.is_set():
                    break
                await asyncio.sleep(0.05)
            assert session.close_code == 4008
            assert "slow consumer" in session.close_reason
            slow.close()

    asyncio.run(main())


def decoded(frame: str) -> list[dict]:
    return [msgspec.json.decode(x) for x in frame.split("\n")]


def test_streamed_messages_are_metered(pg_url, nats_url, tokens):
    """Counted per session (handed to the meter each heartbeat and at the end)."""

    async def main() -> dict:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            async with gw.connect(tokens["btc"]) as ws:
                await subscribe(ws, id="m", feed="sim", types=["trade"], symbols=["BTC-USD"])
                await bus.publish(*(trade(i) for i in range(5)))
                await until(ws, lambda m: m.get("trade_id") == "4")
            await wait_for(lambda: not gw.gw.stream_service.sessions, timeout=5)
            return gw.gw.meter.pending()

    pending = asyncio.run(main())
    ((key, (_, messages, size)),) = [(k, v) for k, v in pending.items() if k[3] == "stream"]
    assert key[1] == "btc" and key[4] == "display"
    assert messages >= 6 and size > 5 * 100  # subscribed + 5 trades (+ heartbeats)
