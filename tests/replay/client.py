"""A picows test client (what the connector uses): send, collect text frames, time them."""

from __future__ import annotations

import asyncio
import time

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class Collector(WSListener):
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.times: list[float] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.want = 0
        self.enough = asyncio.Event()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.frames.append(frame.get_payload_as_bytes())
            self.times.append(time.monotonic())
            if self.want and len(self.frames) >= self.want:
                self.enough.set()
        elif frame.msg_type == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code().value
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed.set()
        self.enough.set()


async def collect(
    url: str, send: list[str] | tuple[str, ...] = (), n: int = 0, timeout: float = 10.0
) -> Collector:
    """Connect, send `send`, wait for `n` text frames (or the close), disconnect.
    With n=0, listen for `timeout` seconds and return what arrived."""
    transport, client = await ws_connect(Collector, url)
    assert isinstance(client, Collector)
    client.want = n
    for msg in send:
        transport.send(WSMsgType.TEXT, msg.encode())
    try:
        await asyncio.wait_for(client.enough.wait(), timeout)
    except TimeoutError:
        if n:
            raise
    finally:
        transport.disconnect()
        await transport.wait_disconnected()
    return client
