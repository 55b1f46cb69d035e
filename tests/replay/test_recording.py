"""Recording mode: the recorded `in` frames, byte for byte, after the client's subscribe."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from tests.replay.client import collect

from ssmd.replay import ReplayServer
from ssmd.venues.recording import iter_cryptofeed

pytestmark = pytest.mark.fixtures


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _recorded(path: Path) -> tuple[list[bytes], list[str]]:
    frames = list(iter_cryptofeed(path.read_text().splitlines()))
    return [f.payload.encode() for f in frames if f.direction == "in"], [
        f.payload for f in frames if f.direction == "out"
    ]


def test_kraken_v1_book_recording_byte_for_byte(fixtures_dir: Path) -> None:
    path = fixtures_dir / "recordings" / "KRAKEN.ws.50.0"
    ins, outs = _recorded(path)

    async def go() -> tuple[list[bytes], list[bytes], dict[str, Any]]:
        async with ReplayServer([path], speed=0) as srv:
            assert srv.venue == "kraken-v1"
            early = await collect(srv.url, (), 0, timeout=0.5)  # nothing before subscribe
            c = await collect(srv.url, outs, len(ins), timeout=20)
            url = srv.rest_url + "/0/public/AssetPairs"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
        return early.frames, c.frames, orjson.loads(body)

    early, got, pairs = run(go())
    assert early == ins[:1] and b"systemStatus" in early[0]  # the greeting only
    assert got == ins
    assert len(pairs["result"]) == 304  # KRAKEN.0, found next to the ws recording


def test_binance_url_subscription_and_rest_depth(fixtures_dir: Path) -> None:
    path = fixtures_dir / "recordings" / "BINANCE.ws.1.0"
    ins, _ = _recorded(path)

    async def go() -> tuple[list[bytes], list[bytes], bytes, int]:
        async with ReplayServer([path], speed=0) as srv:
            base = srv.url.rsplit("/", 1)[0]
            combined = await collect(base + "/stream?streams=nknusdt@depth@100ms", (), len(ins))
            sub = ['{"method":"SUBSCRIBE","params":["nknusdt@depth@100ms"],"id":3}']
            raw = await collect(srv.url, sub, 1 + len(ins))
            url = srv.rest_url + "/api/v3/depth?symbol=NKNUSDT&limit=1000"
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url).read())
            missing = srv.rest_url + "/api/v3/depth?symbol=NOPE"
            status = await asyncio.to_thread(_status, missing)
        return combined.frames, raw.frames, body, status

    combined, raw, body, status = run(go())
    assert combined == ins
    assert orjson.loads(raw[0]) == {"result": None, "id": 3} and raw[1:] == ins
    assert orjson.loads(body)["lastUpdateId"] == 499869752
    assert status == 404


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_speed_paces_the_recorded_time(fixtures_dir: Path) -> None:
    """KRAKEN.ws.48.0 spans ~30 s; at speed 20 the stream takes ~1.5 s."""
    path = fixtures_dir / "recordings" / "KRAKEN.ws.48.0"
    ins, outs = _recorded(path)

    async def go() -> float:
        async with ReplayServer([path], speed=20) as srv:
            t = time.monotonic()
            c = await collect(srv.url, outs, len(ins), timeout=10)
            assert c.frames == ins
            return c.times[-1] - t

    elapsed = run(go())
    assert 1.0 < elapsed < 2.5, elapsed


def test_raw_journal_replays_in_frames_only(tmp_path: Path, fixtures_dir: Path) -> None:
    """A `.jsonl.zst` journal (DESIGN §7) with a torn tail: the `in` payloads, in order."""
    ins, outs = _recorded(fixtures_dir / "recordings" / "KRAKEN.ws.49.0")
    lines = [{"t": 1, "m": 1, "c": 0, "d": "open", "p": "wss://ws.kraken.com"}]
    lines.append({"t": 2, "m": 2, "c": 0, "d": "in", "p": ins[0].decode()})
    lines.append({"t": 3, "m": 3, "c": 0, "d": "out", "p": outs[0]})
    lines += [{"t": 4 + i, "m": 4 + i, "c": 0, "d": "in", "p": p.decode()} for i, p in
              enumerate(ins[1:])]  # fmt: skip
    lines.append({"t": 999, "m": 999, "c": 0, "d": "close", "p": ""})
    data = b"".join(orjson.dumps(x) + b"\n" for x in lines)
    path = tmp_path / "0-0-1.jsonl.zst"
    cctx = zstandard.ZstdCompressor()
    blob = cctx.compress(data) + cctx.compress(b'{"t": 1000, "d": "in", "p": "torn')[:-5]
    path.write_bytes(blob)

    async def go() -> list[bytes]:
        async with ReplayServer([path], speed=0) as srv:
            assert srv.venue == "kraken-v1"  # sniffed from the recorded subscribe
            return (await collect(srv.url, outs, len(ins))).frames

    assert run(go()) == ins


def test_coinbase_recording_and_bad_input(fixtures_dir: Path, tmp_path: Path) -> None:
    path = fixtures_dir / "recordings" / "COINBASE.ws.28.0"
    ins, outs = _recorded(path)

    async def go() -> list[bytes]:
        async with ReplayServer([path], speed=0) as srv:
            assert srv.venue == "coinbase-exchange"
            return (await collect(srv.url, outs, len(ins), timeout=20)).frames

    assert run(go()) == ins
    with pytest.raises(FileNotFoundError):
        ReplayServer([tmp_path / "missing"])
