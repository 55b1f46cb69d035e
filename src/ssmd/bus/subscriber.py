"""Raw NATS subscriber and an ordered JetStream push consumer on top of it.

Why not nats-py's subscription callback: per message it builds a `Msg`, parses headers
into a dict and hops through a queue and a callback — 18–31 µs of CPU per message on the
gateway's box, ~40% of its cost per record (bench/RESULTS.md, gateway). Here one socket
read is parsed in one pass (`wire.FrameParser`) and each subscription's callback gets the
read's messages as one list of `wire.Msg` tuples. JetStream management (creating
consumers) stays with nats-py; only the deliveries come this way.

`Subscriber`: one connection; PING/PONG keepalive; JetStream status messages (idle
heartbeats, flow-control requests) answered or dropped here, never handed on; reconnects
forever once connected (the first connect fails fast) and re-subscribes.

`OrderedConsumer`: what nats-py's `ordered_consumer=True` does — an ephemeral push
consumer, no acks, flow control, idle heartbeats — recreated from the last delivered
stream sequence + 1 on a consumer-sequence gap, a silence of two heartbeats, or a
reconnect: no message lost, none twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.wire import CRLF, FrameParser, Link, Msg, WireError, connect_command, parse_servers

log = logging.getLogger("ssmd.bus.subscriber")

BatchCallback = Callable[[list[Msg]], None]
JsMsg = tuple[int, int, bytes, bytes]
"""(stream sequence, pending, header block, payload) of one JetStream delivery."""


class _Sub:
    __slots__ = ("cb", "last", "sid", "subject")

    def __init__(self, sid: int, subject: str, cb: BatchCallback) -> None:
        self.sid, self.subject, self.cb = sid, subject, cb
        self.last = time.monotonic()
        """When a message or a status message last arrived (an idle consumer's pulse)."""


class Subscriber:
    """One NATS connection for subscriptions whose callbacks take whole reads."""

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        name: str = "ssmd-subscriber",
        connect_timeout: float = 3.0,
        ping_interval: float = 2.0,
        reconnect_wait: float = 0.5,
    ) -> None:
        self._servers = parse_servers(servers)
        self.name = name
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.reconnect_wait = reconnect_wait
        self.on_reconnect: list[Callable[[], None]] = []
        self.reconnects = 0
        self.connected = False
        self.closed = False
        self._subs: dict[int, _Sub] = {}
        self._next_sid = 0
        self._epoch = 0
        self._server_index = 0
        self._link: Link | None = None
        self._parser = FrameParser()
        self._info: asyncio.Future[None] | None = None
        self._pongs: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pings_out = 0
        self._last_rx = 0.0
        self._ticker: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> Subscriber:
        """Connect; BusUnreachable at once if the server is not there."""
        try:
            await self._connect_once()
        except BusUnreachable:
            self.closed = True
            raise
        self._ticker = asyncio.create_task(self._keepalive())
        return self

    async def close(self) -> None:
        self.closed = True
        for task in (self._ticker, self._reconnector):
            if task is not None:
                task.cancel()
        self._drop()

    # -- subscriptions ------------------------------------------------------------------

    def subscribe(self, subject: str, cb: BatchCallback) -> int:
        """`cb` gets each read's messages on `subject` as one list; returns the sid."""
        self._next_sid += 1
        sid = self._next_sid
        self._subs[sid] = _Sub(sid, subject, cb)
        self._write(f"SUB {subject} {sid}\r\n".encode())
        return sid

    def unsubscribe(self, sid: int) -> None:
        if self._subs.pop(sid, None) is not None:
            self._write(f"UNSUB {sid}\r\n".encode())

    def idle_s(self, sid: int) -> float:
        """Seconds since anything arrived for `sid`."""
        sub = self._subs.get(sid)
        return 0.0 if sub is None else time.monotonic() - sub.last

    async def flush(self, timeout: float = 5.0) -> None:
        """A PING round trip: what was written before has reached the server."""
        if not self.connected:
            raise BusUnreachable("NATS subscriber not connected")
        pong = asyncio.get_running_loop().create_future()
        self._pongs.append(pong)
        self._write(b"PING\r\n")
        await asyncio.wait_for(pong, timeout)

    # -- connection ---------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        link = self._link
        if link is not None and link.transport is not None:
            link.transport.write(data)

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        server = self._servers[self._server_index % len(self._servers)]
        self._server_index += 1
        self._epoch += 1
        epoch = self._epoch
        self._parser, self._pings_out = FrameParser(), 0
        self._info = loop.create_future()
        try:
            _, link = await asyncio.wait_for(
                loop.create_connection(lambda: Link(self, epoch), server.host, server.port),
                self.connect_timeout,
            )
            self._link = link
            await asyncio.wait_for(self._info, self.connect_timeout)
            pong = loop.create_future()
            self._pongs.append(pong)
            subs = b"".join(f"SUB {s.subject} {s.sid}\r\n".encode() for s in self._subs.values())
            self._write(connect_command(server, self.name) + subs + b"PING\r\n")
            await asyncio.wait_for(pong, self.connect_timeout)
        except (OSError, TimeoutError, ConnectionError, WireError) as exc:
            self._drop()
            if isinstance(exc, BusUnreachable):
                raise
            raise BusUnreachable(
                f"NATS unreachable at {server.where}: {exc or type(exc).__name__}"
            ) from None
        except BaseException:
            self._drop()
            raise
        self._last_rx = time.monotonic()
        self.connected = True

    def _drop(self) -> None:
        self.connected = False
        link, self._link = self._link, None
        if link is not None and link.transport is not None:
            link.transport.abort()
        for fut in self._pongs:
            if not fut.done():
                fut.set_exception(ConnectionError("NATS connection dropped"))
        self._pongs.clear()

    def _lost(self, epoch: int, exc: Exception | None) -> None:
        if epoch != self._epoch:
            return
        if self._info is not None and not self._info.done():
            self._info.set_exception(ConnectionError("closed before INFO"))
        self._fail(f"connection lost: {exc or 'closed by the server'}")

    def _fail(self, why: str) -> None:
        """Drop the connection and reconnect in the background (forever)."""
        was = self.connected
        self._drop()
        self._epoch += 1  # late events of the old transport are ignored
        if self.closed or not was:
            return
        log.warning("NATS subscriber %s: %s; reconnecting", self.name, why)
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = asyncio.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.reconnect_wait)
            try:
                await self._connect_once()
            except BusUnreachable:
                continue
            self.reconnects += 1
            for cb in list(self.on_reconnect):
                cb()
            return

    async def _keepalive(self) -> None:
        """PING after a quiet interval; two unanswered PINGs drop the connection."""
        while not self.closed:
            await asyncio.sleep(self.ping_interval / 2)
            if not self.connected or time.monotonic() - self._last_rx < self.ping_interval:
                continue
            if self._pings_out >= 2:
                self._fail(f"no answer to 2 PINGs in {self.ping_interval}s")
                continue
            self._pings_out += 1
            self._last_rx = time.monotonic()
            self._write(b"PING\r\n")

    # -- reading ------------------------------------------------------------------------

    def _received(self, epoch: int, data: bytes) -> None:
        if epoch != self._epoch:
            return
        now = self._last_rx = time.monotonic()
        try:
            msgs, lines = self._parser.feed(data)
        except WireError as exc:
            self._fail(str(exc))
            return
        if lines:
            self._lines(lines)
        if not msgs:
            return
        groups: dict[int, list[Msg]] = {}
        out = bytearray()
        for m in msgs:
            hdr = m[3]
            if hdr and hdr[8:9] == b" ":  # "NATS/1.0 100 ...": a JetStream status message
                if m[2]:  # a flow-control request: answering lets the server go on
                    out += b"PUB " + m[2] + b" 0\r\n\r\n"
                sub = self._subs.get(m[0])
                if sub is not None:
                    sub.last = now
                continue
            group = groups.get(m[0])
            if group is None:
                groups[m[0]] = [m]
            else:
                group.append(m)
        if out:
            self._write(bytes(out))
        for sid, group in groups.items():
            sub = self._subs.get(sid)
            if sub is None:
                continue  # unsubscribed: late deliveries
            sub.last = now
            try:
                sub.cb(group)
            except Exception:
                log.exception("subscriber callback for %s failed", sub.subject)

    def _lines(self, lines: list[bytes]) -> None:
        for line in lines:
            if line == b"PING":
                self._write(b"PONG" + CRLF)
            elif line == b"PONG":
                self._pings_out = 0
                if self._pongs:
                    fut = self._pongs.popleft()
                    if not fut.done():
                        fut.set_result(None)
            elif line[:4] == b"INFO":
                if self._info is not None and not self._info.done():
                    self._info.set_result(None)
            elif line[:4] == b"-ERR":
                err = ConnectionError(f"NATS error: {line[5:].decode(errors='replace')}")
                if self._info is not None and not self._info.done():
                    self._info.set_exception(err)
                self._fail(str(err))
                return


