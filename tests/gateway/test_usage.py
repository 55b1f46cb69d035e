# ruff: noqa: F811  (the `gateway` fixture is imported, then used as a parameter)
"""Usage metering: counters per client/day/kind/class, flushed in batches, reported by
`ssmd usage report`; a failed flush keeps its counters."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.meta.helpers import cli

from ssmd.gateway.metering import Meter, month_range
from ssmd.meta import connect

from .rest_app import D1, D2, Gw, gateway  # noqa: F401 (fixture)

DAY1 = {"feed": "sim", "symbol": "BTC-USD", "from": str(D1), "to": str(D2)}


def rows(pg_url: str) -> list[tuple]:
    with connect(pg_url) as conn:
        return conn.execute(
            "SELECT client_id, kind, class, requests, messages, bytes FROM usage"
            " ORDER BY client_id, kind"
        ).fetchall()


def test_rest_usage_rows_after_flush(gateway: Gw) -> None:
    sizes = []
    for _ in range(3):
        r = gateway.get("/v1/trades", "alice", **DAY1, limit=10)
        sizes.append(len(r.content))
    csv = gateway.get("/v1/trades", "ops", **DAY1, limit=4, format="csv")
    assert rows(gateway.pg_url) == []  # batched: nothing written yet
    assert asyncio.run(gateway.gw.meter.flush()) == 2
    got = rows(gateway.pg_url)
    assert ("alice", "rest:trades", "display", 3, 30, sum(sizes)) in got
    assert ("ops", "export", "non-display", 1, 4, len(csv.content)) in got
    gateway.get("/v1/trades", "alice", **DAY1, limit=10)
    asyncio.run(gateway.gw.meter.flush())
    assert ("alice", "rest:trades", "display", 4, 40, sum(sizes) + sizes[0]) in rows(
        gateway.pg_url
    )  # additive upserts
    month = gateway.get("/v1/admin/usage", "ops", month=month_now()).json()
    assert any(r["client"] == "alice" and r["messages"] == 40 for r in month["rows"])


def month_now() -> str:
    from ssmd.gateway.metering import day_of
    from ssmd.model.time import now_ns

    return day_of(now_ns()).strftime("%Y-%m")


def test_cli_usage_report(gateway: Gw) -> None:
    gateway.get("/v1/trades", "alice", **DAY1, limit=10)
    gateway.get("/v1/feeds", "ops")
    asyncio.run(gateway.gw.meter.flush())
    out = cli("usage", "report", "--month", month_now(), "--json", "--pg-url", gateway.pg_url)
    assert out.code == 0, out
    doc = json.loads(out.stdout)
    clients = {c["client"]: c for c in doc["clients"]}
    assert clients["alice"]["messages"] == 10 and clients["alice"]["requests"] == 1
    assert {r["class"] for r in doc["rows"]} == {"display", "non-display"}
    table = cli("usage", "report", "--month", month_now(), "--pg-url", gateway.pg_url)
    assert table.code == 0 and "alice" in table.stdout
    bad = cli("usage", "report", "--month", "2026-13", "--pg-url", gateway.pg_url)
    assert bad.code == 1 and "YYYY-MM" in bad.stderr
    empty = cli("usage", "report", "--month", "2001-01", "--json", "--pg-url", gateway.pg_url)
    assert json.loads(empty.stdout)["rows"] == []


def test_failed_flush_keeps_counters(gateway: Gw) -> None:
    class Broken:
        def run_sync(self, fn):
            raise ConnectionError("postgres down")

    from ssmd.gateway.auth import Principal

    p = Principal("k", "c1", "dev", ("stream",), "display", client=None)  # type: ignore[arg-type]
    meter = Meter(Broken(), "dev")  # type: ignore[arg-type]
    meter.record(p, "stream", 5, 500)
    with pytest.raises(ConnectionError):
        meter.flush_sync()
    meter.record(p, "stream", 1, 100)
    ((_, counts),) = meter.pending().items()
    assert counts == (0, 6, 600)
    meter.pool = gateway.gw.pool
    assert meter.flush_sync() == 1
    assert ("c1", "stream", "display", 0, 6, 600) in rows(gateway.pg_url)
    assert month_range("2026-12")[1].isoformat() == "2027-01-01"
