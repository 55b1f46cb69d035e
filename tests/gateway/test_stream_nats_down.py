"""Streaming without NATS: the first connect fails fast with a clear error (never a
handshake that hangs), and once connected the gateway rides out a NATS restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tests.conftest import running, temp_dir

from ssmd.bus.connection import BusUnreachable
from ssmd.gateway.app import create_app
from ssmd.gateway.state import Gateway
from ssmd.gateway.stream import StreamService
from ssmd.stack.nats import NatsServer
from ssmd.stack.ports import free_port

from .stream_harness import Bus, gateway, recv_json, seed, subscribe, trade, until


def test_first_connect_fails_fast_when_nats_is_down() -> None:
    url = f"nats://127.0.0.1:{free_port()}"

    async def main() -> None:
        t0 = time.monotonic()
        with pytest.raises(BusUnreachable, match="NATS unreachable at"):
            await asyncio.wait_for(StreamService("dev", url).start(), 20)
        assert time.monotonic() - t0 < 10

    asyncio.run(main())


def test_the_gateway_starts_and_a_client_is_told_unavailable_when_nats_is_down(
    pg_url: str,
) -> None:
    """The app as `ssmd gateway` serves it (lifespan on: its status heartbeat gives up on
    NATS too) starts; a stream client gets `unavailable` and 1011 within seconds."""
    tokens = seed(pg_url)
    url = f"nats://127.0.0.1:{free_port()}"

    def app(gw: Gateway) -> Any:
        return create_app(gw.settings, gateway=gw)

    async def main() -> None:
        async with gateway(pg_url, url, app=app) as gw, gw.connect(tokens["all"]) as ws:
            (msg,) = await recv_json(ws, timeout=10)
            assert msg["op"] == "error" and msg["code"] == "unavailable"
            assert "NATS unreachable at" in msg["message"]
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1011

    asyncio.run(main())


def test_once_connected_the_service_reconnects_after_a_nats_restart() -> None:
    async def main(server: NatsServer) -> None:
        service = await StreamService("dev", server.url).start()
        try:
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(1.0)  # a few failed reconnect attempts
            await asyncio.to_thread(server.start)
            deadline = time.monotonic() + 20
            sub = service.subscriber
            assert sub is not None
            while not (service.nc.is_connected and sub.connected) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert service.nc.is_connected and sub.connected  # management and live deliveries
            await service.nc.flush(timeout=5)
            await sub.flush(timeout=5)
        finally:
            await service.close()

    with running(NatsServer(temp_dir("nats-restart"), port=free_port())) as server:
        asyncio.run(main(server))


def test_a_live_client_gets_every_record_across_a_nats_restart(pg_url: str) -> None:
    """The shared consumer is recreated after the restart from the last stream sequence it
    delivered: the records published before and after arrive, each once, in order."""
    tokens = seed(pg_url)

    async def publish(url: str, ids: range) -> None:
        deadline = time.monotonic() + 20
        while True:  # JetStream takes a moment to come back after a restart
            try:
                async with Bus(url) as bus:
                    await bus.publish(*(trade(i) for i in ids))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def main(server: NatsServer) -> list[str]:
        await publish(server.url, range(0))  # the stream exists
        async with gateway(pg_url, server.url) as gw, gw.connect(tokens["all"]) as ws:
            assert (await subscribe(ws, id="t", feed="sim", types=["trade"]))["op"] == "subscribed"
            await publish(server.url, range(3))
            msgs = await until(ws, lambda m: m.get("trade_id") == "2")
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.start)
            await publish(server.url, range(3, 6))
            msgs += await until(ws, lambda m: m.get("trade_id") == "5", timeout=20)
            return [m["trade_id"] for m in msgs if "trade_id" in m]

    with running(NatsServer(temp_dir("nats-gw-restart"), port=free_port())) as server:
        assert asyncio.run(main(server)) == [str(i) for i in range(6)]