def ack_position(reply: bytes) -> tuple[int, int, int]:
    """(stream sequence, consumer sequence, pending) from a JetStream ack subject, v1 form
    (9 tokens) or v2 (domain and account hash after `$JS.ACK`). Why not nats-py's
    `Msg.metadata`: a datetime and three objects per message on the hot path."""
    t = reply.split(b".")
    off = 0 if len(t) == 9 else 2
    return int(t[5 + off]), int(t[6 + off]), int(t[8 + off])


class OrderedConsumer:
    """A stream's messages on `filter_subject`, in order, each once, in batches.

    `on_batch` gets a list of `JsMsg` per read. `stream_seq` is the last stream sequence
    handed on: a recreated consumer starts right after it.
    """

    def __init__(
        self,
        js: Any,
        subscriber: Subscriber,
        stream: str,
        config: ConsumerConfig,
        on_batch: Callable[[list[JsMsg]], None],
        *,
        heartbeat_s: float = 5.0,
    ) -> None:
        self.js, self.subscriber, self.stream = js, subscriber, stream
        self.config, self.on_batch, self.heartbeat_s = config, on_batch, heartbeat_s
        self.stream_seq = 0
        self.resets = 0
        self.num_pending = 0
        """Messages the consumer had to deliver when it was (re)created."""
        self._consumer_seq = 0
        self._sid = 0
        self._resetting: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> OrderedConsumer:
        await self._create(self.config)
        self._watchdog = asyncio.create_task(self._watch())
        self.subscriber.on_reconnect.append(self._reconnected)
        return self

    async def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(ValueError):
            self.subscriber.on_reconnect.remove(self._reconnected)
        for task in (self._watchdog, self._resetting):
            if task is not None:
                task.cancel()
        self.subscriber.unsubscribe(self._sid)

    async def _create(self, config: ConsumerConfig) -> None:
        """Subscribe a fresh inbox, then create the consumer that delivers to it."""
        sub = self.subscriber
        inbox = f"_INBOX.{secrets.token_hex(11)}"
        self._sid = sub.subscribe(inbox, self._on_msgs)
        self._consumer_seq = 0
        try:
            await sub.flush()  # the interest exists before the first delivery
            info = await self.js.add_consumer(
                self.stream,
                config=replace(
                    config, deliver_subject=inbox, ack_policy=AckPolicy.NONE, max_deliver=1,
                    flow_control=True, idle_heartbeat=self.heartbeat_s, mem_storage=True,
                    num_replicas=1,
                ),
            )  # fmt: skip
        except BaseException:
            sub.unsubscribe(self._sid)
            raise
        self.num_pending = info.num_pending
        if info.delivered is not None and info.delivered.stream_seq:
            self.stream_seq = max(self.stream_seq, info.delivered.stream_seq)

    def _on_msgs(self, msgs: list[Msg]) -> None:
        out: list[JsMsg] = []
        cseq, sseq = self._consumer_seq, self.stream_seq
        for m in msgs:
            s, c, pending = ack_position(m[2])
            if c != cseq + 1:
                self._reset(f"consumer sequence {c} after {cseq}")
                break
            cseq, sseq = c, s
            out.append((s, pending, m[3], m[4]))
        self._consumer_seq, self.stream_seq = cseq, sseq
        if out:
            self.on_batch(out)

    def _reconnected(self) -> None:
        self._reset("reconnected")

    def _reset(self, why: str) -> None:
        """Stop reading the old consumer now; recreate it from the next sequence."""
        if self._closed or (self._resetting is not None and not self._resetting.done()):
            return
        log.info("ordered consumer on %s: %s; recreating", self.stream, why)
        self.subscriber.unsubscribe(self._sid)
        self._resetting = asyncio.create_task(self._recreate())

    async def _recreate(self) -> None:
        delay = 0.1
        while not self._closed:
            config = replace(
                self.config, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.stream_seq + 1, opt_start_time=None,
            )  # fmt: skip
            try:
                await self._create(config)
            except Exception as exc:
                log.warning("ordered consumer on %s: cannot recreate (%r)", self.stream, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.resets += 1
            return

    async def _watch(self) -> None:
        """Two heartbeats of silence: the consumer is gone (e.g. a server restart)."""
        while not self._closed:
            await asyncio.sleep(self.heartbeat_s)
            resetting = self._resetting is not None and not self._resetting.done()
            if not resetting and self.subscriber.idle_s(self._sid) > 2 * self.heartbeat_s:
                self._reset("no heartbeat")
