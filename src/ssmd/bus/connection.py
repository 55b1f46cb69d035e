"""Connecting to NATS with errors that say what to do."""

from __future__ import annotations

import nats
from nats.aio.client import Client


class BusUnreachable(ConnectionError):
    """NATS did not answer; the message names the URL."""


async def connect(url: str, *, name: str = "ssmd", timeout: float = 3.0) -> Client:
    """Connect, giving up quickly when the server is not there.

    nats-py treats max_reconnect_attempts=0 as "forever" on the first connect, so we
    allow one retry and keep its errors quiet (we report one clear error instead).
    """

    async def quiet(_exc: Exception) -> None:
        return None

    try:
        return await nats.connect(
            url,
            name=name,
            connect_timeout=timeout,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            allow_reconnect=False,
            error_cb=quiet,
        )
    except Exception as exc:  # nats raises several unrelated types for "not there"
        raise BusUnreachable(f"NATS unreachable at {url}: {exc or type(exc).__name__}") from None
