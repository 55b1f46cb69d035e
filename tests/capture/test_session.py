"""Session against a scripted local picows server (real sockets, real timing).

The fake venue records every frame it receives with its arrival time, answers pings
only when told to, can refuse handshakes with any HTTP status and headers, and can
push frames (whole or fragmented) to the client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from picows import (
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from ssmd.capture.policy import BackoffPolicy
from ssmd.capture.ratelimit import RateGate
from ssmd.capture.session import Session, SessionConfig, Wire
from ssmd.capture.staleness import StalenessPolicy


@dataclass
class FakeVenue:
    """A scripted WebSocket venue on 127.0.0.1 (see module docstring)."""

    pong: bool = True
    reject: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    handshakes: list[float] = field(default_factory=list)
    received: list[tuple[float, str]] = field(default_factory=list)
    pings: int = 0
    conns: list[WSTransport] = field(default_factory=list)
    port: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.received]

    def current(self) -> WSTransport:
        return self.conns[-1]

    async def start(self) -> FakeVenue:
        venue = self

        class Conn(WSListener):
            def on_ws_connected(self, transport: WSTransport) -> None:
                venue.conns.append(transport)

            def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
                if frame.msg_type is WSMsgType.TEXT:
                    venue.received.append((time.monotonic(), frame.get_payload_as_utf8_text()))
                elif frame.msg_type is WSMsgType.PING:
                    venue.pings += 1
                    if venue.pong:
                        transport.send_pong(frame.get_payload_as_bytes())
                elif frame.msg_type is WSMsgType.CLOSE:
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

        def factory(request: WSUpgradeRequest) -> Any:
            venue.handshakes.append(time.monotonic())
            if venue.reject:
                status, headers = venue.reject.pop(0)
                response = WSUpgradeResponse.create_error_response(status, b"no", headers)
                return WSUpgradeResponseWithListener(response, None)
            return Conn()

        self.server = await ws_create_server(
            factory, "127.0.0.1", 0, enable_auto_pong=False, logger_name="fakevenue"
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for conn in self.conns:
            conn.disconnect(graceful=False)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def one_per_symbol(op: str) -> Callable[[Sequence[str]], list[str]]:
    return lambda symbols: [json.dumps({"op": op, "symbol": s}) for s in symbols]


WIRE = Wire(subscribe=one_per_symbol("subscribe"), unsubscribe=one_per_symbol("unsubscribe"))
FAST = StalenessPolicy(ping_after=0.2, silence_timeout=0.8)


@dataclass
class Recorder:
    frames: list[tuple[bytes, int, int]] = field(default_factory=list)
    outs: list[tuple[bytes, int, int]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)

    def on_frames(self, frames: list[tuple[bytes, int, int]]) -> None:
        self.frames += frames

    def on_out(self, payload: bytes, ts: int, mono: int) -> None:
        self.outs.append((payload, ts, mono))

    def on_event(self, kind: str, detail: str, ts: int, mono: int) -> None:
        self.events.append((kind, detail))

    def kinds(self, kind: str) -> list[str]:
        return [d for k, d in self.events if k == kind]


def make_session(
    venue: FakeVenue, rec: Recorder, symbols: Sequence[str] = (), wire: Wire = WIRE, **cfg: Any
) -> Session:
    cfg.setdefault("staleness", FAST)
    cfg.setdefault("backoff", BackoffPolicy(base=0.05, cap=0.2, stable_after=60))
    return Session(
        SessionConfig(url=venue.url, **cfg),
        wire,
        symbols,
        on_frames=rec.on_frames,
        on_out=rec.on_out,
        on_event=rec.on_event,
    )


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def run(
    body: Callable[[FakeVenue, Recorder], Awaitable[None]], venue: FakeVenue | None = None
) -> None:
    async def main() -> None:
        v = await (venue or FakeVenue()).start()
        try:
            await asyncio.wait_for(body(v, Recorder()), 30)
        finally:
            await v.stop()

    asyncio.run(main())


async def running(session: Session) -> asyncio.Task[None]:
    task = asyncio.create_task(session.run())
    await session.wait_open(5)
    return task


async def finish(session: Session, task: asyncio.Task[None]) -> None:
    session.stop()
    await asyncio.wait_for(task, 5)
    assert session.state == "stopped"


def test_subscribe_frames_are_sent_paced_and_journaled_out() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        symbols = ["A", "B", "C", "D", "E"]
        session = make_session(venue, rec, symbols, subscribe_rate=10.0, subscribe_burst=1)
        task = await running(session)
        await session.drained(5)
        await until(lambda: len(venue.received) == 5)
        assert venue.texts == [json.dumps({"op": "subscribe", "symbol": s}) for s in symbols]
        times = [t for t, _ in venue.received]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.08, gaps  # 10/s: 100 ms apart (scheduler slack 20 ms)
        assert times[-1] - times[0] >= 0.38
        assert [p.decode() for p, _, _ in rec.outs] == venue.texts
        assert rec.kinds("open") == [venue.url]
        assert session.stats.frames_out == 5
        await finish(session, task)
        assert rec.kinds("close") == ["stopped"]

    run(body)


def test_burst_then_rate() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        session = make_session(venue, rec, list("ABCDEF"), subscribe_rate=5.0, subscribe_burst=3)
        task = await running(session)
        await session.drained(5)
        times = [t for t, _ in venue.received]
        assert times[2] - times[0] < 0.05  # the burst goes at once
        assert times[3] - times[2] >= 0.15  # then 5/s
        assert times[5] - times[3] >= 0.35
        await finish(session, task)

    run(body)


def test_frames_delivered_in_order_with_ts_recv_taken_at_read() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        entered: list[int] = []

        def on_frames(frames: list[tuple[bytes, int, int]]) -> None:
            entered.extend(time.time_ns() for _ in frames)
            rec.on_frames(frames)

        session = Session(SessionConfig(url=venue.url, staleness=FAST), WIRE, on_frames=on_frames)
        task = await running(session)
        await until(lambda: venue.conns != [])
        sent = []
        for i in range(300):
            sent.append(time.time_ns())
            venue.current().send(WSMsgType.TEXT, json.dumps({"i": i}).encode())
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        # A message in two fragments 300 ms apart: ts_recv is the first fragment's read.
        venue.current().send(WSMsgType.TEXT, b'{"frag":', fin=False)
        first_sent = time.time_ns()
        await asyncio.sleep(0.3)
        venue.current().send(WSMsgType.CONTINUATION, b'"ment"}', fin=True)
        second_sent = time.time_ns()
        await until(lambda: len(rec.frames) == 301)
        payloads = [json.loads(p) for p, _, _ in rec.frames]
        assert payloads[:300] == [{"i": i} for i in range(300)]
        assert payloads[300] == {"frag": "ment"}
        ts = [t for _, t, _ in rec.frames]
        mono = [m for _, _, m in rec.frames]
        assert ts == sorted(ts) and mono == sorted(mono)
        for i in range(300):
            assert sent[i] <= ts[i] <= entered[i]
            assert ts[i] - sent[i] < 1_000_000_000
        assert first_sent - 50_000_000 <= ts[300] < second_sent - 200_000_000
        assert session.stats.frames_in == 301
        await finish(session, task)

    run(body)


def test_one_read_is_delivered_at_once_and_before_what_follows_it() -> None:
    """Messages one socket read completed come in one `on_frames` call (the connector's
    hot path), in order; a control frame in the same read (here the venue's close) is
    acted on only after the messages before it were delivered."""

    async def body(venue: FakeVenue, rec: Recorder) -> None:
        from picows import WSCloseCode

        log: list[str] = []
        calls: list[int] = []

        def on_frames(frames: list[tuple[bytes, int, int]]) -> None:
            calls.append(len(frames))
            log.extend(json.loads(p)["i"] for p, _, _ in frames)

        def on_event(kind: str, detail: str, ts: int, mono: int) -> None:
            log.append(kind)

        session = Session(
            SessionConfig(url=venue.url, staleness=FAST),
            WIRE,
            on_frames=on_frames,
            on_event=on_event,
        )
        task = await running(session)
        conn = venue.current()
        for i in range(50):  # no await in between: all in the client's socket at once
            conn.send(WSMsgType.TEXT, json.dumps({"i": i}).encode())
        conn.send_close(WSCloseCode.TRY_AGAIN_LATER, b"maintenance")
        await until(lambda: "close" in log)
        assert log[: log.index("close")] == ["open", *range(50)]
        assert sum(calls) == 50 and max(calls) > 1, calls
        assert session.stats.frames_in == 50
        await finish(session, task)

    run(body)


def test_a_long_fragmented_message_is_not_silence() -> None:
    """Fragments arriving over longer than the silence timeout keep the connection alive
    (no pongs here: only the fragments can), and the message arrives whole, stamped at
    its first fragment's read."""

    async def body(venue: FakeVenue, rec: Recorder) -> None:
        venue.pong = False
        session = make_session(venue, rec, [])
        task = await running(session)
        conn = venue.current()
        conn.send(WSMsgType.TEXT, b'{"part":"', fin=False)
        first = time.monotonic_ns()
        for _ in range(8):  # 1.6 s of fragments, silence_timeout 0.8 s
            await asyncio.sleep(0.2)
            conn.send(WSMsgType.CONTINUATION, b"x", fin=False)
        conn.send(WSMsgType.CONTINUATION, b'"}', fin=True)
        await until(lambda: len(rec.frames) == 1)
        assert json.loads(rec.frames[0][0]) == {"part": "x" * 8}
        assert first <= rec.frames[0][2] < first + 100_000_000
        assert len(venue.handshakes) == 1 and rec.kinds("close") == []
        assert session.stats.last_rx_mono > rec.frames[0][2] + 1_500_000_000
        await finish(session, task)

    run(body)


def test_silent_server_is_replaced() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        venue.pong = False
        session = make_session(venue, rec, ["A"])
        task = await running(session)
        opened = time.monotonic()
        await until(lambda: len(venue.handshakes) >= 2)
        took = time.monotonic() - opened
        assert 0.75 <= took < 2.5, took
        (close, *_) = rec.kinds("close")
        assert close.startswith("silent for"), close
        assert venue.pings >= 2  # we pinged (ping_after 0.2) but pings are not liveness
        await until(lambda: venue.texts.count(json.dumps({"op": "subscribe", "symbol": "A"})) == 2)
        await finish(session, task)

    run(body)


def test_pongs_keep_a_quiet_connection_alive() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        session = make_session(venue, rec, ["A"])
        task = await running(session)
        await asyncio.sleep(2.0)  # 2.5 x the silence timeout, without a single data frame
        assert len(venue.handshakes) == 1 and rec.kinds("close") == []
        assert session.stats.pings_sent >= 4 and session.stats.pongs >= 4
        assert rec.frames == []
        await finish(session, task)

    run(body)


def test_data_keeps_a_connection_alive_without_pongs() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        venue.pong = False
        session = make_session(venue, rec, ["A"])
        task = await running(session)
        for _ in range(20):  # 2 s of data every 100 ms
            venue.current().send(WSMsgType.TEXT, b'{"d":1}')
            await asyncio.sleep(0.1)
        assert len(venue.handshakes) == 1 and rec.kinds("close") == []
        assert session.stats.pongs == 0 and len(rec.frames) == 20
        await finish(session, task)

    run(body)


def test_data_timeout_replaces_a_connection_kept_alive_only_by_pongs() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        session = make_session(venue, rec, ["A"], data_timeout=0.5)
        task = await running(session)
        await until(lambda: len(venue.handshakes) >= 2)
        assert rec.kinds("close")[0] == "no data for 0.5s"
        await finish(session, task)

    run(body)


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limited_handshake_waits_as_told(status: int) -> None:
    venue = FakeVenue(reject=[(status, {"Retry-After": "2"})])

    async def body(venue: FakeVenue, rec: Recorder) -> None:
        session = make_session(venue, rec, ["A"])
        task = await running(session)
        assert len(venue.handshakes) == 2
        waited = venue.handshakes[1] - venue.handshakes[0]
        assert 2.0 <= waited < 3.0, waited
        (error,) = rec.kinds("error")
        assert f"HTTP {status}" in error and "waiting 2s as told" in error
        assert session.gate.blocks == 1
        await finish(session, task)

    run(body, venue)


def test_gate_shared_with_rest_blocks_the_handshake() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        gate = RateGate()
        gate.block(1.0, "418 from REST")
        session = Session(
            SessionConfig(url=venue.url, staleness=FAST), WIRE, on_frames=rec.on_frames, gate=gate
        )
        started = time.monotonic()
        task = await running(session)
        assert venue.handshakes[0] - started >= 0.95
        await finish(session, task)

    run(body)


def test_backoff_sequence_against_a_closed_port() -> None:
    async def main() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        rec = Recorder()
        delays: list[float] = []
        session = Session(
            SessionConfig(url=f"ws://127.0.0.1:{port}/", backoff=BackoffPolicy(base=0.02, cap=0.1)),
            WIRE,
            on_frames=rec.on_frames,
            on_event=rec.on_event,
            rng=lambda: 0.999,
        )
        task = asyncio.create_task(session.run())
        while len(delays) < 6:
            await asyncio.sleep(0.005)
            if session.attempt > len(delays):
                delays.append(session.last_delay)
        session.stop()
        await asyncio.wait_for(task, 5)
        assert delays == pytest.approx([0.01998, 0.03996, 0.07992, 0.0999, 0.0999, 0.0999])
        assert session.stats.failures >= 6
        assert all(e.startswith("connect: ") for e in rec.kinds("error"))

    asyncio.run(main())


def test_subscribe_unsubscribe_resubscribe_while_connected() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        session = make_session(venue, rec, ["A", "B"], subscribe_rate=100.0)
        task = await running(session)
        await session.drained(5)
        venue.received.clear()
        assert session.resubscribe(["B", "Z"]) == 2  # Z is not held: nothing for it
        assert session.subscribe(["C", "A"]) == 1
        assert session.unsubscribe(["A", "Q"]) == 1
        await session.drained(5)
        await until(lambda: len(venue.received) == 4)
        assert [json.loads(t) for t in venue.texts] == [
            {"op": "unsubscribe", "symbol": "B"},
            {"op": "subscribe", "symbol": "B"},
            {"op": "subscribe", "symbol": "C"},
            {"op": "unsubscribe", "symbol": "A"},
        ]
        assert session.symbols == ["B", "C"]
        # A new connection subscribes the current set, nothing else.
        venue.received.clear()
        session.reconnect("test")
        await until(lambda: len(venue.handshakes) == 2 and len(venue.received) == 2)
        assert [json.loads(t)["symbol"] for t in venue.texts] == ["B", "C"]
        assert rec.kinds("close") == ["reconnect: test"]
        await finish(session, task)

    run(body)


def test_changes_while_disconnected_apply_on_connect() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        session = make_session(venue, rec, ["A"])
        assert session.subscribe(["B"]) == 0 and session.unsubscribe(["A"]) == 0
        assert session.resubscribe(["B"]) == 0
        task = await running(session)
        await until(lambda: len(venue.received) == 1)
        assert json.loads(venue.texts[0]) == {"op": "subscribe", "symbol": "B"}
        await finish(session, task)

    run(body)


def test_venue_close_frame_is_reported_and_reconnected() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        from picows import WSCloseCode

        session = make_session(venue, rec, ["A"])
        task = await running(session)
        venue.current().send_close(WSCloseCode.TRY_AGAIN_LATER, b"maintenance")
        await until(lambda: len(venue.handshakes) == 2 and session.connected)
        assert rec.kinds("close")[0] == "closed by venue: 1013 maintenance"
        assert [k for k, _ in rec.events] == ["open", "close", "open"]
        await finish(session, task)

    run(body)


def test_app_heartbeats_are_sent_and_recognised() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        wire = Wire(
            subscribe=WIRE.subscribe,
            unsubscribe=WIRE.unsubscribe,
            heartbeat=lambda: '{"method":"ping"}',
            is_heartbeat=lambda p: p.startswith(b'{"channel":"heartbeat"'),
        )
        session = make_session(venue, rec, [], wire=wire, heartbeat_every=0.1)
        task = await running(session)
        await asyncio.sleep(0.55)
        beats = venue.texts.count('{"method":"ping"}')
        assert 4 <= beats <= 6, beats
        venue.current().send(WSMsgType.TEXT, b'{"channel":"heartbeat"}')
        await until(lambda: session.stats.heartbeats_in == 1)
        assert session.stats.last_heartbeat_mono == rec.frames[-1][2]
        await finish(session, task)

    run(body)


def test_callback_failure_stops_the_session_loudly() -> None:
    async def body(venue: FakeVenue, rec: Recorder) -> None:
        def on_frames(frames: list[tuple[bytes, int, int]]) -> None:
            raise OSError(28, "No space left on device", "/data/raw/x.zst")

        session = Session(
            SessionConfig(url=venue.url, staleness=FAST),
            WIRE,
            on_frames=on_frames,
            on_event=rec.on_event,
        )
        task = asyncio.create_task(session.run())
        await session.wait_open(5)
        venue.current().send(WSMsgType.TEXT, b"{}")
        with pytest.raises(OSError, match="No space left"):
            await asyncio.wait_for(task, 5)
        assert rec.kinds("close")[0].startswith("fatal: OSError")
        assert len(venue.handshakes) == 1  # no reconnect after a fatal error
        assert session.state == "stopped"

    run(body)


def test_wire_from_module_uses_the_uniform_contract() -> None:
    class Module:
        calls: ClassVar[list[Any]] = []

        @staticmethod
        def subscribe(channels: list[str], symbols: list[str], depth: int) -> list[str]:
            Module.calls.append(("sub", channels, symbols, depth))
            return ["s"]

        @staticmethod
        def unsubscribe(channels: list[str], symbols: list[str], depth: int) -> list[str]:
            Module.calls.append(("unsub", channels, symbols, depth))
            return ["u"]

        @staticmethod
        def heartbeat() -> str:
            return "hb"

    wire = Wire.from_module(Module, ("book", "trade"), 25)  # type: ignore[arg-type]
    assert wire.subscribe(("X",)) == ["s"] and wire.unsubscribe(["Y"]) == ["u"]
    assert wire.heartbeat() == "hb"
    assert Module.calls == [
        ("sub", ["book", "trade"], ["X"], 25),
        ("unsub", ["book", "trade"], ["Y"], 25),
    ]
