"""examples/stream_trades.py runs against a real gateway with the key from the environment."""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path

from gateway.stream_harness import Bus, gateway, seed, trade

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_stream_trades_example(pg_url, nats_url, monkeypatch, capsys):
    tokens = seed(pg_url)
    example = runpy.run_path(str(EXAMPLES / "stream_trades.py"))

    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            monkeypatch.setenv("SSMD_URL", f"http://127.0.0.1:{gw.port}")
            monkeypatch.setenv("SSMD_API_KEY", tokens["all"])
            run = asyncio.create_task(example["main"]("sim", ["BTC-*"], 3, None))
            for i in range(100):  # until the example has subscribed and seen three
                await bus.publish(trade(i))
                done, _ = await asyncio.wait([run], timeout=0.1)
                if done:
                    break
            await asyncio.wait_for(run, 10)

    asyncio.run(main())
    out = capsys.readouterr().out
    assert out.count("BTC-USD") >= 3 and " x 0.01" in out and "Subscribed" in out
