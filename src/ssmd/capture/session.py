"""One WebSocket connection to a venue, kept alive for as long as the runtime wants it.

The session owns the socket and nothing else: it connects, sends the frames the venue
module builds (subscribe frames paced by a token bucket), stamps every received frame
with the wall clock the moment it is read and hands it over, answers pings, pings when
idle, replaces dead connections with capped, fully jittered backoff and honours rate
limits (429/418 + Retry-After on the handshake). It never parses payloads: journaling
and normalizing are the runtime's, through three callbacks:

- `on_frames([(payload, ts_recv_ns, mono_ns), ...])` — every received TEXT/BINARY
  message (fragments joined), in order, synchronously from the read: the messages one
  socket read completed, together (one call per read, not per message — the connector's
  hot path); `ts_recv_ns` is `time.time_ns()` taken before anything else when the
  (first) frame is read, `mono_ns` is `time.monotonic_ns()` taken right after.
  Pings/pongs are not delivered; a control frame is acted on only after the messages
  read before it were delivered.
- `on_out(payload, ts_ns, mono_ns)` — every TEXT frame we send (subscribe, unsubscribe,
  app heartbeat), called just before it is written.
- `on_event(kind, detail, ts_ns, mono_ns)` — kind "open" (detail: URL), "close"
  (detail: why), "error" (detail: what failed: handshake status, connect error, …).

An exception raised by a callback (a journal write failing on a full disk) is fatal:
the connection is closed and `run()` re-raises it. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from ssmd.capture.policy import BackoffPolicy, TokenBucket, retry_after
from ssmd.capture.ratelimit import RateGate
from ssmd.capture.staleness import StalenessPolicy, liveness

_wall_ns, _mono_ns = time.time_ns, time.monotonic_ns
_TEXT, _BINARY = WSMsgType.TEXT, WSMsgType.BINARY

EventKind = Literal["open", "close", "error"]
OnFrames = Callable[[list[tuple[bytes, int, int]]], None]
OnOut = Callable[[bytes, int, int], None]
OnEvent = Callable[[str, str, int, int], None]
State = Literal["idle", "connecting", "open", "backoff", "stopped"]


def _no_heartbeat() -> str | None:
    return None


@dataclass(frozen=True)
class Wire:
    """What the session sends, built by the venue module (the session stays venue-blind).

    `subscribe` / `unsubscribe` take venue symbols and return the frames to send;
    `heartbeat` returns the venue's app-level heartbeat frame or None; `is_heartbeat`
    recognises a venue heartbeat in a received payload (for staleness), cheaply.
    """

    subscribe: Callable[[Sequence[str]], list[str]]
    unsubscribe: Callable[[Sequence[str]], list[str]]
    heartbeat: Callable[[], str | None] = _no_heartbeat
    is_heartbeat: Callable[[bytes], bool] | None = None

    @classmethod
    def from_module(
        cls,
        module: ModuleType,
        channels: Sequence[str],
        depth: int,
        is_heartbeat: Callable[[bytes], bool] | None = None,
    ) -> Wire:
        """From a venue module keeping the uniform contract
        (`subscribe(channels, venue_symbols, depth)`, `unsubscribe(...)`, `heartbeat()`)."""
        chans = list(channels)
        heartbeat = getattr(module, "heartbeat", None) or _no_heartbeat
        return cls(
            subscribe=lambda symbols: list(module.subscribe(chans, list(symbols), depth)),
            unsubscribe=lambda symbols: list(module.unsubscribe(chans, list(symbols), depth)),
            heartbeat=heartbeat,
            is_heartbeat=is_heartbeat,
        )


@dataclass(frozen=True)
class SessionConfig:
    """Per-connection settings; the venue's limits go in `subscribe_rate`/`_burst`."""

    url: str
    name: str = "c0"
    """Connection id (journal `c`, logs, status)."""
    subscribe_rate: float = 5.0
    """Control messages (subscribe/unsubscribe) per second; Binance allows 5."""
    subscribe_burst: int = 1
    heartbeat_every: float | None = None
    """Send the venue's app heartbeat this often (s); None = only when idle, with the ping."""
    data_timeout: float | None = None
    """Replace the connection when no *data* frame came for this long (liquid feeds only)."""
    staleness: StalenessPolicy = field(default_factory=StalenessPolicy)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    handshake_timeout: float = 10.0
    extra_headers: tuple[tuple[str, str], ...] = ()
    max_frame_size: int = 64 * 2**20


