"""A small, realistic ssmd for the TUI to look at: real Postgres and NATS, a data dir.

Postgres gets an applied definition (two feeds), two clients with keys, two open
feedback reports and a few catalog rows; NATS gets heartbeats in KV ssmd_dev_status
(two connector shards, the shipper, the gateway) and a market-data stream; the data dir
gets a state file, logs and journal bytes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.js.api import StreamConfig

from ssmd.agents import feedback
from ssmd.bus.connection import connect as connect_bus
from ssmd.meta import clients, connect, envs, keys
from ssmd.model.time import now_ns
from ssmd.ops.status import StatusPublisher
from ssmd.stack.state import StackState, write_state
from ssmd.tui.app import SsmdTui
from ssmd.tui.snapshot import Sources

ENV = "dev"
ACTOR = "tester"
SPEC = {
    "apiVersion": "ssmd/v1",
    "kind": "Environment",
    "metadata": {"name": ENV},
    "feeds": {
        "sim": {"venue": "sim", "instruments": ["BTC-USD", "ETH-USD", "SOL-USD"], "shards": 2},
        "kraken": {"venue": "kraken-v2", "instruments": ["BTC/USD", "ETH/USD"], "shards": 1},
    },
}
CLIENTS = [
    {"id": "dev-admin", "scopes": ["admin", "read", "stream"], "entitlements": [{"feeds": ["*"]}]},
    {"id": "alice", "type": "display", "scopes": ["read", "stream"],
     "entitlements": [{"feeds": ["sim"]}]},
]  # fmt: skip
DEAD_PID = 4_194_000
"""Above every pid this machine hands out in practice: a process shown DOWN."""


@dataclass
class World:
    pg_url: str
    nats_url: str
    data_dir: Path
    key_ids: dict[str, str] = field(default_factory=dict)
    """client id → the id of its key."""

    def sources(self, **changes: str) -> Sources:
        base = {"env": ENV, "pg_url": self.pg_url, "nats_url": self.nats_url,
                "data_dir": str(self.data_dir)}  # fmt: skip
        return Sources(**(base | changes))

    def app(self, interval: float = 0.2, **changes: str) -> SsmdTui:
        return SsmdTui(self.sources(**changes), actor=ACTOR, interval=interval)


def connector_doc(rate: float, *, shard: int, gap_symbol: str = "ETH-USD") -> dict[str, Any]:
    """What a connector shard's heartbeat carries (ssmd.capture.connector.status)."""
    return {
        "frames_per_s": rate * 1.2, "records_per_s": rate, "venue": "sim",
        "connections": [{"index": 0, "state": "live", "symbols": 3, "frames_in": 91_000,
                         "live": True, "last_error": ""}],
        "pending": 3 + shard, "last_gap": {"symbol": gap_symbol, "reason": "reconnect",
                                           "ts": now_ns() - 95 * 10**9, "detail": "venue closed"},
        "clock": {"ok": True, "alarms": []},
    }  # fmt: skip


async def put_heartbeats(nats_url: str, sim_rate: float = 812.5) -> None:
    """One heartbeat per component, as the running services would put them."""
    docs = [
        ("connector", "sim", 0, connector_doc(sim_rate, shard=0)),
        ("connector", "sim", 1, connector_doc(sim_rate / 2, shard=1, gap_symbol="SOL-USD")),
        ("connector", "kraken", 0, connector_doc(240.0, shard=0, gap_symbol="BTC-USD")),
        ("shipper", "", "", {"state": "ok", "pending": 2, "pending_bytes": 3_145_728,
                             "last_error": ""}),
        ("gateway", "", "", {"uptime_s": 5400.0, "draining": False}),
    ]  # fmt: skip
    nc = await connect_bus(nats_url)
    try:
        for component, feed, shard, doc in docs:
            await StatusPublisher(nc, ENV, component, feed=feed, shard=shard, interval=5.0,
                                  collect=lambda d=doc: d).publish_once()  # fmt: skip
    finally:
        await nc.close()


async def _stream(nats_url: str) -> None:
    nc = await connect_bus(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="MD_DEV_SIM", subjects=["md.dev.sim.>"]))
        for i in range(50):
            await js.publish("md.dev.sim.trade.BTC-USD", b"x" * 200, headers={"i": str(i)})
    finally:
        await nc.close()


def _postgres(pg_url: str) -> dict[str, str]:
    with connect(pg_url) as conn:
        envs.add_version(conn, ENV, SPEC, ACTOR, "initial")
        clients.sync_clients(conn, ENV, CLIENTS, ACTOR)
        ids = {c["id"]: keys.create(conn, ENV, c["id"], ACTOR).key.key_id for c in CLIENTS}
        t = now_ns() - 600 * 10**9
        reports = [
            feedback.Report(kind="data_quality", subtype="gap", summary="BTC-USD trades missing",
                            feed="sim", symbol="BTC-USD", from_ns=t, to_ns=t + 60 * 10**9),
            feedback.Report(kind="feature_request", summary="add Coinbase L3 feed"),
        ]  # fmt: skip
        for r in reports:
            feedback.submit(conn, ENV, r, "client:alice")
        conn.execute(
            "INSERT INTO segment_catalog (key, env, feed, shard, conn, start_ns, size, verified,"
            " shipped_ns, verified_ns, updated_ns) VALUES"
            " ('raw/a', %(env)s, 'sim', 0, 0, 1, 7340032, true, %(t)s, %(t)s, %(t)s),"
            " ('raw/b', %(env)s, 'sim', 0, 0, 2, 1048576, false, NULL, NULL, %(t)s)",
            {"env": ENV, "t": t},
        )
    return ids


def _data_dir(root: Path, pg_url: str, nats_url: str) -> None:
    (root / "raw" / "dev").mkdir(parents=True)
    (root / "raw" / "dev" / "seg.jsonl.zst").write_bytes(b"\0" * 5_000_000)
    logs = root / "logs"
    logs.mkdir()
    (logs / "connector-sim-0.log").write_text(
        "".join(f'{{"level":"info","msg":"segment closed","n":{i}}}\n' for i in range(40))
    )
    (logs / "shipper.log").write_text('{"level":"info","msg":"segment shipped"}\n')
    pids = {"nats": os.getpid(), "postgres": os.getpid(), "connector-sim-0": os.getpid(),
            "shipper": DEAD_PID}  # fmt: skip
    write_state(StackState(env=ENV, data_dir=str(root), nats_url=nats_url, pg_url=pg_url,
                           pids=pids))  # fmt: skip


@pytest.fixture
def world(pg_url: str, nats_url: str, tmp_path: Path) -> Iterator[World]:
    ids = _postgres(pg_url)
    asyncio.run(put_heartbeats(nats_url))
    asyncio.run(_stream(nats_url))
    _data_dir(tmp_path, pg_url, nats_url)
    yield World(pg_url=pg_url, nats_url=nats_url, data_dir=tmp_path, key_ids=ids)
