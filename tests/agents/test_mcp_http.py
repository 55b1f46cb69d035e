"""End to end over streamable HTTP: `ssmd mcp --transport http` as a subprocess; each
request authenticates with its own `Authorization` header (several agents, one server)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from tests.gateway.rest_app import CLIENTS, D1, ENV, records
from tests.gateway.rest_helpers import definition, issue, seed_clients, write_archive

from ssmd.meta import audit, connect
from ssmd.stack.ports import free_port

HOUR = 3600 * 10**9


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"ssmd mcp exited with {proc.returncode}"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"ssmd mcp did not listen on {url} within {timeout} s")


def test_http_end_to_end(pg_url: str, tmp_path: Path) -> None:
    defn = definition(tmp_path)
    seed_clients(pg_url, ENV, CLIENTS)
    write_archive(defn, tmp_path, records())
    env_file = Path(__file__).resolve().parents[2] / "environments" / "dev.yaml"
    alice, ops = issue(pg_url, ENV, "alice").token, issue(pg_url, ENV, "ops").token
    port = free_port()
    ssmd = str(Path(sys.executable).parent / "ssmd")
    env = {k: v for k, v in os.environ.items() if k != "SSMD_API_KEY"}
    proc = subprocess.Popen(
        [ssmd, "mcp", "--transport", "http", "--port", str(port), "--env", str(env_file),
         "--pg-url", pg_url, "--data-dir", str(tmp_path)],
        env={**env, "SSMD_NATS_URL": ""}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    hour = {"feed": "sim", "symbol": "ETH-USD", "start": D1, "end": D1 + HOUR}

    async def call(token: str | None) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with Client(StreamableHttpTransport(url, headers=headers)) as c:
            tools = await c.list_tools()
            res = await c.call_tool("get_trades", hour, raise_on_error=False)
            return len(tools), (res.content[0].text if res.is_error else res.structured_content)

    try:
        _wait_http(url, proc)

        async def run() -> list[tuple[int, object]]:
            # Concurrent sessions with different keys on one server: no key leaks across.
            return list(await asyncio.gather(call(ops), call(alice), call(None)))

        (n_ops, as_ops), (_, as_alice), (_, anonymous) = asyncio.run(asyncio.wait_for(run(), 120))
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert n_ops == 11
    assert isinstance(as_ops, dict) and as_ops["count"] == 6
    assert [r["trade_id"] for r in as_ops["records"]] == [f"ETH-USD-{i}" for i in range(6)]
    assert isinstance(as_alice, str) and as_alice.startswith("403 not_entitled")
    assert isinstance(anonymous, str) and anonymous.startswith("401 ")
    assert proc.returncode is not None, stderr.decode()[-2000:]
    with connect(pg_url) as conn:
        log = audit.log(conn, action="mcp.get_trades", limit=10)
    outcomes = sorted((e.actor, e.details["outcome"]) for e in log)
    assert outcomes == [
        ("anonymous", "refused:missing_api_key"),
        ("client:alice", "refused:not_entitled"),
        ("client:ops", "ok"),
    ]
