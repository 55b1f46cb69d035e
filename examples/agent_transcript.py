"""A scripted agent: answer "what was the BTC-USD spread on the dev feed in the last 5
minutes, and were there gaps?" with the MCP tools alone, and print the session as a
Markdown transcript (the one in docs/agents.md was made this way against `ssmd up`).

    export SSMD_API_KEY=ssmd_…                   # the admin key `ssmd up` prints once
    python examples/agent_transcript.py [--feed sim] [--symbol BTC-USD] [--minutes 5]
    python examples/agent_transcript.py --url http://127.0.0.1:8765/mcp   # ssmd mcp -t http

It plays the model's part deterministically: the same calls, in the order a model is told
to make them (INSTRUCTIONS of `ssmd mcp`), and the arithmetic done on the exact decimal
strings the tools return.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import ClientTransport, StdioTransport, StreamableHttpTransport
from fastmcp.exceptions import ToolError

from ssmd.model.time import format_ns

MAX_PAGES = 50


@dataclass
class Transcript:
    question: str
    steps: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    answer: str = ""

    def markdown(self) -> str:
        lines = [f"> **User:** {self.question}", ""]
        for tool, args, result in self.steps:
            call = ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items())
            shown = json.dumps(_trim(result), indent=1, ensure_ascii=False)
            lines += [f"**Agent → `{tool}({call})`**", "", "```json", shown, "```", ""]
        return "\n".join([*lines, f"**Agent:** {self.answer}", ""])


def _trim(value: Any) -> Any:
    """A result as a reader wants it in a transcript: long lists cut to two items."""
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) > 2:
        return [*map(_trim, value[:2]), f"… {len(value) - 2} more"]
    return value


async def _call(c: Client, t: Transcript, tool: str, **args: Any) -> dict[str, Any]:
    result = (await c.call_tool(tool, args)).structured_content or {}
    t.steps.append((tool, args, result))
    return result


def spread_summary(quotes: list[dict[str, Any]]) -> dict[str, Decimal | int] | None:
    """Exact spread figures of BBO updates (ask_px − bid_px), None without a two-sided one."""
    spreads = [Decimal(q["ask_px"]) - Decimal(q["bid_px"])
               for q in quotes if q.get("ask_px") and q.get("bid_px")]  # fmt: skip
    if not spreads:
        return None
    mean = (sum(spreads) / len(spreads)).quantize(Decimal("1e-8"))
    figures = {"last": spreads[-1], "min": min(spreads), "median": statistics.median(spreads),
               "max": max(spreads), "mean": mean}  # fmt: skip
    return {"count": len(spreads), **{k: v.normalize() for k, v in figures.items()}}


def gaps_in(gaps: list[dict[str, Any]], symbol: str, start: int, end: int) -> list[dict]:
    """Gap records of `symbol` (or feed-wide) whose span or receive time touches [start, end)."""
    out = []
    for g in gaps:
        since = int(g.get("since_ns") or g["ts_recv"])
        until = int(g.get("until_ns") or g["ts_recv"])
        if g.get("symbol") in (symbol, "", None) and since < end and until >= start:
            out.append(g)
    return out


async def transcript(c: Client, feed: str, symbol: str, start: int, end: int) -> Transcript:
    minutes = round((end - start) / 60e9)
    t = Transcript(f"What was the {symbol} spread on the {feed} feed in the last "
                   f"{minutes} minutes, and were there gaps?")  # fmt: skip
    feeds = await _call(c, t, "list_feeds")
    if feed not in {f["name"] for f in feeds.get("feeds", [])}:
        t.answer = f"I cannot see a feed named {feed!r} with this key."
        return t
    quotes: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_PAGES):
        args: dict[str, Any] = {"feed": feed, "symbol": symbol, "start": start, "end": end,
                                "limit": 1000}  # fmt: skip
        if cursor:
            args["cursor"] = cursor
        page = await _call(c, t, "get_quotes", **args)
        quotes += page.get("records", [])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    quality = await _call(c, t, "data_quality", feed=feed, symbol=symbol, days=1, hours=1)
    gaps = gaps_in(quality.get("recent_gaps", []), symbol, start, end)
    window = f"{format_ns(start)} – {format_ns(end)}"
    s = spread_summary(quotes)
    if s is None:
        said = f"No two-sided quotes for {symbol} on {feed} in {window}."
    else:
        said = (f"From {window}, {symbol} on `{feed}` had {s['count']} quote updates. "
                f"Spread (ask − bid): last {s['last']:f}, min {s['min']:f}, "
                f"median {s['median']:f}, max {s['max']:f}, mean {s['mean']:f}.")  # fmt: skip
    if gaps:
        kinds = ", ".join(sorted({g["reason"] for g in gaps}))
        said += f" Gaps: {len(gaps)} in the window ({kinds}); figures around them are partial."
    else:
        said += " Gaps: none in the window (data_quality found no gap record touching it)."
    t.answer = said
    return t


def _transport(url: str | None, env: str) -> ClientTransport:
    key = os.environ.get("SSMD_API_KEY", "")
    if not key:
        sys.exit("set SSMD_API_KEY (the admin key `ssmd up` printed, or `ssmd key create`)")
    if url:
        return StreamableHttpTransport(url, headers={"Authorization": f"Bearer {key}"})
    ssmd = str(Path(sys.executable).parent / "ssmd")
    return StdioTransport(ssmd, ["mcp", "--transport", "stdio", "--env", env],
                          env=dict(os.environ))  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    end = time.time_ns()
    start = end - int(args.minutes * 60e9)
    try:
        async with Client(_transport(args.url, args.env)) as c:
            t = await transcript(c, args.feed, args.symbol, start, end)
    except ToolError as exc:  # what the server said, e.g. "401 invalid_api_key: …"
        sys.exit(f"error: {exc}")
    print(t.markdown())


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feed", default="sim")
    p.add_argument("--symbol", default="BTC-USD")
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--env", default="dev")
    p.add_argument("--url", help="MCP over HTTP (ssmd mcp -t http) instead of stdio")
    asyncio.run(main(p.parse_args()))
