"""The REST gateway of tests/gateway (seeded Postgres keys, a Parquet archive written
through the history writer) reused for the client, plus one with a rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from gateway.rest_app import CLIENTS, ENV, records
from gateway.rest_helpers import definition, issue, seed_clients, write_archive
from ssmd.client import Client
from ssmd.gateway.app import create_app
from ssmd.gateway.settings import GatewaySettings


def client_for(http: TestClient, token: str | None, **kw: Any) -> Client:
    """A Client whose HTTP goes in-process to the app (TestClient is an httpx.Client)."""
    return Client("http://testserver", token, http=http, **kw)


def rate_limited(pg_url: str, root: Path, rate: float, burst: float) -> Iterator[tuple[Any, str]]:
    """A gateway with a real token bucket: (TestClient, ops token)."""
    defn = definition(root)
    seed_clients(pg_url, ENV, CLIENTS)
    write_archive(defn, root, records())
    token = issue(pg_url, ENV, "ops").token
    settings = GatewaySettings(defn, pg_url, data_dir=root, rate=rate, burst=burst,
                               auth_ttl_s=0.3, usage_interval_s=3600)  # fmt: skip
    with TestClient(create_app(settings)) as http:
        yield http, token
