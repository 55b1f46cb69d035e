"""schemathesis against /openapi.json of a running gateway (real HTTP, real Postgres,
a Parquet archive): zero 5xx, and responses conform to the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ssmd.gateway.app import create_app
from ssmd.gateway.settings import GatewaySettings

from .rest_app import CLIENTS, D1, ENV, records
from .rest_helpers import definition, issue, seed_clients, serve_in_thread, write_archive


@pytest.fixture(scope="module")
def running(_fresh_databases, tmp_path_factory) -> Iterator[tuple[str, str]]:
    name, pg_url = _fresh_databases.take()
    root = tmp_path_factory.mktemp("openapi")
    defn = definition(root)
    seed_clients(pg_url, ENV, CLIENTS)
    write_archive(defn, root, records())
    token = issue(pg_url, ENV, "ops").token
    app = create_app(GatewaySettings(defn, pg_url, data_dir=Path(root), rate=0))
    try:
        with serve_in_thread(app) as base:
            yield base, token
    finally:
        _fresh_databases.give_back(name)


def test_no_5xx_and_conformance(running: tuple[str, str]) -> None:
    """Every operation, generated cases (valid and invalid), our admin key."""
    base, token = running
    api = schemathesis.openapi.from_url(base + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]  # fmt: skip
    statuses: dict[str, set[int]] = {}
    operations = [op.ok() for op in api.get_all_operations()]
    assert len(operations) >= 11
    for op in operations:
        if op.method.upper() == "POST":
            continue  # revoke: exercised in the matrix (it would revoke our key here)

        @given(case=op.as_strategy(), real=st.booleans())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        def run(case, real: bool) -> None:
            if real and isinstance(case.query, dict) and "feed" in case.query:
                case.query["feed"] = "sim"  # reach the queries, not just the 404
                real_values = {"symbol": "BTC-USD", "from": str(D1), "to": str(D1 + 7200 * 10**9),
                               "at": str(D1 + 3600 * 10**9)}  # fmt: skip
                for name, value in real_values.items():
                    if name in case.query:
                        case.query[name] = value
            resp = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"})
            statuses.setdefault(case.operation.path, set()).add(resp.status_code)
            case.validate_response(resp, checks=checks)

        run()
    for path in ("/v1/trades", "/v1/quotes", "/v1/bars", "/v1/book-at", "/v1/feeds"):
        assert 200 in statuses[path], (path, statuses[path])
