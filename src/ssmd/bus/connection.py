"""Connecting to NATS with errors that say what to do."""

from __future__ import annotations

import nats
from nats.aio.client import Client


class BusUnreachable(ConnectionError):
    """NATS did not answer; the message names the URL."""


async def connect(url: str, *, name: str = "ssmd", timeout: float = 3.0) -> Client:
    """Connect once, without the client's endless background reconnect on first failure."""
    try:
        return await nats.connect(
            url,
            name=name,
            connect_timeout=timeout,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
    except Exception as exc:  # nats raises several unrelated types for "not there"
        raise BusUnreachable(f"NATS unreachable at {url}: {exc or type(exc).__name__}") from None
