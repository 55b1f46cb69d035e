"""Session against ssmd's own replay server speaking Kraken v2 (synthetic tape)."""

from __future__ import annotations

import asyncio
from collections import Counter

from ssmd.capture.policy import BackoffPolicy
from ssmd.capture.session import Session, SessionConfig, Wire
from ssmd.replay import ReplayServer
from ssmd.venues import kraken_v2

SYMBOLS = ["BTC/USD", "ETH/USD"]


async def capture(faults: str, want_frames: int) -> tuple[list[tuple[bytes, int, int]], list]:
    frames: list[tuple[bytes, int, int]] = []
    events: list[tuple[str, str]] = []
    async with ReplayServer(
        synthetic="kraken-v2", symbols=SYMBOLS, seed=3, rate=400, faults=faults
    ) as srv:
        session = Session(
            SessionConfig(url=srv.url, backoff=BackoffPolicy(base=0.05, cap=0.2)),
            Wire.from_module(kraken_v2, ["book", "trade"], 10),
            SYMBOLS,
            on_frames=frames.extend,
            on_event=lambda k, d, t, m: events.append((k, d)),
        )
        task = asyncio.create_task(session.run())
        for _ in range(1000):
            if len(frames) >= want_frames:
                break
            await asyncio.sleep(0.02)
        session.stop()
        await asyncio.wait_for(task, 5)
    return frames, events


def normalize(frames: list[tuple[bytes, int, int]]) -> Counter:
    norm = kraken_v2.normalizer(feed="kr")
    counts: Counter = Counter()
    for payload, ts, _ in frames:
        for record in norm.on_frame(payload, ts):
            counts[(type(record).__name__, getattr(record, "symbol", ""))] += 1
    assert norm.stats.parse_errors == 0
    return counts


def test_session_captures_a_kraken_v2_tape() -> None:
    frames, events = asyncio.run(capture("", 300))
    assert len(frames) >= 300
    assert [k for k, _ in events][:1] == ["open"]
    ts = [t for _, t, _ in frames]
    assert ts == sorted(ts)
    counts = normalize(frames)
    for symbol in ("BTC-USD", "ETH-USD"):
        assert counts[("Book", symbol)] > 10, counts


def test_venue_disconnect_reconnects_and_resubscribes() -> None:
    frames, events = asyncio.run(capture("disconnect@100#1", 300))
    kinds = [k for k, _ in events]
    assert kinds[:3] == ["open", "close", "open"], events
    assert events[1][1].startswith("closed by venue: 1001"), events[1]
    assert len(frames) >= 300
    # The second connection got fresh snapshots for both symbols (it resubscribed).
    after = frames[100:]
    snapshots = [p for p, _, _ in after if b'"type":"snapshot"' in p and b'"book"' in p]
    assert any(b"BTC/USD" in p for p in snapshots) and any(b"ETH/USD" in p for p in snapshots)
