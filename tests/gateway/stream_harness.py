"""A real gateway for the `/v1/stream` tests: uvicorn on a free port in the test's event
loop, a real Postgres (keys, clients) and a real NATS JetStream stream, records published
with their Msg-Ids the way the connector publishes them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from ssmd import spec
from ssmd.bus.message import record_message
from ssmd.bus.provision import ensure_streams
from ssmd.gateway.settings import GatewaySettings
from ssmd.gateway.state import Gateway
from ssmd.gateway.stream import StreamOptions, stream_endpoint
from ssmd.model.records import Book, Gap, Quote, Trade
from ssmd.model.time import now_ns
from ssmd.stack.ports import free_port

from .rest_helpers import issue, seed_clients

REPO = Path(__file__).resolve().parents[2]
ENV = "dev"
SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
PX = 10**9


def definition() -> spec.Environment:
    env = spec.load(REPO / "environments" / "dev.yaml")
    feed = msgspec.structs.replace(env.feeds["sim"], instruments=SYMBOLS)
    return msgspec.structs.replace(env, feeds={"sim": feed})


def trade(i: int, symbol: str = "BTC-USD", ts: int | None = None) -> Trade:
    t = now_ns() if ts is None else ts
    return Trade(
        feed="sim", venue="sim", symbol=symbol, ts_event=t, ts_recv=t,
        price=(100 + i % 50) * PX, size=PX // 100, side="buy", trade_id=str(i),
    )  # fmt: skip


def quote(i: int, symbol: str = "BTC-USD") -> Quote:
    t = now_ns()
    return Quote(
        feed="sim", venue="sim", symbol=symbol, ts_event=t, ts_recv=t, seq=i,
        bid_px=(100 + i) * PX, bid_sz=PX, ask_px=(101 + i) * PX, ask_sz=PX,
    )  # fmt: skip


def book(symbol: str, snapshot: bool, bids: list, asks: list, seq: int) -> Book:
    t = now_ns()
    return Book(
        feed="sim", venue="sim", symbol=symbol, ts_event=t, ts_recv=t, seq=seq,
        snapshot=snapshot, bids=[(p * PX, s * PX) for p, s in bids],
        asks=[(p * PX, s * PX) for p, s in asks],
    )  # fmt: skip


def gap(symbol: str) -> Gap:
    t = now_ns()
    return Gap(feed="sim", venue="sim", symbol=symbol, ts_recv=t, reason="checksum")


class Bus:
    """Publishes records into the real stream as the connector does (JetStream acks)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.nc: Any = None

    async def __aenter__(self) -> Bus:
        self.nc = await nats.connect(self.url)
        self.js = self.nc.jetstream()
        await ensure_streams(self.js, definition())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    async def publish(self, *records: Any) -> None:
        for r in records:
            subj, payload, mid = record_message(ENV, r, "unknown")
            await self.js.publish(subj, payload, headers={"Nats-Msg-Id": mid})

    async def publish_fast(self, records: list[Any]) -> None:
        """Core publishes with reply subjects (acks ignored): the connector's hot path."""
        for r in records:
            subj, payload, mid = record_message(ENV, r, "unknown")
            await self.nc.publish(
                subj, payload, reply="_INBOX.ignored", headers={"Nats-Msg-Id": mid}
            )
        await self.nc.flush()


