"""Synthetic mode over a real picows client: deterministic, and clean by our own checks."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Coroutine
from typing import Any

import orjson
import pytest
from tests.replay.client import collect

from ssmd.model.records import Book, Trade
from ssmd.replay import ReplayServer
from ssmd.venues import sim
from ssmd.venues.binance import BinanceNormalizer
from ssmd.venues.kraken_v2 import KrakenV2Normalizer

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
START = 1_700_000_000_000_000_000


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _sim_subs() -> list[str]:
    return sim.subscribe(["book", "trade", "quote"], SYMBOLS)


def test_sim_is_deterministic_per_seed_and_passes_integrity() -> None:
    async def go() -> tuple[list[bytes], list[bytes], list[bytes]]:
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=5, start_ns=START) as srv:
            a = await collect(srv.url, _sim_subs(), 20_000)
            b = await collect(srv.url, _sim_subs(), 20_000)
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=6, start_ns=START) as srv:
            c = await collect(srv.url, _sim_subs(), 20_000)
        # frame 0 is the status greeting, whose connection_id differs per connection
        return a.frames[1:20_000], b.frames[1:20_000], c.frames[1:20_000]

    a, b, c = run(go())
    assert a == b, "same seed, same bytes"
    assert a != c
    n = sim.normalizer(feed="dev")
    records = [r for f in a for r in n.on_frame(f, 1)]
    s = n.stats
    assert (s.checksums_failed, s.sequence_gaps, s.crossed, s.parse_errors) == (0, 0, 0, 0)
    assert s.checksums_verified > 15_000
    assert {r.venue for r in records} == {"sim"}
    assert {r.symbol for r in records} == set(SYMBOLS)
    assert set(s.records) == {"book", "trade", "quote"}
    # the plain Kraken v2 normalizer agrees (sim is Kraken v2 on the wire)
    k = KrakenV2Normalizer()
    for f in a:
        k.on_frame(f, 1)
    assert k.stats.checksums_failed == 0 and k.stats.checksums_verified == s.checksums_verified


def test_sim_protocol_acks_pong_errors_instrument_and_rest() -> None:
    async def go() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS[:1], seed=1) as srv:
            msgs = [
                '{"method":"ping","req_id":9}',
                '{"method":"subscribe","params":{"channel":"instrument"},"req_id":2}',
                '{"method":"subscribe","params":{"channel":"book","symbol":["XYZ/USD"]},"req_id":3}',
                '{"method":"nope"}',
            ]
            c = await collect(srv.url, msgs, 5)
            url = srv.rest_url + sim.instruments_url()
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
            pairs = orjson.loads(body)
        return [orjson.loads(f) for f in c.frames], pairs

    frames, pairs = run(go())
    assert frames[0]["channel"] == "status" and frames[0]["data"][0]["system"] == "online"
    assert frames[1]["method"] == "pong" and frames[1]["req_id"] == 9
    assert frames[2]["result"]["channel"] == "instrument" and frames[2]["success"]
    pair = frames[3]["data"]["pairs"][0]
    assert (pair["symbol"], pair["price_precision"], pair["qty_precision"]) == ("BTC/USD", 1, 8)
    assert frames[4]["success"] is False and "XYZ/USD" in frames[4]["error"]
    (ins,) = sim.parse_instruments(orjson.dumps(pairs))
    assert (ins.venue, ins.symbol, ins.venue_symbol) == ("sim", "BTC-USD", "BTC/USD")


def test_rate_paces_and_heartbeats_when_idle() -> None:
    async def go() -> tuple[list[bytes], float]:
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=2, rate=200) as srv:
            t = time.monotonic()
            await collect(srv.url, _sim_subs(), 10 + 300, timeout=10)
            elapsed = time.monotonic() - t
        async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=2, rate=0.5) as srv:
            idle = await collect(srv.url, _sim_subs()[:1], 0, timeout=2.5)
        return idle.frames, elapsed

    idle, elapsed = run(go())
    assert 1.0 < elapsed < 3.5, elapsed  # ~300 frames at 200/s after the snapshots
    assert b'{"channel":"heartbeat"}' in idle


def test_paced_frames_arrive_whole_and_in_order() -> None:
    """Pacing writes each run of due frames at once (its end found by bisection): at 20k
    frames/s nothing is lost or reordered (every book checksum verifies, no trade id
    repeats or goes back) and the stream takes about as long as the rate says."""

    async def go() -> tuple[list[bytes], float]:
        async with ReplayServer(
            synthetic="sim", symbols=SYMBOLS, seed=3, start_ns=START, rate=20_000
        ) as srv:
            t = time.monotonic()
            paced = await collect(srv.url, _sim_subs(), 10_000, timeout=10)
            return paced.frames, time.monotonic() - t

    frames, elapsed = run(go())
    assert 0.3 < elapsed < 3.0, elapsed  # ~10,000 frames at 20k/s after the snapshots
    n = sim.normalizer(feed="dev")
    records = [r for f in frames for r in n.on_frame(f, 1)]
    s = n.stats
    assert (s.checksums_failed, s.sequence_gaps, s.crossed, s.parse_errors) == (0, 0, 0, 0)
    assert s.checksums_verified > 7_000
    for symbol in SYMBOLS:
        ids = [int(r.trade_id) for r in records if r.symbol == symbol and isinstance(r, Trade)]
        assert ids == sorted(set(ids)) and len(ids) > 50


def test_binance_diffs_stitch_to_the_rest_snapshot() -> None:
    syms = ["BTCUSDT", "ETHUSDT"]

    async def go() -> tuple[list[bytes], dict[str, bytes], list[bytes]]:
        async with ReplayServer(synthetic="binance", symbols=syms, seed=4, rate=20_000) as srv:
            path = "/stream?streams=" + "/".join(
                f"{s.lower()}@{c}" for s in syms for c in ("depth@100ms", "trade", "bookTicker")
            )
            url = srv.url.rsplit("/", 1)[0] + path
            task = asyncio.create_task(collect(url, (), 20_000, timeout=20))
            await asyncio.sleep(0.3)  # the stream runs; the snapshot comes in the middle
            snaps = {}
            for s in syms:
                rest = f"{srv.rest_url}/api/v3/depth?symbol={s}&limit=1000"
                body = await asyncio.to_thread(lambda u=rest: urllib.request.urlopen(u).read())
                snaps[s] = body
            c = await task
            raw = await collect(
                srv.url, ['{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":7}'], 3
            )
        return c.frames, snaps, raw.frames

    frames, snaps, raw = run(go())
    assert orjson.loads(raw[0]) == {"result": None, "id": 7}
    assert orjson.loads(raw[1])["e"] == "trade"
    n = BinanceNormalizer()
    records = []
    cut = len(frames) // 4
    for f in frames[:cut]:
        records += n.on_frame(f, 1)
    for s, body in snaps.items():
        records += n.on_rest(f"/api/v3/depth?symbol={s}&limit=1000", body, 2)
    for f in frames[cut:]:
        records += n.on_frame(f, 3)
    st = n.stats
    assert (st.sequence_gaps, st.crossed, st.parse_errors) == (0, 0, 0), st
    books = [r for r in records if isinstance(r, Book)]
    assert sum(r.snapshot for r in books) == 2 and len(books) > 5_000
    assert {"trade", "quote"} <= set(st.records)


@pytest.mark.parametrize("venue", ["sim", "binance"])
def test_bad_synthetic_config_fails_fast(venue: str) -> None:
    with pytest.raises(ValueError):
        ReplayServer(synthetic=venue, symbols=[])
    with pytest.raises(ValueError):
        ReplayServer(synthetic="kraken-v1", symbols=["BTC-USD"])
