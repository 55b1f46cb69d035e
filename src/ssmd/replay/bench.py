"""Throughput of the replay server's synthetic mode to one picows client (not a test).

`python -m ssmd.replay.bench [--frames N] [--prebuild N] [--venue sim]`: starts
`ssmd replay-server` as a subprocess (uvloop), connects one client that only counts
frames, and prints frames/s as the last line (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from ssmd.replay.process import ReplayProcess
from ssmd.stack.ports import free_port
from ssmd.venues import sim


class _Counter(WSListener):
    def __init__(self, want: int) -> None:
        self.n = 0
        self.want = want
        self.first = 0.0
        self.done = asyncio.Event()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.n += 1
            if self.n == 100:
                self.first = time.perf_counter()
            if self.n >= self.want:
                self.done.set()


async def _measure(url: str, frames: int, subs: list[str]) -> float:
    transport, client = await ws_connect(lambda: _Counter(frames), url)
    assert isinstance(client, _Counter)
    for s in subs:
        transport.send(WSMsgType.TEXT, s.encode())
    await asyncio.wait_for(client.done.wait(), 300)
    rate = (client.n - 100) / (time.perf_counter() - client.first)
    transport.disconnect()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=500_000)
    ap.add_argument("--prebuild", type=int, default=0)
    ap.add_argument("--symbols", default="BTC-USD,ETH-USD,SOL-USD")
    args = ap.parse_args()
    symbols = args.symbols.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = ReplayProcess(Path(tmp) / "replay.log", synthetic="sim", symbols=symbols,
                             seed=1, port=free_port(), prebuild=args.prebuild)  # fmt: skip
        with proc.start(timeout=600):
            ready = time.perf_counter() - t
            subs = sim.subscribe(["book", "trade", "quote"], symbols)
            import uvloop

            rate = uvloop.run(_measure(proc.url, args.frames, subs))
    print(json.dumps({"frames_per_s": round(rate), "frames": args.frames,
                      "prebuild": args.prebuild, "startup_s": round(ready, 2)}))  # fmt: skip


if __name__ == "__main__":
    main()