@dataclass
class SessionStats:
    """Counters for status and metrics (monotonic times in ns, 0 = never)."""

    connects: int = 0
    failures: int = 0
    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    pings_sent: int = 0
    pongs: int = 0
    heartbeats_in: int = 0
    last_rx_mono: int = 0
    last_data_mono: int = 0
    last_heartbeat_mono: int = 0
    connected_since_ns: int = 0
    last_error: str = ""
    last_close: str = ""

    def snapshot(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Listener(WSListener):
    """picows callbacks -> session; the only code on the hot read path."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._parts: list[bytes] = []
        self._read: list[tuple[bytes, int, int]] = []
        """Messages of the current socket read, delivered with its last frame."""
        self._first_ts = 0
        self._first_mono = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        ts = _wall_ns()
        mono = _mono_ns()
        kind = frame.msg_type
        if kind is _TEXT or kind is _BINARY:
            if frame.fin:
                self._read.append((frame.get_payload_as_bytes(), ts, mono))
            else:
                self._parts = [frame.get_payload_as_bytes()]
                self._first_ts, self._first_mono = ts, mono
                self.session.stats.last_rx_mono = mono  # a long message is not silence
        elif kind is WSMsgType.CONTINUATION:
            self._parts.append(frame.get_payload_as_bytes())
            self.session.stats.last_rx_mono = mono
            if frame.fin:
                self._read.append((b"".join(self._parts), self._first_ts, self._first_mono))
                self._parts = []
        else:
            self._control(transport, frame, mono)
        if frame.last_in_buffer and self._read:
            self._deliver()

    def _deliver(self) -> None:
        """The messages read so far go to the session, together."""
        read, self._read = self._read, []
        self.session._deliver(read)

    def _control(self, transport: WSTransport, frame: WSFrame, mono: int) -> None:
        if self._read:  # what was read before it is handled before it
            self._deliver()
        s = self.session
        s.stats.last_rx_mono = mono
        kind = frame.msg_type
        if kind is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind is WSMsgType.PONG:
            s.stats.pongs += 1
        elif kind is WSMsgType.CLOSE:
            code = frame.get_close_code()
            s._close_reason = s._close_reason or (
                f"closed by venue: {getattr(code, 'value', code)} {frame.get_close_reason()}"
            )
            transport.send_close(code if isinstance(code, WSCloseCode) else WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._read:  # a read cut short (a protocol error after good frames)
            self._deliver()
        self.session._disconnected.set()


class Session:
    """One venue connection over its whole life (many sockets, one symbol set).

    `await run()` until `stop()`. `subscribe`, `unsubscribe`, `resubscribe` and
    `reconnect` are synchronous and safe to call from the callbacks (e.g. when a
    normalizer returns a resync decision for the frame being handled).
    """

    def __init__(
        self,
        config: SessionConfig,
        wire: Wire,
        symbols: Sequence[str] = (),
        *,
        on_frames: OnFrames,
        on_out: OnOut | None = None,
        on_event: OnEvent | None = None,
        gate: RateGate | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.wire = wire
        self.gate = gate if gate is not None else RateGate()
        self.stats = SessionStats()
        self.state: State = "idle"
        self._symbols: dict[str, None] = dict.fromkeys(symbols)
        self._on_frames = on_frames
        self._on_out = on_out
        self._on_event = on_event
        self._rng = rng
        self._transport: WSTransport | None = None
        self._queue: deque[str] = deque()
        self._queued = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._opened = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = False
        self._fatal: BaseException | None = None
        self._close_reason = ""
        self.attempt = 0
        """Consecutive failed connections (the backoff exponent)."""
        self.last_delay = 0.0

    # --- what the runtime calls -----------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def holds(self, symbol: str) -> bool:
        """`symbol in symbols` without copying them (1,000 per connection, every tick)."""
        return symbol in self._symbols

    @property
    def connected(self) -> bool:
        return self.state == "open"

    def subscribe(self, symbols: Sequence[str]) -> int:
        """Add symbols; sends their subscribe frames now if connected (else on connect).
        Returns the number of frames queued."""
        new = [s for s in dict.fromkeys(symbols) if s not in self._symbols]
        self._symbols.update(dict.fromkeys(new))
        return self._enqueue(self.wire.subscribe(new)) if new and self.connected else 0

    def unsubscribe(self, symbols: Sequence[str]) -> int:
        """Drop symbols; sends their unsubscribe frames if connected."""
        held = [s for s in dict.fromkeys(symbols) if s in self._symbols]
        for s in held:
            del self._symbols[s]
        return self._enqueue(self.wire.unsubscribe(held)) if held and self.connected else 0

    def resubscribe(self, symbols: Sequence[str]) -> int:
        """Unsubscribe then subscribe again (a resync decision: fresh snapshot)."""
        held = [s for s in dict.fromkeys(symbols) if s in self._symbols]
        if not held or not self.connected:
            return 0
        return self._enqueue(self.wire.unsubscribe(held)) + self._enqueue(self.wire.subscribe(held))

    def reconnect(self, reason: str) -> None:
        """Drop the socket and connect again (a resync decision, or an operator's)."""
        self._close(f"reconnect: {reason}", graceful=True)

    def stop(self) -> None:
        """Close and make `run()` return."""
        self._stopping = True
        self._wake.set()
        self._close("stopped", graceful=True)

    async def wait_open(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._opened.wait(), timeout)

    async def drained(self, timeout: float | None = None) -> None:
        """Until every queued control frame is sent."""
        await asyncio.wait_for(self._drained.wait(), timeout)

    def send(self, payload: str) -> None:
        """Send one frame now, unpaced (app heartbeats, venue-specific requests)."""
        if self._transport is None:
            raise ConnectionError(f"{self.config.name}: not connected")
        self._send_now(payload)

    # --- the connection loop --------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, back off, repeat, until `stop()`; re-raises a callback's error."""
        cfg = self.config
        try:
            while not self._stopping:
                await self.gate.wait()
                if self._stopping:
                    break
                told = await self._connect_once()
                if self._fatal is not None:
                    raise self._fatal
                if self._stopping:
                    break
                delay = cfg.backoff.delay(self.attempt, self._rng())
                if told is not None:
                    delay = max(delay, told)
                self.attempt += 1
                self.last_delay = delay
                self.state = "backoff"
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            self.state = "stopped"
            self._opened.clear()

    async def _connect_once(self) -> float | None:
        """One socket's life; returns the wait a rate-limit answer demanded, if any."""
        cfg = self.config
        self.state = "connecting"
        self._close_reason = ""
        self._disconnected.clear()
        try:
            transport, _ = await ws_connect(
                lambda: _Listener(self),
                cfg.url,
                websocket_handshake_timeout=cfg.handshake_timeout,
                enable_auto_pong=False,
                max_frame_size=cfg.max_frame_size,
                extra_headers=list(cfg.extra_headers) or None,
                logger_name=f"ssmd.{cfg.name}",
            )
        except WSHandshakeError as exc:
            return self._handshake_failed(exc)
        except (OSError, TimeoutError, WSError) as exc:
            self.stats.failures += 1
            self.stats.last_error = f"connect: {type(exc).__name__}: {exc}"
            self._event("error", self.stats.last_error)
            return None
        await self._serve(transport)
        return None

    def _handshake_failed(self, exc: WSHandshakeError) -> float | None:
        response = exc.response
        status = int(response.status) if response is not None else 0
        headers = dict(response.headers.items()) if response is not None else {}
        wait = retry_after(status, headers, time.time())
        self.stats.failures += 1
        self.stats.last_error = f"handshake: HTTP {status or '?'}: {exc}"
        if wait is not None:
            self.gate.block(wait, f"HTTP {status} from {self.config.url}")
            self.stats.last_error += f" (waiting {wait:g}s as told)"
        self._event("error", self.stats.last_error)
        return wait

    async def _serve(self, transport: WSTransport) -> None:
        cfg = self.config
        if self._stopping:
            transport.disconnect(graceful=False)
            return
        now = time.monotonic_ns()
        self._transport = transport
        self.stats.connects += 1
        self.stats.connected_since_ns = time.time_ns()
        self.stats.last_rx_mono = now
        self.stats.last_data_mono = now
        self._last_ping = now
        self._last_heartbeat_sent = now
        self._queue.clear()
        self.state = "open"
        self._event("open", cfg.url)
        self._opened.set()
        if self._symbols:
            self._enqueue(self.wire.subscribe(list(self._symbols)))
        tasks = [asyncio.create_task(self._pace()), asyncio.create_task(self._watch())]
        try:
            await self._disconnected.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._transport = None
            self._opened.clear()
            self._queue.clear()
            self._drained.set()
            lived = (time.monotonic_ns() - now) / 1e9
            if lived >= cfg.backoff.stable_after:
                self.attempt = 0
            reason = self._close_reason or "connection lost"
            self.stats.last_close = reason
            self._event("close", reason)

    async def _pace(self) -> None:
        """Send queued control frames no faster than the venue allows."""
        bucket = TokenBucket(
            self.config.subscribe_rate, self.config.subscribe_burst, time.monotonic()
        )
        while True:
            if not self._queue:
                self._drained.set()
                self._queued.clear()
                await self._queued.wait()
                continue
            wait = bucket.take(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
            if self._queue and self._transport is not None:
                self._send_now(self._queue.popleft())

    async def _watch(self) -> None:
        """Ping when idle, app heartbeats, and the liveness verdict."""
        cfg = self.config
        policy = cfg.staleness
        periods = [policy.ping_after, policy.silence_timeout]
        periods += [p for p in (cfg.heartbeat_every, cfg.data_timeout) if p]
        tick = max(0.01, min(periods) / 5)
        while self._transport is not None:
            await asyncio.sleep(tick)
            transport = self._transport
            if transport is None:
                return
            mono = time.monotonic_ns()
            verdict = liveness(
                mono / 1e9, self.stats.last_rx_mono / 1e9, self._last_ping / 1e9, policy
            )
            if verdict == "dead":
                idle = (mono - self.stats.last_rx_mono) / 1e9
                self._close(f"silent for {idle:.1f}s (no data, pong or heartbeat)", False)
                return
            if cfg.data_timeout and (mono - self.stats.last_data_mono) / 1e9 >= cfg.data_timeout:
                self._close(f"no data for {cfg.data_timeout:g}s", False)
                return
            if verdict == "ping":
                transport.send_ping()
                self.stats.pings_sent += 1
                self._last_ping = mono
                if cfg.heartbeat_every is None:
                    self._heartbeat(mono)
            if cfg.heartbeat_every and (
                (mono - self._last_heartbeat_sent) / 1e9 >= cfg.heartbeat_every
            ):
                self._heartbeat(mono)

    # --- internals ------------------------------------------------------------------

    def _heartbeat(self, mono: int) -> None:
        frame = self.wire.heartbeat()
        self._last_heartbeat_sent = mono
        if frame is not None:
            self._send_now(frame)

    def _deliver(self, frames: list[tuple[bytes, int, int]]) -> None:
        stats = self.stats
        stats.frames_in += len(frames)
        stats.bytes_in += sum(len(payload) for payload, _, _ in frames)
        last = stats.last_data_mono = frames[-1][2]  # a long message's: its first fragment's
        if last > stats.last_rx_mono:
            stats.last_rx_mono = last
        is_hb = self.wire.is_heartbeat
        if is_hb is not None:
            for payload, _, mono in frames:
                if is_hb(payload):
                    stats.heartbeats_in += 1
                    stats.last_heartbeat_mono = mono
        if self._fatal is not None:
            return
        try:
            self._on_frames(frames)
        except BaseException as exc:  # the runtime's failure: stop loudly, never drop
            self._fail(exc)

    def _enqueue(self, frames: list[str]) -> int:
        if frames:
            self._queue.extend(frames)
            self._drained.clear()
            self._queued.set()
        return len(frames)

    def _send_now(self, payload: str) -> None:
        data = payload.encode()
        transport = self._transport
        if transport is None:
            return
        if self._on_out is not None:
            try:
                self._on_out(data, time.time_ns(), time.monotonic_ns())
            except BaseException as exc:
                self._fail(exc)
                return
        transport.send(WSMsgType.TEXT, data)
        self.stats.frames_out += 1
        self.stats.bytes_out += len(data)

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
            self.stats.last_error = f"callback: {type(exc).__name__}: {exc}"
        self._stopping = True
        self._close(f"fatal: {type(exc).__name__}: {exc}", graceful=False)

    def _close(self, reason: str, graceful: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        self._close_reason = self._close_reason or reason
        if graceful:
            with contextlib.suppress(Exception):
                transport.send_close(WSCloseCode.GOING_AWAY)
        transport.disconnect(graceful=graceful)

    def _event(self, kind: EventKind, detail: str) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, detail, time.time_ns(), time.monotonic_ns())
        except BaseException as exc:
            if self._fatal is None:
                self._fatal = exc
            self._stopping = True
