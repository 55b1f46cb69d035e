# ruff: noqa: F811  (the `gateway` fixture is imported, then used as a parameter)
"""REST endpoints: values, formats, pagination, clipping, export audit."""

from __future__ import annotations

import csv
import io

import msgspec
import pyarrow.parquet as pq

from ssmd.meta import audit, connect
from ssmd.model.fixed import to_fixed

from .rest_app import D1, D2, D3, Gw, gateway  # noqa: F401 (fixture)

DAY1 = {"feed": "sim", "symbol": "BTC-USD", "from": str(D1), "to": str(D2)}


def test_health_and_docs(gateway: Gw) -> None:
    r = gateway.get("/v1/health")
    assert r.status_code == 200 and r.json()["postgres"] == "ok"
    assert gateway.client.get("/docs").status_code == 200
    assert "swagger-ui-bundle.js" in gateway.client.get("/docs").text
    assert gateway.client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    spec = gateway.client.get("/openapi.json").json()
    assert {"/v1/trades", "/v1/quotes", "/v1/book-at", "/v1/bars", "/v1/catalog",
            "/v1/feeds", "/v1/instruments", "/v1/health"} <= set(spec["paths"])  # fmt: skip
    assert "ssmd_gateway_requests" in gateway.client.get("/metrics").text


def test_trades_json_values(gateway: Gw) -> None:
    r = gateway.get("/v1/trades", "ops", **DAY1, limit=100000)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["count"] == 144 and not doc["clipped"] and doc["next_cursor"] is None
    first = doc["records"][0]
    assert first["type"] == "trade" and first["price"] == "60000.05" and first["size"] == "0.125"
    assert first["ts_event"] == D1
    iso = gateway.get("/v1/trades", "ops", **DAY1, limit=1, timestamps="iso").json()
    assert iso["records"][0]["ts_event"] == "2026-03-01T00:00:00.000000000Z"
    assert (
        gateway.get("/v1/trades", "ops", **{**DAY1, "from": "2026-03-01T00:00:00Z"}).json()["count"]
        == 144
    )


def test_formats_parse_back_to_the_same_values(gateway: Gw) -> None:
    ref = gateway.get("/v1/trades", "ops", **DAY1, limit=50).json()["records"]
    lines = gateway.get("/v1/trades", "ops", **DAY1, limit=50, format="jsonl")
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [msgspec.json.decode(x) for x in lines.text.splitlines()] == ref
    text = gateway.client.get(
        "/v1/trades", params={**DAY1, "limit": 50},
        headers={"Authorization": f"Bearer {gateway.tokens['ops']}", "Accept": "text/csv"},
    )  # fmt: skip
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert len(rows) == 50
    for row, want in zip(rows, ref, strict=True):
        assert {k: str(v) for k, v in want.items()} == row
    pq_resp = gateway.get("/v1/trades", "ops", **DAY1, limit=50, format="parquet")
    table = pq.read_table(io.BytesIO(pq_resp.content))
    got = table.to_pylist()
    assert len(got) == 50
    for row, want in zip(got, ref, strict=True):
        assert row["price"] == to_fixed(want["price"]) and row["size"] == to_fixed(want["size"])
        assert row["ts_event"] == want["ts_event"] and row["trade_id"] == want["trade_id"]


def test_exports_are_audited(gateway: Gw) -> None:
    gateway.get("/v1/trades", "ops", **DAY1, limit=5, format="csv")
    with connect(gateway.pg_url) as conn:
        entries = audit.log(conn, action="data.export")
    assert entries and entries[0].actor == "client:ops"
    assert entries[0].details["rows"] == 5 and entries[0].details["format"] == "csv"
    assert entries[0].target == "data/dev/sim/trade/BTC-USD"


def test_cursor_pagination_is_complete_and_stable(gateway: Gw) -> None:
    full = gateway.get("/v1/quotes", "ops", **DAY1, limit=100000).json()["records"]
    got, cursor, pages = [], None, 0
    while True:
        params = {**DAY1, "limit": 7} | ({"cursor": cursor} if cursor else {})
        r = gateway.get("/v1/quotes", "ops", **params)
        assert r.status_code == 200, r.text
        doc = r.json()
        got += doc["records"]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
        assert r.headers["X-Next-Cursor"] == cursor
    assert got == full and pages == (len(full) + 6) // 7
    bad = gateway.get("/v1/quotes", "ops", **DAY1, cursor="zzz")
    assert bad.status_code == 400 and "cursor" in bad.json()["message"]


def test_book_at_bars_records_catalog_feeds_instruments(gateway: Gw) -> None:
    at = D1 + 3600 * 10**9 + 120 * 10**9
    book = gateway.get("/v1/book-at", "ops", feed="sim", symbol="BTC-USD", at=str(at)).json()
    assert book["known"] and book["bids"][0] == ["59999", "1"] and book["deltas"] == 1
    bars = gateway.get("/v1/bars", "ops", **DAY1, interval="1h").json()
    assert bars["count"] == 24 and bars["bars"][0]["trades"] == 6
    assert bars["bars"][0]["open"] == "60000.05"
    gaps = gateway.get("/v1/records/gap", "ops", feed="sim", symbol="BTC-USD", by="ts_recv",
                       **{"from": str(D2), "to": str(D3)}).json()  # fmt: skip
    assert gaps["count"] == 1 and gaps["records"][0]["reason"] == "disconnect"
    cat = gateway.get("/v1/catalog", "ops").json()
    assert [d["date"] for d in cat["days"]] == ["2026-03-01", "2026-03-02"]
    assert cat["days"][0]["types"]["trade"]["rows"] == 288
    feeds = gateway.get("/v1/feeds", "ops").json()
    assert [f["name"] for f in feeds["feeds"]] == ["sim"]
    assert gateway.get("/v1/instruments", "ops").json()["count"] == 0  # empty secmaster


def test_errors_name_the_problem(gateway: Gw) -> None:
    r = gateway.get("/v1/trades", "ops", **{**DAY1, "feed": "nope"})
    assert r.status_code == 404 and "no feed 'nope'" in r.json()["message"]
    r = gateway.get("/v1/trades", "ops", **{**DAY1, "from": "yesterday"})
    assert r.status_code == 400 and r.json()["message"].startswith("from:")
    r = gateway.get("/v1/trades", "ops", **{**DAY1, "to": str(D1)})
    assert r.status_code == 400 and "empty range" in r.json()["message"]
    r = gateway.get("/v1/trades", "ops", feed="sim")
    assert r.status_code == 400 and "symbol" in r.json()["message"]
    r = gateway.get("/v1/trades", "ops", **DAY1, format="xml")
    assert r.status_code == 400


def test_a_nul_byte_in_a_parameter_is_a_bad_request(gateway: Gw) -> None:
    """Found by schemathesis: Postgres refuses NUL in text; that is the caller's 400."""
    for path, param in (("/v1/admin/keys", "client"), ("/v1/instruments", "venue")):
        r = gateway.get(path, "ops", **{param: "a\x00b"})
        assert r.status_code == 400, (path, r.text)
        body = r.json()
        assert body["error"] == "bad_request" and "NUL" in body["message"]