class Served:
    def __init__(self, gw: Gateway, port: int, server: uvicorn.Server) -> None:
        self.gw, self.port, self.server = gw, port, server

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def connect(self, token: str | None, query: str = "", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = self.url + (f"?{query}" if query else "")
        return websockets.connect(url, additional_headers=headers, **kw)


class StalledClient:
    """A WebSocket client that subscribes and then never reads: a raw socket with a tiny
    receive buffer, so the server's writes block after a few KiB in flight."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, text: str) -> None:
        data = text.encode()
        assert len(data) < 126
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + body)

    def close(self) -> None:
        self.sock.close()


def app_for(gw: Gateway) -> Starlette:
    app = Starlette(routes=[WebSocketRoute("/v1/stream", stream_endpoint)])
    app.state.gw = gw
    return app


@contextlib.asynccontextmanager
async def gateway(
    pg_url: str,
    nats_url: str,
    options: StreamOptions | None = None,
    app: Any = None,
    defn: spec.Environment | None = None,
    **settings_kw: Any,
) -> AsyncIterator[Served]:
    """`app`: a factory gw -> ASGI app (default: just the stream route, no lifespan);
    `defn`: the environment definition (default `definition()`)."""
    own_dir = "data_dir" not in settings_kw  # never the repo's ./data
    if own_dir:
        settings_kw["data_dir"] = Path(tempfile.mkdtemp(prefix="ssmd-test-gw-"))
    settings = GatewaySettings(
        definition=defn or definition(), pg_url=pg_url, nats_url=nats_url, **settings_kw
    )
    gw = await asyncio.to_thread(Gateway, settings)
    gw.stream_options = options or StreamOptions(heartbeat_s=0.5)  # type: ignore[attr-defined]
    port = free_port()
    config = uvicorn.Config(
        app_for(gw) if app is None else app(gw), host="127.0.0.1", port=port,
        log_level="warning", ws="websockets-sansio", lifespan="off" if app is None else "on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield Served(gw, port, server)
    finally:
        gw.draining.set()
        svc = getattr(gw, "stream_service", None)
        if svc is not None:
            await svc.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await asyncio.to_thread(gw.close)
        if own_dir:
            shutil.rmtree(settings_kw["data_dir"], ignore_errors=True)


CLIENTS = [
    {"id": "all", "type": "non-display", "scopes": ["stream"], "entitlements": [{"feeds": ["*"]}]},
    {
        "id": "btc",
        "type": "display",
        "scopes": ["stream", "read"],
        "entitlements": [{"feeds": ["sim"], "symbols": ["BTC-*"], "types": ["trade", "quote"]}],
    },
    {
        "id": "books",
        "scopes": ["stream"],
        "entitlements": [{"feeds": ["sim"], "symbols": ["BTC-USD"], "types": ["book"]}],
    },
    {
        "id": "old",
        "scopes": ["stream"],
        "entitlements": [{"feeds": ["sim"], "start": "2020-01-01", "end": "2020-12-31"}],
    },
    {"id": "reader", "scopes": ["read"], "entitlements": [{"feeds": ["*"]}]},
    {"id": "other", "scopes": ["stream"], "entitlements": [{"feeds": ["other"]}]},
    {
        "id": "recent",
        "scopes": ["stream"],
        "entitlements": [{"feeds": ["sim"], "lookback": 60 * 10**9}],
    },
]


def seed(pg_url: str) -> dict[str, str]:
    """Clients above, one key each: client id -> token."""
    seed_clients(pg_url, ENV, CLIENTS)
    return {c["id"]: issue(pg_url, ENV, c["id"]).token for c in CLIENTS}


async def recv_json(ws: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The next messages: held-back ones first, else one frame's (a frame is JSON Lines)."""
    held = getattr(ws, "held", None)
    if held:
        ws.held = []
        return held
    frame = await asyncio.wait_for(ws.recv(), timeout)
    return [msgspec.json.decode(line) for line in frame.split("\n") if line]


async def until(ws: Any, pred: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Messages received up to the first that satisfies pred (inclusive); the rest of
    its frame is held for the next read."""
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        try:
            if left <= 0:
                raise TimeoutError
            msgs = await recv_json(ws, left)
        except TimeoutError:
            raise AssertionError(f"no matching message within {timeout}s; got {out[-5:]}") from None
        for i, m in enumerate(msgs):
            out.append(m)
            if pred(m):
                ws.held = msgs[i + 1 :]
                return out


async def collect(ws: Any, seconds: float) -> list[dict[str, Any]]:
    """Every message received within `seconds`."""
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            out.extend(await recv_json(ws, left))
        except TimeoutError:
            break
    return out


async def subscribe(ws: Any, **req: Any) -> dict[str, Any]:
    await ws.send(msgspec.json.encode({"op": "subscribe", **req}).decode())
    msgs = await until(ws, lambda m: m.get("op") in ("subscribed", "error"))
    return next(m for m in msgs if m.get("op") in ("subscribed", "error"))
