"""End to end over stdio: `ssmd mcp --transport stdio` as a subprocess with a real key,
real Postgres and a Parquet archive, driven by fastmcp's Client."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from tests.gateway.rest_app import CLIENTS, D1, ENV, records
from tests.gateway.rest_helpers import definition, issue, seed_clients, write_archive

from ssmd.meta import audit, connect


def test_stdio_end_to_end(pg_url: str, tmp_path: Path) -> None:
    defn = definition(tmp_path)
    seed_clients(pg_url, ENV, CLIENTS)
    write_archive(defn, tmp_path, records())
    env_file = Path(__file__).resolve().parents[2] / "environments" / "dev.yaml"
    token = issue(pg_url, ENV, "alice").token
    ssmd = str(Path(sys.executable).parent / "ssmd")
    transport = StdioTransport(
        command=ssmd,
        args=["mcp", "--transport", "stdio", "--env", str(env_file), "--pg-url", pg_url,
              "--data-dir", str(tmp_path)],
        env={**os.environ, "SSMD_API_KEY": token, "SSMD_NATS_URL": ""},
    )  # fmt: skip

    async def run() -> tuple[list[str], dict, str]:
        async with Client(transport) as c:
            names = sorted(t.name for t in await c.list_tools())
            hour = {"feed": "sim", "symbol": "BTC-USD", "start": D1, "end": D1 + 3600 * 10**9}
            page = await c.call_tool("get_trades", hour)
            bad = await c.call_tool("get_trades", {"feed": "sim", "symbol": "ETH-USD",
                                                   "start": D1, "end": D1 + 10**9},
                                    raise_on_error=False)  # fmt: skip
            return names, page.structured_content, bad.content[0].text

    names, page, refused = asyncio.run(asyncio.wait_for(run(), 120))
    assert "get_trades" in names and len(names) == 11
    assert page["count"] == 6 and page["records"][0]["price"] == "60000.05"
    assert "403 not_entitled" in refused
    with connect(pg_url) as conn:
        log = audit.log(conn, action="mcp.get_trades", limit=5)
    assert {e.details["outcome"] for e in log} == {"ok", "refused:not_entitled"}
    assert {e.actor for e in log} == {"client:alice"}
