"""Acked JetStream publish rate: our publisher against nats-py, in one run.

    .venv/bin/python bench/publish.py [--quick] [--json]

A private nats-server (file storage, as in production) gets ~200-byte trade records
(the JSON wire form) with a Nats-Msg-Id each, one fresh stream per mode:

- ours:            ssmd.bus.publisher.Publisher, `await publish()` per record, all acked;
- ours try:        the same through the non-awaiting `try_publish` fast path;
- ours + encode:   `await publish()` including `encode(record)` and `msg_id(record)`;
- js.publish:      nats-py, one awaited round trip per record;
- publish_async:   nats-py futures, up to 4000 pending, all awaited;
- core (no acks):  nats-py `nc.publish` + flush: the bare Python publish ceiling.

Then p50/p99/max publish -> ack latency at a paced 10k msgs/s through our publisher.
The last line is one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import StreamConfig

from ssmd.bus.msgid import msg_id
from ssmd.bus.publisher import Publisher
from ssmd.model.codec import encode
from ssmd.model.records import Trade
from ssmd.stack.nats import NatsServer


def records(n: int) -> list[Trade]:
    base = 1_700_000_000_000_000_000
    return [
        Trade(
            feed="bench",
            venue="sim",
            symbol=f"SYM{i % 50}-USD",
            ts_event=base + i,
            ts_recv=base + i + 1000,
            price=(50_000 + i % 97) * 10**9 // 100,
            size=10**7,
            side="buy",
            trade_id=str(i),
        )
        for i in range(n)
    ]


def wire(recs: list[Trade]) -> list[tuple[str, bytes, str]]:
    return [(f"md.bench.{r.symbol}.trade", encode(r), msg_id(r, "venue")) for r in recs]


async def fresh_stream(url: str, name: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], duplicate_window=120))
    await nc.close()


async def stored(url: str, name: str) -> int:
    nc = await nats.connect(url)
    info = await nc.jetstream().stream_info(name)
    await nc.close()
    return info.state.messages


async def ours(url: str, msgs: list[tuple[str, bytes, str]], stream: str, how: str) -> float:
    pub = await Publisher(url, window=8192).start()
    prefix = f"{stream}."
    t = time.perf_counter()
    if how == "await":
        for s, p, m in msgs:
            await pub.publish(prefix + s, p, m)
    else:
        try_publish = pub.try_publish
        for s, p, m in msgs:
            if not try_publish(prefix + s, p, m):
                await pub.publish(prefix + s, p, m)
    await pub.flush()
    elapsed = time.perf_counter() - t
    await pub.close()
    return len(msgs) / elapsed


async def ours_encoding(url: str, recs: list[Trade], stream: str) -> float:
    pub = await Publisher(url, window=8192).start()
    t = time.perf_counter()
    for r in recs:
        await pub.publish(f"{stream}.{r.symbol}", encode(r), msg_id(r, "venue"))
    await pub.flush()
    elapsed = time.perf_counter() - t
    await pub.close()
    return len(recs) / elapsed


async def nats_py(url: str, msgs: list[tuple[str, bytes, str]], stream: str, how: str) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    prefix = f"{stream}."
    t = time.perf_counter()
    if how == "sequential":
        for s, p, m in msgs:
            await js.publish(prefix + s, p, headers={"Nats-Msg-Id": m})
    elif how == "async":
        futures = [
            await js.publish_async(prefix + s, p, headers={"Nats-Msg-Id": m}) for s, p, m in msgs
        ]
        await asyncio.gather(*futures)
    else:  # core, no acks
        for s, p, _ in msgs:
            await nc.publish(prefix + s, p)
        await nc.flush()
    elapsed = time.perf_counter() - t
    await nc.close()
    return len(msgs) / elapsed


async def latency(url: str, msgs: list[tuple[str, bytes, str]], stream: str, rate: int) -> dict:
    sent: dict[int, int] = {}
    lat: list[float] = []

    def on_ack(position: int, _dup: bool) -> None:
        lat.append((time.perf_counter_ns() - sent.pop(position)) / 1e6)

    pub = await Publisher(url, window=8192, on_ack=on_ack).start()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, (s, p, m) in enumerate(msgs, start=1):
        due = t0 + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        sent[i] = time.perf_counter_ns()
        await pub.publish(f"{stream}.{s}", p, m, position=i)
    await pub.flush()
    achieved = len(msgs) / (loop.time() - t0)
    await pub.close()
    lat.sort()
    return {
        "rate": rate,
        "achieved": round(achieved),
        "p50_ms": round(statistics.median(lat), 3),
        "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3),
        "max_ms": round(lat[-1], 3),
    }


async def main(quick: bool) -> dict:
    n = 50_000 if quick else 300_000
    n_slow = 3_000 if quick else 20_000
    recs = records(n)
    msgs = wire(recs)
    data = Path(tempfile.mkdtemp(prefix="ssmd-bench-nats-"))
    server = NatsServer(data).start()
    try:
        url = server.url
        rates: dict[str, float] = {}
        plan = [
            ("ours", lambda s: ours(url, msgs, s, "await"), n),
            ("ours_try", lambda s: ours(url, msgs, s, "try"), n),
            ("ours_encode", lambda s: ours_encoding(url, recs, s), n),
            ("js_publish", lambda s: nats_py(url, msgs[:n_slow], s, "sequential"), n_slow),
            ("publish_async", lambda s: nats_py(url, msgs[: n_slow * 5], s, "async"), n_slow * 5),
            ("core_no_ack", lambda s: nats_py(url, msgs, s, "core"), 0),
        ]
        for i, (name, fn, expect) in enumerate(plan):
            stream = f"B{i}"
            await fresh_stream(url, stream)
            rates[name] = round(await fn(stream))
            if expect:
                got = await stored(url, stream)
                assert got == expect, f"{name}: {got} messages stored, {expect} published"
            print(f"{name:14} {rates[name]:>10,} msgs/s", file=sys.stderr)
        await fresh_stream(url, "LAT")
        lat = await latency(url, msgs[: 10_000 if quick else 30_000], "LAT", 10_000)
        print(f"latency at {lat['rate']}/s: {lat}", file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return {
        "bench": "publish",
        "records": n,
        "record_bytes": round(sum(len(p) for _, p, _ in msgs) / n),
        "msgs_per_s": rates,
        "ours_vs_js_publish": round(rates["ours"] / rates["js_publish"], 1),
        "ours_vs_publish_async": round(rates["ours"] / rates["publish_async"], 2),
        "ours_vs_core_no_ack": round(rates["ours"] / rates["core_no_ack"], 2),
        "latency_10k": lat,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    result = asyncio.run(main(args.quick))
    if not args.json:
        print(json.dumps(result, indent=2))
    print(json.dumps(result))
