"""Acked JetStream publisher: pipelined, bounded, outage-aware (DESIGN.md §1.4, §6).

Why not nats-py's `js.publish`: it waits one round trip per message (~4k/s here), and
even its core `publish` spends ~5 µs per message in Python. JetStream acks any core
publish that carries a reply subject, so this module speaks the NATS client protocol
itself on one asyncio connection: `HPUB subject _INBOX.<epoch>.<n>` with a `Nats-Msg-Id`
header, many messages per socket write, and one subscription on `_INBOX.<epoch>.*` that
matches each ack `{"stream":..,"seq":..[,"duplicate":true]}` to its message by `<n>`.

Contract with the caller (the connector):

- Each record is published with a caller-chosen integer `position` (journal position),
  strictly increasing. `watermark` is the largest position P such that every record
  published with a position <= P has been acked by JetStream. `on_ack(position, dup)` is
  called for each record in position order as the watermark passes it; `on_acks(position,
  duplicates)` once per socket read that moved it, with how many of the records it passed
  were duplicates (no Python call per message: what the connector's outbox uses).
- At most `window` records are in flight; `publish` waits for room, `try_publish` says
  False, `try_publish_many` queues what fits (one C call frames them all). Memory is
  bounded by the window.
- On an outage (connection lost, ack timeout, stale connection, error ack) the state
  turns "unavailable", `error` holds the exception, every in-flight record is forgotten
  (not acked, watermark unchanged) and `publish` raises `Unavailable` at once. The
  publisher reconnects in the background. When `state == "connected"` again the caller
  replays from its journal starting right after `watermark`; the next position must be
  > watermark. Records that were stored but whose ack was lost are deduplicated by their
  Msg-Id *if* the replay happens within the stream's duplicate window (docs/wire-formats.md, NATS).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.wire import Link, connect_command, parse_servers
from ssmd.model.native import _native

State = Literal["connecting", "connected", "unavailable", "closed"]
AckCallback = Callable[[int, bool], None]
AcksCallback = Callable[[int, int], None]
StateCallback = Callable[[State, BaseException | None], None]

_CRLF = b"\r\n"
# A complete plain ack on our one subscription (sid 1); anything else takes the full parser.
_PLAIN_ACK = re.compile(
    rb'MSG [^ ]+\.(\d{1,18}) 1 \d+\r\n\{"stream":"[^"]*","seq":\d+(,"duplicate": ?true)?\}\r\n'
)
_HDR_FIXED = len(b"NATS/1.0\r\nNats-Msg-Id: \r\n\r\n")


def _acks_python(buf: bytes, pos: int) -> tuple[int, int, int, bool]:
    """`_native.acks`: the run of plain acks at `pos` numbered first, first + 1, … that
    share one duplicate flag, as (end, first, count, duplicate); count 0: none there."""
    first = count = 0
    duplicate = False
    while (m := _PLAIN_ACK.match(buf, pos)) is not None:
        n, dup = int(m[1]), m[2] is not None
        if not count:
            first, duplicate = n, dup
        elif n != first + count or dup != duplicate:
            break
        count += 1
        pos = m.end()
    return pos, first, count, duplicate


_hpub = None if _native is None else _native.hpub
_acks = _acks_python if _native is None else _native.acks


class Unavailable(BusUnreachable):
    """Publishing is impossible right now (outage); keep journaling and replay later."""


class AckTimeout(Unavailable):
    """The oldest in-flight message was not acked in time."""


class PublishRejected(Unavailable):
    """JetStream answered with an error (no stream for the subject, limits, …)."""


@dataclass
class Stats:
    """Counters since start: what `ssmd status` and benchmarks report."""

    published: int = 0
    acked: int = 0
    duplicates: int = 0
    outages: int = 0
    dropped: int = 0  # in flight when an outage struck: to be replayed by the caller
    reconnects: int = 0


class Publisher:
    """One NATS connection publishing to JetStream with per-message acks.

    Use: `pub = Publisher(url); await pub.start(); await pub.publish(subj, data, mid, pos)`.
    """

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        window: int = 8192,
        ack_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        ping_interval: float = 2.0,
        reconnect_wait: tuple[float, float] = (0.05, 1.0),
        watermark: int = 0,
        on_ack: AckCallback | None = None,
        on_acks: AcksCallback | None = None,
        on_state: StateCallback | None = None,
        name: str = "ssmd-publisher",
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._servers = parse_servers(servers)
        self.window = window
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.reconnect_wait = reconnect_wait
        self.on_ack = on_ack
        self.on_acks = on_acks
        self.on_state = on_state
        self.name = name
        self.stats = Stats()
        self.watermark = watermark
        self._reported = (watermark, 0)  # watermark and stats.duplicates told to on_acks
        self.error: BaseException | None = None  # why the state is what it is
        self.last_attempt_error: BaseException | None = None  # latest failed reconnect
        self._state: State = "connecting"
        self._last_position = watermark
        self._epoch = 0
        self._conn: Link | None = None
        self._max_payload = 1 << 20
        # in flight, oldest first, one entry per publish call: (first n, first position,
        # count, monotonic send time); n and position increase by 1 inside an entry, n also
        # from one entry to the next
        self._inflight: collections.deque[tuple[int, int, int, float]] = collections.deque()
        self._in_flight = 0  # messages in `_inflight`
        self._early: dict[int, bool] = {}  # acks that overtook older messages
        self._next_n = 0
        self._inbox = b""
        self._inbox_str = ""
        self._out = bytearray()
        self._flush_handle: asyncio.Handle | None = None
        self._rbuf = b""
        self._need = -1  # payload bytes expected after a MSG/HMSG line, -1 = a line
        self._msg_subject = b""
        self._msg_hlen = 0
        self._info: asyncio.Future[dict] | None = None
        self._pongs: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pings_out = 0
        self._last_rx = 0.0
        self._connected = asyncio.Event()
        self._changed: asyncio.Future[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._tick_due = 0.0
        self._was_late = False
        self._server_index = 0

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def start(self, *, wait: bool = True) -> Publisher:
        """Connect. wait=True: raise BusUnreachable if the first attempt fails;
        wait=False: keep trying in the background (state "connecting" until then)."""
        loop = asyncio.get_running_loop()
        self._ticker = loop.call_later(self._tick_every, self._tick)
        self._tick_due = time.monotonic() + self._tick_every
        if wait:
            try:
                await self._connect_once()
            except BusUnreachable as exc:
                await self.close()
                raise BusUnreachable(str(exc)) from None
        else:
            self._reconnector = asyncio.ensure_future(self._reconnect_loop())
        return self

    async def close(self, *, drain: float | None = 5.0) -> None:
        """Wait up to `drain` seconds for in-flight acks, then disconnect for good."""
        if drain and self._state == "connected" and self._inflight:
            with contextlib.suppress(TimeoutError, Unavailable):
                await asyncio.wait_for(self.flush(), drain)
        self._set_state("closed", self.error)
        if self._reconnector is not None:
            self._reconnector.cancel()
        if self._ticker is not None:
            self._ticker.cancel()
        self._drop_connection()
        self._wake()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """True once connected (at once if already), False after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- publishing ---------------------------------------------------------------------

    def try_publish(
        self, subject: str, payload: bytes, msg_id: str, position: int | None = None
    ) -> bool:
        """Queue one message if the window has room (False if full).

        Raises Unavailable during an outage and ValueError for a position that does not
        increase. `subject` and `msg_id` must not contain spaces or CR/LF.
        """
        if self._state != "connected":
            raise self._unavailable()
        if self._in_flight >= self.window:
            return False
        if position is None:
            position = self._last_position + 1
        elif position <= self._last_position:
            raise self._out_of_order(position)
        if len(payload) > self._max_payload:
            raise ValueError(f"payload of {len(payload)} bytes > server max {self._max_payload}")
        if " " in subject or "\r" in subject or "\n" in subject or "\n" in msg_id:
            raise ValueError(f"subject {subject!r} / msg id {msg_id!r} would break the protocol")
        n = self._next_n
        self._next_n = n + 1
        self._last_position = position
        mid = msg_id.encode()
        hlen = _HDR_FIXED + len(mid)
        out = self._out
        out += (
            f"HPUB {subject} {self._inbox_str}{n} {hlen} {hlen + len(payload)}\r\n"
            f"NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n"
        ).encode()
        out += payload
        out += _CRLF
        self._inflight.append((n, position, 1, time.monotonic()))
        self._in_flight += 1
        self.stats.published += 1
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        return True

    def try_publish_many(
        self, messages: Iterable[Sequence[Any]], position: int | None = None
    ) -> int:
        """Queue the leading messages, `(subject, payload, msg_id, ...)` each, that the
        window has room for, at positions `position`, `position + 1`, …; how many (0: the
        window is full).

        One C call frames them all and in-flight entries are added in bulk: the per-message
        cost of the connector's outbox. A message C declines (one `try_publish` refuses,
        or an odd type) ends the batch; when it is the first, `try_publish` takes it and
        raises for it, so an error never hides messages already queued.
        """
        if self._state != "connected":
            raise self._unavailable()
        room = self.window - self._in_flight
        if room <= 0:
            return 0
        if position is None:
            position = self._last_position + 1
        elif position <= self._last_position:
            raise self._out_of_order(position)
        n = self._next_n
        done = (
            0
            if _hpub is None
            else _hpub(self._out, messages, self._inbox, n, room, self._max_payload)
        )
        if not done:  # declined by C, or no C: Python, one by one
            try:
                for m in islice(messages, room):
                    self.try_publish(m[0], m[1], m[2], position + done)
                    done += 1
            except ValueError:
                if not done:
                    raise
            return done
        self._next_n = n + done
        self._last_position = position + done - 1
        self._inflight.append((n, position, done, time.monotonic()))
        self._in_flight += done
        self.stats.published += done
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        return done

    async def publish(
        self, subject: str, payload: bytes, msg_id: str, position: int | None = None
    ) -> None:
        """Queue one message, waiting for window room; returns before its ack (watch
        `watermark` / `on_ack`). Raises Unavailable during an outage."""
        while not self.try_publish(subject, payload, msg_id, position):
            await self._wait_change()

    async def flush(self) -> None:
        """Wait until everything published so far is acked (raises Unavailable on outage)."""
        while self._inflight:
            if self._state != "connected":
                raise self._unavailable()
            await self._wait_change()
        if self._state != "connected":
            raise self._unavailable()

    async def wait_watermark(self, position: int) -> None:
        """Wait until `watermark >= position` (raises Unavailable on outage)."""
        while self.watermark < position:
            if self._state != "connected":
                raise self._unavailable()
            await self._wait_change()

    # -- internals: waiting ---------------------------------------------------------------

    async def _wait_change(self) -> None:
        """Sleep until acks arrive or the state changes."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._changed)

    def _wake(self) -> None:
        fut = self._changed
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _out_of_order(self, position: int) -> ValueError:
        return ValueError(
            f"position {position} does not follow {self._last_position}"
            f" (after an outage, replay from watermark + 1 = {self.watermark + 1})"
        )

    def _unavailable(self) -> Unavailable:
        if self._state == "closed":
            return Unavailable("publisher closed")
        if isinstance(self.error, Unavailable):
            return type(self.error)(str(self.error))
        return Unavailable(f"NATS publishing unavailable ({self._state}): {self.error}")

    def _set_state(self, state: State, error: BaseException | None) -> None:
        """Record and report a change of state (reported once per change)."""
        if self._state == "closed" or (state == self._state and error is self.error):
            return
        self._state, self.error = state, error
        if state == "connected":
            self._connected.set()
        else:
            self._connected.clear()
        self._wake()
        if self.on_state is not None:
            self.on_state(state, error)

    # -- internals: connection ------------------------------------------------------------

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        server = self._servers[self._server_index % len(self._servers)]
        self._server_index += 1
        where = f"nats://{server.host}:{server.port}"
        self._epoch += 1
        epoch = self._epoch
        self._rbuf, self._need, self._pings_out = b"", -1, 0
        self._info = loop.create_future()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Link(self, epoch), server.host, server.port),
                self.connect_timeout,
            )
            self._conn = conn
            info = await asyncio.wait_for(self._info, self.connect_timeout)
            if info.get("tls_required"):
                raise BusUnreachable(f"{where} requires TLS, which this publisher does not speak")
            self._max_payload = int(info.get("max_payload", self._max_payload))
            self._inbox_str = f"_INBOX.{secrets.token_hex(8)}."
            self._inbox = self._inbox_str.encode()
            pong = loop.create_future()
            self._pongs.append(pong)
            conn.transport.write(  # type: ignore[union-attr]
                connect_command(server, self.name) + b"PING\r\nSUB " + self._inbox + b"* 1\r\n"
            )
            await asyncio.wait_for(pong, self.connect_timeout)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self._drop_connection()
            if isinstance(exc, BusUnreachable):
                raise
            raise BusUnreachable(
                f"NATS unreachable at {where}: {exc or type(exc).__name__}"
            ) from None
        except BaseException:  # cancelled by close(): leave no socket behind
            self._drop_connection()
            raise
        if self._state == "closed":
            self._drop_connection()
            return
        self._last_rx = time.monotonic()
        self._last_position = self.watermark
        self._set_state("connected", None)

    async def _reconnect_loop(self) -> None:
        delay, cap = self.reconnect_wait
        while self._state != "closed":
            try:
                await self._connect_once()
                if self.stats.outages:  # not the first connection of start(wait=False)
                    self.stats.reconnects += 1
                return
            except BusUnreachable as exc:
                self.last_attempt_error = exc
                if self._state == "connecting":  # never connected yet: say why
                    self.error = exc
                await asyncio.sleep(delay)
                delay = min(cap, delay * 2)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.transport is not None:
            conn.transport.abort()
        self._out.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        for pong in self._pongs:
            if not pong.done():
                pong.set_exception(ConnectionError("connection dropped"))
        self._pongs.clear()

    def _fail(self, exc: BaseException) -> None:
        """An outage: forget what is in flight, tell the caller, reconnect in the background."""
        self._report()  # acks read before the failure still count
        if self._state in ("closed", "unavailable"):
            return
        self.stats.outages += 1
        self.stats.dropped += self._in_flight
        self._inflight.clear()
        self._in_flight = 0
        self._early.clear()
        self._last_position = self.watermark
        self._drop_connection()
        self._epoch += 1  # late callbacks from the old transport are ignored
        self._set_state("unavailable", exc)
        if self._reconnector is None or self._reconnector.done():
            self._reconnector = asyncio.ensure_future(self._reconnect_loop())

    def _lost(self, epoch: int, exc: Exception | None) -> None:
        if epoch != self._epoch:
            return
        if self._info is not None and not self._info.done():
            self._info.set_exception(ConnectionError("closed before INFO"))
        if self._state == "connected":
            reason = exc or "server closed the connection"
            self._fail(Unavailable(f"NATS connection lost: {reason}"))
        else:
            self._drop_connection()

    def _flush(self) -> None:
        self._flush_handle = None
        if self._out and self._conn is not None and self._conn.transport is not None:
            data, self._out = self._out, bytearray()
            self._conn.transport.write(data)

    @property
    def _tick_every(self) -> float:
        return max(0.01, min(self.ack_timeout, self.ping_interval) / 4)

    def _tick(self) -> None:
        """Periodic: ack timeout of the oldest message, keepalive pings."""
        if self._state == "closed":
            return
        now = time.monotonic()
        late = now - self._tick_due > self._tick_every
        self._tick_due = now + self._tick_every
        self._ticker = asyncio.get_running_loop().call_later(self._tick_every, self._tick)
        if self._state != "connected":
            return
        if late and not self._was_late:
            # The loop was busy (e.g. a burst of venue frames): acks and PONGs may sit
            # unread in the socket. Judge at the next tick, after the loop has polled it.
            self._was_late = True
            return
        self._was_late = False
        if self._inflight and now - self._inflight[0][3] > self.ack_timeout:
            position = self._inflight[0][1]
            self._fail(
                AckTimeout(
                    f"no JetStream ack within {self.ack_timeout}s for position {position}"
                    f" ({self._in_flight} in flight)"
                )
            )
            return
        if now - self._last_rx > self.ping_interval:
            if self._pings_out >= 2:
                self._fail(Unavailable(f"NATS did not answer 2 PINGs in {self.ping_interval}s"))
                return
            self._pings_out += 1
            self._last_rx = now  # next ping one interval later
            self._out += b"PING\r\n"
            if self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    # -- internals: protocol parsing ------------------------------------------------------

    def _received(self, epoch: int, data: bytes) -> None:
        if epoch != self._epoch:
            return
        self._last_rx = time.monotonic()
        buf = self._rbuf + data if self._rbuf else data
        pos, end = 0, len(buf)
        while True:
            need = self._need
            if need < 0:  # the common case: a run of whole plain acks
                after, first, count, duplicate = _acks(buf, pos)
                if count:
                    self._ack(first, count, duplicate)
                    pos = after
                    continue
            else:
                stop = pos + need
                if stop + 2 > end:
                    break
                self._need = -1
                if not self._on_msg(buf[pos:stop]):
                    return
                pos = stop + 2
                continue
            i = buf.find(_CRLF, pos)
            if i < 0:
                break
            line = buf[pos:i]
            pos = i + 2
            head = line[:1]
            if head == b"M":  # MSG <subject> <sid> [reply] <size>
                parts = line.split(b" ")
                self._msg_subject, self._msg_hlen, self._need = parts[1], 0, int(parts[-1])
            elif head == b"H":  # HMSG <subject> <sid> [reply] <hdr len> <total len>
                parts = line.split(b" ")
                self._msg_subject = parts[1]
                self._msg_hlen, self._need = int(parts[-2]), int(parts[-1])
            elif line == b"PING":
                self._out += b"PONG\r\n"
                if self._flush_handle is None:
                    self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
            elif line == b"PONG":
                self._pings_out = 0
                if self._pongs:
                    fut = self._pongs.popleft()
                    if not fut.done():
                        fut.set_result(None)
            elif head == b"I":
                if self._info is not None and not self._info.done():
                    self._info.set_result(json.loads(line[5:]))
            elif head == b"-":
                self._protocol_error(line.decode(errors="replace"))
                return
        self._rbuf = buf[pos:]
        if self.watermark != self._reported[0]:
            self._report()
            self._wake()

    def _report(self) -> None:
        """One `on_acks` call for all the acks read since the last one."""
        reported, dups = self._reported
        if self.watermark != reported:
            self._reported = (self.watermark, self.stats.duplicates)
            if self.on_acks is not None:
                self.on_acks(self.watermark, self.stats.duplicates - dups)

    def _protocol_error(self, line: str) -> None:
        exc = Unavailable(f"NATS error: {line}")
        if self._state == "connected":
            self._fail(exc)
        else:
            if self._info is not None and not self._info.done():
                self._info.set_exception(exc)
            for pong in self._pongs:
                if not pong.done():
                    pong.set_exception(exc)

    def _on_msg(self, body: bytes) -> bool:
        """One ack (or error reply); False if it ended the connection."""
        subject = self._msg_subject
        if not subject.startswith(self._inbox):
            return True
        n = int(subject[len(self._inbox) :])
        hlen = self._msg_hlen
        if hlen and body[8:9] == b" ":  # "NATS/1.0 503 ...": a status reply, not an ack
            status = body[9:hlen].split(b"\r\n", 1)[0].decode(errors="replace").strip()
            if status.startswith("503"):
                status += " (no responders: no stream bound to the subject, or JetStream down)"
            self._reject(n, f"status {status}")
            return False
        payload = body[hlen:]
        if b'"error"' in payload:
            self._reject(n, payload.decode(errors="replace"))
            return False
        # the server writes `"duplicate": true` (with a space); accept either spelling
        self._ack(n, 1, b'"duplicate"' in payload and b"true" in payload)
        return True

    def _reject(self, n: int, why: str) -> None:
        position = next((p + n - m for m, p, k, _ in self._inflight if m <= n < m + k), None)
        self._fail(PublishRejected(f"JetStream refused position {position}: {why}"))

    def _ack(self, n: int, count: int, duplicate: bool) -> None:
        """Acks for n, n + 1, … n + count - 1; those that overtook older messages wait in
        `_early` until the older ones are acked."""
        q = self._inflight
        if not q:
            return
        if n != q[0][0]:
            if n > q[0][0]:
                last = q[-1][0] + q[-1][2]
                for early in range(n, min(n + count, last)):
                    self._early[early] = duplicate
            return
        on_ack, stats, early = self.on_ack, self.stats, self._early
        while True:
            count = min(count, self._in_flight)
            self._in_flight -= count
            stats.acked += count
            if duplicate:
                stats.duplicates += count
            while count:  # whole entries, then the front of one
                first, position, k, sent = q[0]
                if k <= count:
                    q.popleft()
                else:
                    q[0] = (first + count, position + count, k - count, sent)
                    k = count
                count -= k
                if on_ack is None:
                    self.watermark = position + k - 1
                else:
                    for p in range(position, position + k):
                        self.watermark = p
                        on_ack(p, duplicate)
            if not early or not q or q[0][0] not in early:
                return
            duplicate = early.pop(q[0][0])
            count = 1
