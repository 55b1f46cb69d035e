"""The streaming iterator against a real `/v1/stream` (uvicorn, Postgres keys, JetStream):
typed records, typed refusals, reconnect + resume without duplicates or losses."""

from __future__ import annotations

import asyncio

import pytest

from gateway.stream_harness import Bus, gateway, seed, trade
from ssmd.client import (
    AuthenticationError,
    Client,
    Live,
    PermissionDenied,
    Reconnecting,
    Subscribed,
)
from ssmd.client.stream import Stream
from ssmd.model.records import Trade


@pytest.fixture
def tokens(pg_url: str) -> dict[str, str]:
    return seed(pg_url)


def http_url(gw) -> str:  # type: ignore[no-untyped-def]
    return f"http://127.0.0.1:{gw.port}"


async def take(it, n: int, timeout: float = 10.0) -> list:  # type: ignore[no-untyped-def]
    out = []

    async def run() -> None:
        async for item in it:
            out.append(item)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


def test_stream_yields_typed_records_and_resumes_without_duplicates(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            s = Stream(http_url(gw), tokens["btc"], "sim", types=["trade"], symbols=["BTC-*"],
                       events=True, initial_backoff=0.05)  # fmt: skip
            it = aiter(s)
            [sub] = await take(it, 1)
            assert isinstance(sub, Subscribed) and sub.types == ("trade",)
            first = [trade(i, "BTC-USD") for i in range(10)]
            await bus.publish(trade(99, "ETH-USD"), *first)  # ETH: not subscribed
            got = await take(it, 10)
            assert got == first and all(isinstance(r, Trade) for r in got)

            # the server drops the connection; records published meanwhile
            [session] = list(gw.gw.stream_service.sessions)
            await session.ws.close(1012, "restarting")
            later = [trade(i, "BTC-USD") for i in range(10, 20)]
            await bus.publish(*later)
            items = await take(it, 13)  # reconnecting, subscribed, 10 records, live (any order)
            assert isinstance(items[0], Reconnecting) and items[0].resume_from is not None
            assert items[0].resume_from <= first[-1].ts_recv
            recs = [i for i in items if isinstance(i, Trade)]
            assert recs == later  # the replay re-sent first[...]: dropped, nothing lost
            assert any(isinstance(i, Live) for i in items)
            assert s.duplicates >= 1 and s.connections == 2

            # live again after the seam
            more = [trade(i, "BTC-USD") for i in range(20, 23)]
            await bus.publish(*more)
            assert await take(it, 3) == more
            await s.aclose()

    asyncio.run(main())


def test_stream_refusals_are_typed(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url), gateway(pg_url, nats_url) as gw:
            with pytest.raises(AuthenticationError) as err:
                await take(aiter(Stream(http_url(gw), "ssmd_0123456789ab_bad", "sim")), 1)
            assert err.value.code == "invalid_api_key"
            with pytest.raises(PermissionDenied) as err:  # no 'stream' scope
                await take(aiter(Stream(http_url(gw), tokens["reader"], "sim")), 1)
            assert err.value.code == "missing_scope"
            with pytest.raises(PermissionDenied) as err:  # not entitled to books
                await take(aiter(Stream(http_url(gw), tokens["btc"], "sim", types=["book"],
                                        symbols=["BTC-USD"])), 1)  # fmt: skip
            assert err.value.code == "forbidden" and err.value.message

    asyncio.run(main())


def test_stream_from_start_replays_then_goes_live(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            old = [trade(i, "BTC-USD") for i in range(5)]
            await bus.publish(*old)
            c = Client(http_url(gw), tokens["btc"])
            async with c.stream("sim", types=["trade"], symbols=["BTC-USD"],
                                start=old[0].ts_recv, events=True) as s:  # fmt: skip
                it = aiter(s)
                items = await take(it, 7)  # subscribed, 5 replayed, live
                assert isinstance(items[0], Subscribed) and items[0].from_ns == old[0].ts_recv
                assert items[1:6] == old and items[6] == Live(replayed=5)
                new = trade(50, "BTC-USD")
                await bus.publish(new)
                assert await take(it, 1) == [new]

    asyncio.run(main())
