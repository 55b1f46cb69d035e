"""The replay server: a picows WebSocket server speaking a venue's protocol from a feed.

One listening port serves both the WebSocket (any path; the venue's usual path is in
`.url`) and the REST siblings (plain HTTP GETs without an Upgrade header, `.rest_url`),
so a connector can fetch snapshots and instrument lists from the same place.

The stream path bypasses per-frame sends: batches of pre-encoded payloads are framed
into one buffer and written once (see `wire.py`), honouring the transport's flow
control. Control replies (acks, pongs) go through picows.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_right
from collections.abc import Sequence
from itertools import islice
from operator import le
from pathlib import Path
from typing import Any

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from ssmd.replay.faults import FaultPlan, FaultSpec
from ssmd.replay.recorded import RecordedFeed
from ssmd.replay.session import Feed, RestResponse, Session
from ssmd.replay.synthetic import SyntheticFeed
from ssmd.replay.wire import frames_text, log_event

LOOPBACK = "127.0.0.1"
PING_EVERY_S = 20.0
"""Binance: 'The WebSocket server will send a ping frame every 20 seconds'."""
BATCH = 512
"""Frames taken from the feed per write when nothing paces them."""
PACE_S = 0.001
"""Paced frames due within this much of now go out together in one write (the event
loop's timer resolution; a venue's own send loop batches the same way at high rates):
at 57k frames/s one write per frame cost the server ~4 µs of CPU a frame, and the reader
a socket read and a loop turn per frame."""

__all__ = ["ReplayServer"]


class ReplayServer:
    """Serve recordings or a synthetic tape over WebSocket (+ REST) on one port.

    `async with ReplayServer(synthetic="sim", symbols=["BTC-USD"], seed=1) as srv:`
    then connect to `srv.url`. `speed` scales recorded time (1 = recorded pace,
    0 = as fast as possible); `rate` is the synthetic tape's frames/s (0 = flat out).
    """

    def __init__(
        self,
        recordings: Sequence[str | Path] = (),
        *,
        synthetic: str | None = None,
        symbols: Sequence[str] = (),
        seed: int = 0,
        rate: float = 0.0,
        speed: float = 1.0,
        faults: str | FaultSpec = "",
        host: str = LOOPBACK,
        port: int = 0,
        venue: str | None = None,
        depth: int | None = None,
        start_ns: int | None = None,
        prebuild: int = 0,
        heartbeat_s: float = 1.0,
    ) -> None:
        if bool(recordings) == bool(synthetic):
            raise ValueError("give either recordings or synthetic=VENUE (not both, not neither)")
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        self.faults = faults if isinstance(faults, FaultSpec) else FaultSpec.parse(faults)
        self.speed = speed
        self.seed = seed
        self.host = host
        self.port = port
        self.heartbeat_s = heartbeat_s
        self.feed: Feed
        if synthetic:
            self.feed = SyntheticFeed(synthetic, symbols, seed, rate, depth, start_ns, prebuild)
            if speed != 1.0:
                raise ValueError("speed applies to recordings; use rate for synthetic mode")
        else:
            self.feed = RecordedFeed(recordings, venue)
        self.venue = self.feed.venue
        self.frames_sent = 0
        """Stream frames written to clients (all connections; duplicates count)."""
        self.connections = 0
        """Connections accepted so far."""
        self.active: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> ReplayServer:
        # No picows auto-ping: it also arms on plain-HTTP (REST) connections and resets
        # them; venues that ping (Binance) get pings from `_Connection._pinger` instead.
        self._server = await ws_create_server(
            self._route, self.host, self.port, websocket_handshake_timeout=5
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        log_event("listening", url=self.url, rest_url=self.rest_url, venue=self.venue,
                  faults=self.faults.text)  # fmt: skip
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.active):
            conn.close(WSCloseCode.GOING_AWAY)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)
        self._server = None
        log_event("stopped", frames_sent=self.frames_sent, connections=self.connections)

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    async def __aenter__(self) -> ReplayServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.feed.ws_path}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- routing ------------------------------------------------------------------------

    def _route(self, request: WSUpgradeRequest) -> Any:
        path = request.path.decode("latin-1")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self._rest(path)
        self.connections += 1
        session = self.feed.session(path, self.connections)
        plan = self.faults.for_connection(self.connections, self.seed)
        return _Connection(self, session, plan, self.connections, path)

    def _rest(self, path: str) -> WSUpgradeResponseWithListener:
        try:
            res = self.feed.rest(path)
        except Exception as exc:  # a bad query must not take the server down
            res = RestResponse(400, f'{{"error":"{type(exc).__name__}"}}'.encode())
        log_event("rest", path=path, status=res.status, bytes=len(res.body))
        headers = {"Content-Type": res.content_type}
        if res.status < 400:
            resp = WSUpgradeResponse.create_ok_response(res.body, headers)
        else:
            resp = WSUpgradeResponse.create_error_response(res.status, res.body, headers)
        return WSUpgradeResponseWithListener(resp, None)


class _Connection(WSListener):
    """One client: greeting, replies, the paced/faulted stream, heartbeats."""

    def __init__(
        self, server: ReplayServer, session: Session, plan: FaultPlan, conn: int, path: str
    ) -> None:
        self.server = server
        self.session = session
        self.plan = plan
        self.conn = conn
        self.path = path
        self.transport: WSTransport | None = None
        self.pump: asyncio.Task[None] | None = None
        self.beat: asyncio.Task[None] | None = None
        self.pinger: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.sent = 0
        self.last_write = 0.0
        self.stalled = False
        self.ended = False

    # -- picows callbacks -----------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.server.active.add(self)
        peer = transport.underlying_transport.get_extra_info("peername")
        log_event("connect", conn=self.conn, path=self.path, peer=str(peer))
        for frame in self.session.greeting():
            transport.send(WSMsgType.TEXT, frame)
        if self.session.autostart():
            self._start()
        if self.server.feed.auto_ping:
            self.pinger = asyncio.get_running_loop().create_task(self._pinger())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT:
            reply = self.session.on_text(frame.get_payload_as_bytes())
            for out in reply.frames:
                transport.send(WSMsgType.TEXT, out)
            if reply.start:
                self._start()
        elif kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server.active.discard(self)
        for task in (self.pump, self.beat, self.pinger):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        c = self.plan.counts
        log_event("disconnect", conn=self.conn, frames_sent=self.sent, dropped=c.dropped,
                  duplicated=c.duplicated, reordered=c.reordered, corrupted=c.corrupted,
                  stalls=c.stalls, stream_ended=self.ended)  # fmt: skip

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    # -- stream ---------------------------------------------------------------------------

    def _start(self) -> None:
        if self.pump is not None:
            return
        loop = asyncio.get_running_loop()
        log_event("subscribed", conn=self.conn)
        # a task, so the rest of the client's pending frames (more subscribes) run first
        self.pump = loop.create_task(self._pump())
        if self.session.heartbeat is not None and self.server.heartbeat_s > 0:
            self.beat = loop.create_task(self._heartbeat())

    def close(self, code: WSCloseCode = WSCloseCode.GOING_AWAY, abrupt: bool = False) -> None:
        t = self.transport
        if t is None or t.is_disconnected:
            return
        if abrupt:
            t.disconnect(graceful=False)
            return
        t.send_close(code, b"replay server")
        t.disconnect()

    def _write(self, out: list[bytes]) -> None:
        assert self.transport is not None
        self.transport.underlying_transport.write(frames_text(out))
        self.sent += len(out)
        self.server.frames_sent += len(out)
        self.last_write = asyncio.get_running_loop().time()

    async def _pump(self) -> None:
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        session, plan = self.session, self.plan
        speed = self.server.speed
        scale = 1e-9 / speed if speed > 0 else 0.0
        t0 = loop.time()
        index = 0
        transport = self.transport
        assert transport is not None
        while not transport.is_disconnected:
            got = session.take(BATCH)
            if got is None:
                break
            payloads, dues = got
            if not payloads:
                await asyncio.sleep(0.05)  # nothing subscribed yet
                continue
            if not plan and (not scale or t0 + dues[-1] * scale <= loop.time()):
                self._write(payloads)
                index += len(payloads)
            elif not plan and all(map(le, dues, islice(dues, 1, None))):
                index += await self._paced(payloads, dues, t0, scale)
            else:
                out: list[bytes] = []
                for payload, due in zip(payloads, dues, strict=True):
                    if scale and due:
                        wait = t0 + due * scale - loop.time()
                        if wait > PACE_S:
                            if out:
                                self._write(out)
                                out = []
                            await asyncio.sleep(wait)
                    if plan:
                        action = plan.control(index)
                        if action is not None:
                            if out:
                                self._write(out)
                                out = []
                            kind, seconds = action
                            if kind == "stall":
                                log_event("fault", conn=self.conn, kind="stall", index=index,
                                          seconds=seconds)  # fmt: skip
                                self.stalled = True
                                await asyncio.sleep(seconds)
                                self.stalled = False
                                t0 += seconds
                            else:
                                log_event("fault", conn=self.conn, kind=kind, index=index)
                                self.close(abrupt=kind == "kill")
                                return
                        plan.apply(index, payload, out)
                    else:
                        out.append(payload)
                    index += 1
                if out:
                    self._write(out)
            if transport.is_disconnected:
                return
            if not self.writable.is_set():
                await self.writable.wait()
            else:
                await asyncio.sleep(0)
        if plan:
            tail: list[bytes] = []
            plan.finish(tail)
            if tail:
                self._write(tail)
        self.ended = True
        log_event("stream-end", conn=self.conn, frames_sent=self.sent)

    async def _paced(self, payloads: list[bytes], dues: list[int], t0: float, scale: float) -> int:
        """Paced frames in time order, no faults planned: each run of frames due within
        PACE_S of now goes out in one write (its end found by bisection, not frame by
        frame), then a sleep until the next one is due. Returns the frames written."""
        loop = asyncio.get_running_loop()
        done, end = 0, len(payloads)
        while done < end:
            due_by = bisect_right(dues, (loop.time() + PACE_S - t0) / scale, done)
            if due_by > done:
                self._write(payloads[done:due_by])
                done = due_by
            else:
                await asyncio.sleep(t0 + dues[done] * scale - loop.time())
        return done

    async def _pinger(self) -> None:
        assert self.transport is not None
        while not self.transport.is_disconnected:
            await asyncio.sleep(PING_EVERY_S)
            if not self.stalled:
                self.transport.send_ping(b"replay")

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        beat = self.session.heartbeat
        every = self.server.heartbeat_s
        assert beat is not None and self.transport is not None
        while not self.transport.is_disconnected:
            await asyncio.sleep(every)
            if not self.stalled and loop.time() - self.last_write >= every:
                self.transport.send(WSMsgType.TEXT, beat)
                self.last_write = loop.time()
