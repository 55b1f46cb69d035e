"""CPU per message of the connector's publish path: Outbox.put → HPUB → JetStream ack.

    .venv/bin/python bench/publish_path.py [--quick] [--json]

What the connector's `_sink` does after deriving, without the deriving: ~200-byte
trade messages put into an `Outbox` frame by frame (1-3 messages a frame, as a live
feed's lines), published through the acked `Publisher` to a private nats-server (file
storage), every ack processed with the connector's per-link hook. A frame burst per
event-loop turn stands in for the venue socket's reads. The figure is this process's
CPU time (time.process_time, so the server's own CPU and a busy box do not count) per
acked message, on uvloop as `ssmd connector` runs; best of a few rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nats
import uvloop
from nats.js.api import StreamConfig

from ssmd.bus.msgid import msg_id
from ssmd.bus.publisher import Publisher
from ssmd.capture.journal import SegmentPos
from ssmd.capture.outbox import Message, Outbox
from ssmd.model import native
from ssmd.model.codec import encode
from ssmd.model.records import Trade
from ssmd.stack.nats import NatsServer

FRAME_SIZES = (1, 1, 2, 1, 3, 1)  # messages per frame: ~1.5, a busy live feed's mix
BURST = 16  # frames per event-loop turn


def frames(n: int, stream: str) -> list[list[Message]]:
    """n messages cut into frames; two links, each message with its journal origin."""
    base = 1_700_000_000_000_000_000
    out: list[list[Message]] = []
    i = 0
    while i < n:
        size = min(FRAME_SIZES[len(out) % len(FRAME_SIZES)], n - i)
        frame = []
        for j in range(i, i + size):
            r = Trade(
                feed="bench", venue="sim", symbol=f"SYM{j % 50}-USD", ts_event=base + j,
                ts_recv=base + j + 1000, price=(50_000 + j % 97) * 10**9 // 100, size=10**7,
                side="buy", trade_id=str(j),
            )  # fmt: skip
            link = len(out) % 2
            origin = SegmentPos(Path("seg"), len(out))
            frame.append(
                Message(f"{stream}.{r.symbol}", encode(r), msg_id(r, "venue"), link, origin)
            )
        out.append(frame)
        i += size
    return out


async def one_round(url: str, stream: str, batches: list[list[Message]], n: int) -> float:
    """CPU µs per message from the first put to the last ack."""
    nc = await nats.connect(url)
    await nc.jetstream().add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"]))
    await nc.close()
    acked: dict[int, SegmentPos] = {}

    def on_acked(message: Message) -> None:  # the connector's _acked_one
        if message.origin is not None:
            acked[message.link] = message.origin

    pub = await Publisher(url, window=8192).start()
    outbox = Outbox(pub, 2 * 8192, on_acked)
    runner = asyncio.ensure_future(outbox.run())
    gc.collect()
    cpu = time.process_time()
    for start in range(0, len(batches), BURST):
        while outbox.room <= 0:
            await asyncio.sleep(0.0005)
        for frame in batches[start : start + BURST]:
            outbox.put(frame, 1)
        await asyncio.sleep(0)
    await outbox.drained()
    cpu = time.process_time() - cpu
    assert outbox.acked == n and pub.stats.acked == n and len(acked) == 2
    runner.cancel()
    await pub.close()
    return cpu / n * 1e6


async def main(quick: bool) -> dict:
    n = 100_000 if quick else 400_000
    rounds = 3 if quick else 5
    data = Path(tempfile.mkdtemp(prefix="ssmd-bench-nats-"))
    server = NatsServer(data).start()
    try:
        figures = []
        for i in range(rounds):
            stream = f"P{i}"
            us = await one_round(server.url, stream, frames(n, stream), n)
            figures.append(round(us, 3))
            print(f"round {i}: {us:.3f} CPU µs/msg", file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return {
        "bench": "publish_path",
        "messages": n,
        "native": native._native is not None,
        "cpu_us_per_msg": min(figures),
        "rounds": figures,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    result = uvloop.run(main(args.quick))
    if not args.json:
        print(json.dumps(result, indent=2))
    print(json.dumps(result))
