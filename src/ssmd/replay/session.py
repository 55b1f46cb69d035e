"""What one connection of the replay server does, independent of sockets.

A `Session` answers the client's messages (subscribe acks, pongs), says when the stream
starts, and hands out the stream in batches with their due times, so the server loop
(`server.py`) only paces, injects faults and writes. A `Feed` is the per-server source
of sessions and the REST endpoints that go with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Feed", "Reply", "RestResponse", "Session"]


@dataclass
class Reply:
    frames: list[bytes] = field(default_factory=list)
    """Text frames to send now (acks, pongs, snapshots)."""
    start: bool = False
    """Begin streaming (the first subscribe)."""


@dataclass(frozen=True)
class RestResponse:
    status: int
    body: bytes
    content_type: str = "application/json"


class Session(Protocol):
    heartbeat: bytes | None
    """Frame to send when the stream has been idle for a second (None: the venue sends none)."""

    def greeting(self) -> list[bytes]:
        """Frames the venue sends on connect, before any subscribe."""
        ...

    def autostart(self) -> bool:
        """True if the stream starts on connect (subscriptions in the URL)."""
        ...

    def on_text(self, payload: bytes) -> Reply: ...

    def take(self, n: int) -> tuple[list[bytes], list[int]] | None:
        """About `n` stream frames and their due offsets (ns since the stream start at
        speed 1); empty lists when nothing is due to a subscription yet, None at the end."""
        ...


class Feed(Protocol):
    venue: str
    ws_path: str
    auto_ping: bool
    """The venue pings (Binance): the server sends WebSocket pings every 20 s."""

    def session(self, path: str, conn: int) -> Session: ...

    def rest(self, path: str) -> RestResponse: ...
