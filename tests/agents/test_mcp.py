"""The MCP server in-process through fastmcp's Client: every tool with values, the
gateway's entitlement policy, pagination bounds, the audit trail and feedback dedup."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError
from tests.gateway.rest_app import CLIENTS, D1, ENV, records
from tests.gateway.rest_helpers import definition, issue, seed_clients, write_archive

from ssmd.agents.mcp import TOOLS, build_server
from ssmd.agents.service import Service, Settings
from ssmd.meta import audit, connect

H = 3600 * 10**9


class World:
    def __init__(self, pg_url: str, root: Path) -> None:
        self.defn = definition(root)
        seed_clients(pg_url, ENV, CLIENTS)
        write_archive(self.defn, root, records())
        self.tokens = {c: issue(pg_url, ENV, c).token for c in ("ops", "alice", "elsewhere")}
        self.service = Service(Settings(self.defn, pg_url, data_dir=root))
        self.pg_url = pg_url

    def call(self, who: str | None, tool: str, **args: Any) -> Any:
        token = self.tokens[who] if who else None
        server = build_server(self.service, api_key=token, auth_ttl_s=0)

        async def run() -> Any:
            async with Client(server) as c:
                return (await c.call_tool(tool, args)).structured_content

        return asyncio.run(run())

    def refused(self, who: str | None, tool: str, **args: Any) -> str:
        with pytest.raises(ToolError) as exc:
            self.call(who, tool, **args)
        return str(exc.value)


@pytest.fixture
def world(pg_url: str, tmp_path: Path) -> Iterator[World]:
    w = World(pg_url, tmp_path)
    yield w
    w.service.close()


def test_tool_list_matches_and_descriptions(world: World) -> None:
    async def names() -> list[Any]:
        async with Client(build_server(world.service)) as c:
            return await c.list_tools()

    tools = asyncio.run(names())
    assert sorted(t.name for t in tools) == sorted(TOOLS)
    assert all(t.description and len(t.description) > 60 for t in tools)
    trades = next(t for t in tools if t.name == "get_trades")
    assert "cursor" in trades.input_schema["properties"]


def test_list_feeds_and_schema(world: World) -> None:
    feeds = world.call("ops", "list_feeds")
    assert [f["name"] for f in feeds["feeds"]] == ["sim"] and feeds["env"] == ENV
    assert world.call("elsewhere", "list_feeds")["feeds"] == []
    schema = world.call("alice", "describe_schema", record_type="trade")
    fields = {f["name"]: f["type"] for f in schema["types"][0]["fields"]}
    assert fields["price"] == "decimal string" and fields["ts_recv"] == "ns since epoch (UTC)"


def test_trades_values_and_pagination(world: World) -> None:
    args = {"feed": "sim", "symbol": "BTC-USD", "start": D1, "end": D1 + 2 * H}
    page = world.call("ops", "get_trades", **args, limit=5)
    assert page["count"] == 5 and page["next_cursor"]
    first = page["records"][0]
    assert first["price"] == "60000.05" and first["size"] == "0.125" and first["ts_event"] == D1
    seen = [r["trade_id"] for r in page["records"]]
    while page["next_cursor"]:
        page = world.call("ops", "get_trades", **args, limit=5, cursor=page["next_cursor"])
        seen += [r["trade_id"] for r in page["records"]]
    assert seen == [f"BTC-USD-{i}" for i in range(12)]
    assert "between 1 and 1000" in world.refused("ops", "get_trades", **args, limit=1001)
    assert "between 1 and 1000" in world.refused("ops", "get_trades", **args, limit=0)
    assert "cursor" in world.refused("ops", "get_trades", **args, cursor="garbage!")
    quotes = world.call("ops", "get_quotes", **args, limit=2)
    assert quotes["records"][0]["bid_px"] == "59999.05"
    assert quotes["records"][0]["ask_px"] == "60001.05"


def test_entitlements_refuse_and_clip(world: World) -> None:
    eth = {"feed": "sim", "symbol": "ETH-USD", "start": D1, "end": D1 + H}
    msg = world.refused("alice", "get_trades", **eth)
    assert "403 not_entitled" in msg and "outside the globs" in msg
    # alice may see 2026-03-01 only: a range into 03-02 is clipped, never leaked
    btc = {"feed": "sim", "symbol": "BTC-USD", "start": D1 + 23 * H, "end": D1 + 25 * H}
    page = world.call("alice", "get_trades", **btc)
    assert page["clipped"] and page["count"] == 6
    assert all(r["ts_event"] < D1 + 24 * H for r in page["records"])
    assert "401 missing_api_key" in world.refused(None, "list_feeds")
    assert "missing_scope" in world.refused("alice", "report_issue", kind="bug", summary="x")
    with connect(world.pg_url) as conn:
        log = audit.log(conn, action="mcp.get_trades", limit=10)
    outcomes = {e.details["outcome"] for e in log}
    assert {"ok", "refused:not_entitled"} <= outcomes
    assert all(e.actor.startswith("client:") for e in log)


def test_book_bars_catalog_instruments(world: World) -> None:
    book = world.call("ops", "book_at", feed="sim", symbol="BTC-USD", at=D1 + 120 * 10**9)
    assert book["known"] and book["bids"][0] == ["59999", "1"] and book["asks"] == [["60001", "2"]]
    assert book["deltas"] == 1 and ["59998", "0.5"] in book["bids"]
    bars = world.call("ops", "get_bars", feed="sim", symbol="BTC-USD", start=D1, end=D1 + H,
                      interval="30m")  # fmt: skip
    assert [b["trades"] for b in bars["bars"]] == [3, 3]
    assert bars["bars"][0]["open"] == "60000.05" and bars["bars"][0]["volume"] == "0.375"
    cat = world.call("ops", "data_catalog", feed="sim")
    assert [d["date"] for d in cat["days"]] == ["2026-03-02", "2026-03-01"]
    assert cat["days"][0]["gaps"] == 2
    one = world.call("ops", "data_catalog", limit=1)
    assert one["count"] == 1 and one["next_offset"] == 1 and one["total"] == 2
    alice = world.call("alice", "data_catalog")
    assert all(d["symbols"] == ["BTC-USD"] for d in alice["days"])
    inst = world.call("ops", "search_instruments", query="BTC-*")
    assert inst["total"] == inst["count"] and inst["next_offset"] is None


def test_quality_report_dedup(world: World) -> None:
    q = world.call("ops", "data_quality", feed="sim", days=7)
    assert [d["gaps"] for d in q["days"]] == [2, 0]
    assert {g["symbol"] for g in q["recent_gaps"]} == {"BTC-USD", "ETH-USD"}
    assert q["recent_gaps"][0]["reason"] == "disconnect" and q["open_issues"] == []
    report = {
        "kind": "data_quality",
        "subtype": "bad_tick",
        "summary": "price  spike",
        "feed": "sim",
        "symbol": "btc-usd",
        "start": D1 + 60,
        "values": {"price": 1.5},
    }
    first = world.call("ops", "report_issue", **report)
    again = world.call("ops", "report_issue", **{**report, "start": D1 + 90})
    assert first["new"] and not again["new"] and again["id"] == first["id"]
    assert again["count"] == 2 and first["fingerprint"] == again["fingerprint"]
    issues = world.call("ops", "data_quality", feed="sim")["open_issues"]
    assert issues[0]["summary"] == "price spike" and issues[0]["count"] == 2
    assert issues[0]["symbol"] == "BTC-USD"
    assert "subtype" in world.refused("ops", "report_issue", kind="data_quality", summary="x")
    assert "evidence" in world.refused("ops", "report_issue", kind="data_quality",
                                       subtype="gap", summary="x")  # fmt: skip
    # the refusal names the tool's own argument (start), not the REST field (from)
    assert "invalid arguments: start: a data_quality report needs evidence" in world.refused(
        "ops", "report_issue", kind="data_quality", subtype="gap", summary="x", feed="sim",
        symbol="BTC-USD")  # fmt: skip
    assert "end: the evidence window ends before it starts" in world.refused(
        "ops", "report_issue", kind="bug", summary="x", start=D1 + 10, end=D1)  # fmt: skip
    assert "no feed" in world.refused("ops", "report_issue", kind="bug", summary="x", feed="zz")


def test_system_status_without_nats(world: World) -> None:
    st = world.call("ops", "system_status")
    assert st["env"] == ENV and st["components"] == [] and "nats_error" in st
