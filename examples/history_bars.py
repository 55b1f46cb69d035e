"""Hourly bars and the last trades of a symbol from a running gateway.

    export SSMD_URL=http://127.0.0.1:8080        # the gateway line of `ssmd up`
    export SSMD_API_KEY=ssmd_…                   # the admin key `ssmd up` prints once
    python examples/history_bars.py [FEED] [SYMBOL] [--hours 6] [--interval 1m]

Needs `pip install 'ssmd[dataframes]'` for the DataFrame part (pandas).
"""

from __future__ import annotations

import argparse
import time

from ssmd.client import Client


def main(feed: str, symbol: str, hours: float, interval: str) -> None:
    with Client() as client:
        end = time.time_ns()
        start = end - int(hours * 3600 * 1e9)
        print("feeds:", [f["name"] for f in client.feeds()])
        bars = client.bars(feed, symbol, start, end, interval)
        print(f"{len(bars)} bars of {interval} for {feed}/{symbol}")
        frame = bars.to_pandas()  # open/high/low/close/volume are exact Decimals
        print(frame.tail(10).to_string(index=False))
        trades = client.trades(feed, symbol, start, end, limit=5)
        for t in trades:
            print(t)
        if trades:
            print(trades.to_pandas()[["ts_event", "price", "size", "side"]].to_string())


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("feed", nargs="?", default="sim")
    p.add_argument("symbol", nargs="?", default="BTC-USD")
    p.add_argument("--hours", type=float, default=6.0)
    p.add_argument("--interval", default="1m")
    a = p.parse_args()
    main(a.feed, a.symbol, a.hours, a.interval)
