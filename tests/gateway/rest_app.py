"""A seeded gateway for the REST tests: Postgres clients + keys, a Parquet archive of
two days of `sim` data, and a TestClient over `create_app`. Imported by test modules
(fixture `gateway`), not a conftest, so it stays out of the WebSocket tests' way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ssmd.gateway.app import create_app
from ssmd.gateway.settings import GatewaySettings
from ssmd.model.fixed import to_fixed
from ssmd.model.records import Book, Gap, Quote, Trade
from ssmd.model.time import parse_time

from .rest_helpers import definition, issue, seed_clients, write_archive

ENV = "dev"
D1 = parse_time("2026-03-01T00:00:00Z")
D2 = parse_time("2026-03-02T00:00:00Z")
D3 = parse_time("2026-03-03T00:00:00Z")
STEP = 600 * 10**9  # a trade and a quote per symbol every 10 minutes

CLIENTS: list[dict[str, Any]] = [
    {"id": "ops", "type": "non-display", "scopes": ["admin", "read"],
     "entitlements": [{"feeds": ["*"]}]},
    {"id": "alice", "type": "display", "scopes": ["read", "stream"],
     "entitlements": [{"feeds": ["sim"], "symbols": ["BTC-*"],
                       "types": ["trade", "quote", "book"],
                       "start": "2026-03-01", "end": "2026-03-01"}]},
    {"id": "streamer", "type": "display", "scopes": ["stream"],
     "entitlements": [{"feeds": ["*"]}]},
    {"id": "elsewhere", "type": "non-display", "scopes": ["read"],
     "entitlements": [{"feeds": ["other"]}]},
]  # fmt: skip


def records() -> list[Any]:
    out: list[Any] = []
    for sym, base in (("BTC-USD", 60000), ("ETH-USD", 3000)):
        for i, t in enumerate(range(D1, D3, STEP)):
            px = to_fixed(f"{base + i % 7}.{i % 10}5")
            out.append(
                Trade(
                    feed="sim",
                    venue="sim",
                    symbol=sym,
                    ts_event=t,
                    ts_recv=t + 1000,
                    seq=i,
                    price=px,
                    size=to_fixed("0.125"),
                    side="buy" if i % 2 else "sell",
                    trade_id=f"{sym}-{i}",
                )
            )
            out.append(
                Quote(
                    feed="sim",
                    venue="sim",
                    symbol=sym,
                    ts_event=t + 5,
                    ts_recv=t + 2000,
                    bid_px=px - 10**9,
                    bid_sz=to_fixed("1.5"),
                    ask_px=px + 10**9,
                    ask_sz=to_fixed("2"),
                )
            )
        for h in range(48):
            t = D1 + h * 3600 * 10**9
            out.append(
                Book(
                    feed="sim",
                    venue="sim",
                    symbol=sym,
                    ts_event=t + 7,
                    ts_recv=t + 10,
                    snapshot=True,
                    bids=[(to_fixed(base - 1), to_fixed(1))],
                    asks=[(to_fixed(base + 1), to_fixed(2))],
                )
            )
            out.append(
                Book(
                    feed="sim",
                    venue="sim",
                    symbol=sym,
                    ts_event=t + 60 * 10**9,
                    ts_recv=t + 60 * 10**9,
                    snapshot=False,
                    bids=[(to_fixed(base - 2), to_fixed("0.5"))],
                    asks=[],
                )
            )
        out.append(
            Gap(
                feed="sim",
                venue="sim",
                symbol=sym,
                ts_recv=D2 + 7200 * 10**9 + 5,
                reason="disconnect",
                since_ns=D2,
                until_ns=D2 + 1,
                detail="test",
            )
        )
    return out  # fmt: skip


@dataclass
class Gw:
    client: TestClient
    pg_url: str
    tokens: dict[str, str]
    key_ids: dict[str, str]
    app: Any

    def get(self, path: str, who: str | None = None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(path, params=params, headers=headers)

    @property
    def gw(self) -> Any:
        return self.app.state.gw


def make(pg_url: str, root: Path, **overrides: Any) -> Iterator[Gw]:
    defn = definition(root)
    seed_clients(pg_url, ENV, CLIENTS)
    write_archive(defn, root, records())
    tokens, ids = {}, {}
    for cid in ("ops", "alice", "streamer", "elsewhere"):
        k = issue(pg_url, ENV, cid)
        tokens[cid], ids[cid] = k.token, k.key.key_id
    settings = GatewaySettings(defn, pg_url, data_dir=root, rate=0, auth_ttl_s=0.3,
                               usage_interval_s=3600, **overrides)  # fmt: skip
    app = create_app(settings)
    with TestClient(app) as client:
        yield Gw(client, pg_url, tokens, ids, app)


@pytest.fixture
def gateway(pg_url: str, tmp_path: Path) -> Iterator[Gw]:
    yield from make(pg_url, tmp_path)
