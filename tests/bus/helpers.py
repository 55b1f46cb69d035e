"""Shared bits of the bus tests: records, a stream, reading a stream back."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.js.api import StreamConfig

from ssmd.bus.msgid import msg_id
from ssmd.bus.subjects import subject
from ssmd.model.codec import encode
from ssmd.model.records import Trade

T = TypeVar("T")
ENV, FEED, STREAM = "test", "feed", "MD_TEST_FEED"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def trade(i: int, ts_recv: int = 1_700_000_000_000_000_000) -> Trade:
    """The i-th venue event; ts_recv is the capturing connector's own clock."""
    return Trade(
        feed=FEED, venue="sim", symbol="BTC-USD", ts_event=1_700_000_000_000_000_000 + i,
        ts_recv=ts_recv + i, price=(50_000 + i % 7) * 10**9, size=10**7, side="buy",
        trade_id=str(i),
    )  # fmt: skip


def wire(record: Trade) -> tuple[str, bytes, str]:
    """(subject, payload, msg id) as the connector publishes a record."""
    return subject(ENV, FEED, "trade", record.symbol), encode(record), msg_id(record, "venue")


async def add_stream(url: str, duplicate_window: float = 120.0) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(
            StreamConfig(
                name=STREAM, subjects=[f"md.{ENV}.{FEED}.>"], duplicate_window=duplicate_window
            )
        )
    finally:
        await nc.close()


async def read_stream(url: str, name: str = STREAM) -> list[tuple[str | None, bytes]]:
    """Every message of the stream, in stream order: (Nats-Msg-Id, data)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(name, seq)
            out.append(((msg.headers or {}).get("Nats-Msg-Id"), msg.data or b""))
        return out
    finally:
        await nc.close()


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll (event-loop friendly) until predicate() is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
