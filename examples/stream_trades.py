"""Stream live trades from a running gateway (e.g. the one `ssmd up` prints).

    export SSMD_URL=http://127.0.0.1:8080        # the gateway line of `ssmd up`
    export SSMD_API_KEY=ssmd_…                   # the admin key `ssmd up` prints once
    python examples/stream_trades.py [FEED] [SYMBOL_GLOB] [--count N] [--since 60]

Prints each trade (exact decimal strings) and every connection event; reconnects and
resumes on its own if the gateway restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from ssmd.client import Client, Event
from ssmd.model import Gap, Trade
from ssmd.model.fixed import from_fixed
from ssmd.model.time import format_ns


async def main(feed: str, symbols: list[str], count: int, since_s: float | None) -> None:
    client = Client()
    start = None if since_s is None else time.time_ns() - int(since_s * 1e9)
    seen = 0
    async with client.stream(
        feed, types=["trade", "gap"], symbols=symbols, start=start, events=True
    ) as stream:
        async for item in stream:
            if isinstance(item, Trade):
                seen += 1
                print(f"{format_ns(item.ts_recv)} {item.symbol:<12} {item.side:<7} "
                      f"{from_fixed(item.price):>14} x {from_fixed(item.size)}")  # fmt: skip
            elif isinstance(item, Gap):
                print(f"GAP {item.symbol} {item.reason} {item.detail}")
            elif isinstance(item, Event):
                print(f"-- {item}")
            if count and seen >= count:
                break


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("feed", nargs="?", default="sim")
    p.add_argument("symbols", nargs="*", default=["*"])
    p.add_argument("--count", type=int, default=20, help="stop after N trades (0 = never)")
    p.add_argument("--since", type=float, default=None, help="replay the last S seconds first")
    a = p.parse_args()
    asyncio.run(main(a.feed, a.symbols, a.count, a.since))
