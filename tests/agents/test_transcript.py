"""The scripted agent of docs/agents.md (examples/agent_transcript.py) against
`ssmd mcp` over stdio: it answers the spread-and-gaps question from the tools alone."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from tests.gateway.rest_app import CLIENTS, D3, ENV, records
from tests.gateway.rest_helpers import definition, issue, seed_clients, write_archive

from ssmd.model import Gap, Quote
from ssmd.model.fixed import to_fixed

REPO = Path(__file__).resolve().parents[2]
MIN = 60 * 10**9
START, END = D3 - 35 * MIN, D3 - 30 * MIN + 10**9


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "agent_transcript", REPO / "examples" / "agent_transcript.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def _quote(t: int, bid: str, ask: str) -> Quote:
    return Quote(feed="sim", venue="sim", symbol="BTC-USD", ts_event=t, ts_recv=t + 1,
                 bid_px=to_fixed(bid), bid_sz=to_fixed("1"), ask_px=to_fixed(ask),
                 ask_sz=to_fixed("1"))  # fmt: skip


def _gap(symbol: str, since: int, until: int, reason: str) -> Gap:
    return Gap(feed="sim", venue="sim", symbol=symbol, ts_recv=until + 5, reason=reason,
               since_ns=since, until_ns=until, detail="test")  # fmt: skip


def test_transcript_answers_spread_and_gaps(pg_url: str, tmp_path: Path) -> None:
    # In the window: the fixture's quote at D3-30min (60005.55 ± 1: spread 2) plus three
    # with hand-set spreads 0.5, 1.25 and 2.00; a BTC gap inside it, an ETH gap too.
    extra = [
        _quote(START + MIN, "60000.00", "60000.50"),
        _quote(START + 2 * MIN, "60001.00", "60002.25"),
        _quote(START + 3 * MIN, "59999.00", "60001.00"),
        _gap("BTC-USD", START + 3 * MIN, START + 4 * MIN, "checksum"),
        _gap("ETH-USD", START + 3 * MIN, START + 4 * MIN, "disconnect"),
    ]
    defn = definition(tmp_path)
    seed_clients(pg_url, ENV, CLIENTS)
    write_archive(defn, tmp_path, records() + extra)
    token = issue(pg_url, ENV, "ops").token
    transport = StdioTransport(
        str(Path(sys.executable).parent / "ssmd"),
        ["mcp", "--transport", "stdio", "--env", str(REPO / "environments" / "dev.yaml"),
         "--pg-url", pg_url, "--data-dir", str(tmp_path)],
        env={**os.environ, "SSMD_API_KEY": token, "SSMD_NATS_URL": ""},
    )  # fmt: skip
    example = _example()

    async def run() -> Any:
        async with Client(transport) as c:
            return await example.transcript(c, "sim", "BTC-USD", START, END)

    t = asyncio.run(asyncio.wait_for(run(), 120))
    assert [tool for tool, _, _ in t.steps] == ["list_feeds", "get_quotes", "data_quality"]
    assert t.question == (
        "What was the BTC-USD spread on the sim feed in the last 5 minutes, and were there gaps?"
    )
    # spreads in ts order: 0.50, 1.25, 2.00, then 2 (the fixture's quote at D3-30min)
    assert "had 4 quote updates" in t.answer
    assert "last 2, min 0.5, median 1.625, max 2, mean 1.4375." in t.answer
    assert "Gaps: 1 in the window (checksum)" in t.answer
    md = t.markdown()
    assert md.startswith("> **User:** What was the BTC-USD spread")
    assert md.count("**Agent → `") == 3 and md.rstrip().endswith("are partial.")
