"""Snapshots on a (re)subscribe describe the book where the connection stands on the tape.

Sessions are driven directly (no sockets): a prebuilt tape and a tape generated live with
the same seed reach the same position by the same chunk sizes, so their snapshots must
be byte-identical; the updates after a snapshot must verify against it.
"""

from __future__ import annotations

import asyncio
import copy
import time

import orjson
import pytest
from picows import WSMsgType, ws_connect
from tests.replay.client import Collector

from ssmd.replay.server import ReplayServer
from ssmd.replay.synth import iso_us
from ssmd.replay.synthetic import SyntheticFeed
from ssmd.venues import sim
from ssmd.venues.binance import BinanceNormalizer

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
START = 1_700_000_000_000_000_000
CHUNK = 4096
"""The chunk size of an unpaced tape (synthetic.py): a prebuilt and a live session
taking this many per call pass the same chunk boundaries."""


def _feed(prebuild: int, venue: str = "sim", symbols: list[str] = SYMBOLS) -> SyntheticFeed:
    return SyntheticFeed(venue, symbols, seed=3, start_ns=START, prebuild=prebuild)


def _sub(channel: str, symbols: list[str], method: str = "subscribe") -> bytes:
    build = sim.subscribe if method == "subscribe" else sim.unsubscribe
    return build([channel], symbols)[0].encode()


def _data(frame: bytes) -> dict:
    return orjson.loads(frame)["data"][0]


@pytest.mark.parametrize("prebuild", [60_000, 0], ids=["prebuilt", "live"])
def test_a_late_book_subscribe_gets_the_book_at_the_tape_position(prebuild: int) -> None:
    feed, reference = _feed(prebuild), _feed(0)
    start = reference.template.book_snapshot(0)
    session, ref = feed.session("/v2", 1), reference.session("/v2", 1)
    for s in (session, ref):
        s.on_text(_sub("trade", SYMBOLS))  # dev.yaml order: trade, quote, then book
        for _ in range(10):
            s.take(CHUNK)
    here = session._index
    assert here == ref._index >= 10 * CHUNK
    reply = session.on_text(_sub("book", SYMBOLS))
    assert [orjson.loads(f)["success"] for f in reply.frames] == [True] * 3  # acks only
    ref.on_text(_sub("book", SYMBOLS))
    frames, _ = session.take(CHUNK)
    snaps = frames[:3]
    assert snaps == ref.take(CHUNK)[0][:3]  # the very book the live tape has there
    assert snaps[0] != start  # not the tape's start
    assert [_data(f)["symbol"] for f in snaps] == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert {_data(f)["timestamp"] for f in snaps} == {iso_us(START + here * feed.step_ns)}
    n = sim.normalizer(feed="dev")
    for f in frames:
        n.on_frame(f, 1)
    for _ in range(5):  # through the end of the prefix into the connection's own tape
        for f in session.take(CHUNK)[0]:
            n.on_frame(f, 1)
    assert (n.stats.checksums_failed, n.stats.checksums_verified > 10_000) == (0, True)


def test_a_resync_resubscribe_mid_prefix_heals_the_book() -> None:
    """What the connector does on a checksum failure: unsubscribe + subscribe the book of
    one symbol; the snapshot arrives in-band and the updates after it verify."""
    feed, reference = _feed(80_000), _feed(0)
    session, ref = feed.session("/v2", 1), reference.session("/v2", 1)
    for s in (session, ref):
        s.on_text(_sub("book", SYMBOLS))
    n = sim.normalizer(feed="dev")
    for f in session.on_text(_sub("book", SYMBOLS)).frames:
        n.on_frame(f, 1)
    for _ in range(15):
        for f in session.take(CHUNK)[0]:
            n.on_frame(f, 1)
        ref.take(CHUNK)
    verified = n.stats.checksums_verified
    for s in (session, ref):
        for _ in range(2):  # the watchdog asked again before the boundary: one snapshot
            s.on_text(_sub("book", ["ETH-USD"], "unsubscribe"))
            s.on_text(_sub("book", ["ETH-USD"]))
        s.on_text(_sub("book", ["SOL-USD"], "unsubscribe"))  # withdrawn before the boundary
    frames = session.take(CHUNK)[0]
    assert _data(frames[0])["symbol"] == "ETH/USD" and b'"snapshot"' in frames[0]
    assert sum(b'"snapshot"' in f for f in frames) == 1
    assert not any(b"SOL/USD" in f for f in frames)
    assert frames[0] == ref.take(CHUNK)[0][0]
    for _ in range(3):
        frames += session.take(CHUNK)[0]
    for f in frames:
        n.on_frame(f, 1)
    assert n.stats.checksums_failed == 0
    assert n.stats.checksums_verified > verified + 8_000


def test_binance_rest_depth_in_the_prefix_stitches_to_the_stream() -> None:
    syms = ["BTCUSDT", "ETHUSDT"]
    feed = _feed(60_000, "binance", syms)
    path = "/stream?streams=" + "/".join(f"{s.lower()}@depth@100ms" for s in syms)
    session = feed.session(path, 1)
    n = BinanceNormalizer()
    buffered = [f for _ in range(10) for f in session.take(CHUNK)[0]]
    for f in buffered[:100]:
        n.on_frame(f, 1)  # depth before the snapshot: buffered by the normalizer
    for s in syms:
        body = feed.rest(f"/api/v3/depth?symbol={s}&limit=1000").body
        assert orjson.loads(body)["lastUpdateId"] > 1_000_000 + 10 * CHUNK // 4  # not the start
        n.on_rest(f"/api/v3/depth?symbol={s}&limit=1000", body, 2)
    for f in buffered[100:] + [f for _ in range(5) for f in session.take(CHUNK)[0]]:
        n.on_frame(f, 3)
    st = n.stats
    assert (st.sequence_gaps, st.crossed, st.parse_errors) == (0, 0, 0)
    assert st.records["book"] > 5_000


def test_a_paced_tape_sends_a_late_snapshot_within_a_chunk() -> None:
    """dev's 200 frames/s: the in-band snapshot waits for the next chunk boundary, so a
    chunk is 50 ms of tape (a 512-frame chunk was 2.6 s, past the connector's 2 s resync
    watchdog, which then asked again)."""

    async def go() -> float:
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=3, rate=200) as srv:
            transport, client = await ws_connect(Collector, srv.url)
            assert isinstance(client, Collector)
            transport.send(WSMsgType.TEXT, _sub("trade", SYMBOLS))
            await asyncio.sleep(1.0)
            asked = time.monotonic()
            transport.send(WSMsgType.TEXT, _sub("book", ["ETH-USD"]))
            while not any(b'"type":"snapshot"' in f for f in client.frames):
                assert time.monotonic() - asked < 5, "no snapshot"
                await asyncio.sleep(0.01)
            got = client.times[next(i for i, f in enumerate(client.frames) if b"snapshot" in f)]
            transport.disconnect()
            return got - asked

    assert asyncio.run(go()) < 0.5


@pytest.mark.parametrize("venue", ["sim", "binance"])
def test_a_tape_copy_plays_on_like_a_deep_copy_and_on_its_own(venue: str) -> None:
    symbols = ["BTCUSDT", "ETHUSDT"] if venue == "binance" else SYMBOLS
    tape = _feed(0, venue, symbols).template
    tape.take(5_000)
    twin, deep = tape.copy(), copy.deepcopy(tape)
    ahead = tape.take(20_000)  # the original moves on: the copy must not
    assert twin.take(20_000) == deep.take(20_000) == ahead
