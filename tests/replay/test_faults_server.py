"""Each fault kind does what it says, on the wire, as seen by a picows client."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from tests.replay.client import collect

from ssmd.model.records import Gap
from ssmd.replay import FaultSpec, ReplayServer
from ssmd.venues import sim
from ssmd.venues.recording import iter_cryptofeed

SYMBOLS = ["BTC-USD", "ETH-USD"]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _recording(fixtures_dir: Path) -> tuple[Path, list[bytes], list[str]]:
    path = fixtures_dir / "recordings" / "KRAKEN.ws.50.0"
    frames = list(iter_cryptofeed(path.read_text().splitlines()))
    ins = [f.payload.encode() for f in frames if f.direction == "in"]
    return path, ins, [f.payload for f in frames if f.direction == "out"]


@pytest.mark.fixtures
def test_drop_dup_reorder_exactly_as_planned(fixtures_dir: Path) -> None:
    path, ins, outs = _recording(fixtures_dir)
    greeting, stream = ins[:1], ins[1:]
    spec = "drop@0.01,dup@0.01,reorder@0.01,drop@7"
    plan = FaultSpec.parse(spec).for_connection(1, seed=11)
    expected: list[bytes] = []
    for i, payload in enumerate(stream):
        plan.apply(i, payload, expected)
    plan.finish(expected)
    c = plan.counts
    assert c.dropped > 20 and c.duplicated > 20 and c.reordered > 20

    async def go() -> list[bytes]:
        async with ReplayServer([path], speed=0, faults=spec, seed=11) as srv:
            got = await collect(srv.url, outs, 1 + len(expected), timeout=20)
            await asyncio.sleep(0.3)
            assert srv.frames_sent == len(expected)
            return got.frames

    got = run(go())
    assert got[:1] == greeting and got[1:] == expected
    counts = Counter(got[1:])
    assert len(got) - 1 == len(stream) - c.dropped + c.duplicated
    assert sum(n - 1 for n in counts.values() if n > 1) >= c.duplicated - 5  # heartbeats repeat
    assert stream[7] not in got or Counter(stream)[stream[7]] > 1


def test_corrupt_checksum_is_a_checksum_gap() -> None:
    async def go() -> list[bytes]:
        async with ReplayServer(
            synthetic="sim", symbols=SYMBOLS, seed=3, faults="corrupt-checksum@500"
        ) as srv:
            subs = sim.subscribe(["book", "trade", "quote"], SYMBOLS)
            return (await collect(srv.url, subs, 3000)).frames

    frames = run(go())
    n = sim.normalizer()
    gaps = [r for f in frames for r in n.on_frame(f, 1) if isinstance(r, Gap)]
    assert n.stats.checksums_failed == 1 and n.stats.parse_errors == 0
    assert [g.reason for g in gaps] == ["checksum"] and gaps[0].venue == "sim"
    assert n.take_resyncs()[0].action == "resubscribe"


@pytest.mark.parametrize(("kind", "close_code"), [("disconnect", 1001), ("kill", None)])
def test_disconnect_after_n_frames(kind: str, close_code: int | None) -> None:
    async def go() -> tuple[int, int | None, int, bool]:
        async with ReplayServer(
            synthetic="sim", symbols=SYMBOLS, seed=3, faults=f"{kind}@1000#1"
        ) as srv:
            subs = sim.subscribe(["book", "trade", "quote"], SYMBOLS)
            first = await collect(srv.url, subs, 10**6, timeout=10)
            second = await collect(srv.url, subs, 2000, timeout=10)  # #1: first connection only
            return len(first.frames), first.close_code, len(second.frames), first.closed.is_set()

    n_first, code, n_second, closed = run(go())
    head = 1 + 2 * 3 + 2 * 2  # status + (ack, snapshot) book & ticker + trade acks
    assert closed and n_first == head + 1000
    assert code == close_code
    assert n_second >= 2000


def test_stall_pauses_the_stream() -> None:
    async def go() -> list[float]:
        async with ReplayServer(
            synthetic="sim", symbols=SYMBOLS, seed=3, faults="stall@100:700ms"
        ) as srv:
            subs = sim.subscribe(["book"], SYMBOLS)
            t = time.monotonic()
            c = await collect(srv.url, subs, 1 + 4 + 300, timeout=10)
            return [x - t for x in c.times]

    times = run(go())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) > 0.6
    assert gaps.index(max(gaps)) == 1 + 4 + 100 - 1  # right before stream frame 100
