# ruff: noqa: F811  (the `gateway` fixture is imported, then used as a parameter)
"""The REST authorization matrix: every endpoint × {no key, bad key, revoked key, expired
key, wrong scope, no entitlement for the feed, symbol outside the globs, record type not
entitled, date outside the window} → the right status and message; and no response ever
holds a record the client is not entitled to."""

from __future__ import annotations

import time
from typing import Any

from ssmd.meta import connect, instruments
from ssmd.model.fixed import to_fixed
from ssmd.model.instrument import Instrument

from .rest_app import D1, D2, Gw, gateway  # noqa: F401 (fixture)
from .rest_helpers import expire_now, revoke

H = 3600 * 10**9


def q(symbol: str, t0: int, t1: int) -> dict[str, str]:
    return {"feed": "sim", "symbol": symbol, "from": str(t0), "to": str(t1)}


def data_endpoints(symbol: str = "BTC-USD", t0: int = D1, t1: int = D1 + 6 * H) -> dict:
    """name -> (path, params) of every history endpoint for one symbol and range."""
    return {
        "trades": ("/v1/trades", q(symbol, t0, t1)),
        "quotes": ("/v1/quotes", q(symbol, t0, t1)),
        "records/trade": ("/v1/records/trade", q(symbol, t0, t1)),
        "records/book": ("/v1/records/book", q(symbol, t0, t1)),
        "book-at": ("/v1/book-at", {"feed": "sim", "symbol": symbol, "at": str(t0 + 2 * H)}),
        "bars": ("/v1/bars", {**q(symbol, t0, t1), "interval": "1h"}),
    }


LISTINGS = {"feeds": ("/v1/feeds", {}), "instruments": ("/v1/instruments", {}),
            "catalog": ("/v1/catalog", {})}  # fmt: skip
ADMIN = {"admin/keys": ("/v1/admin/keys", {}),
         "admin/usage": ("/v1/admin/usage", {"month": "2026-03"})}  # fmt: skip


def everything() -> dict[str, tuple[str, dict[str, Any]]]:
    return {**data_endpoints(), **LISTINGS, **ADMIN}


def call(g: Gw, path: str, params: dict[str, Any], token: str | None) -> Any:
    headers = {"X-API-Key": token} if token is not None else {}
    return g.client.get(path, params=params, headers=headers)


def expect(resp: Any, status: int, text: str, name: str) -> None:
    assert resp.status_code == status, f"{name}: {resp.status_code} {resp.text}"
    body = resp.json()
    assert body["status"] == status and text in body["message"], f"{name}: {body}"


def records_of(resp: Any) -> list[dict[str, Any]]:
    doc = resp.json()
    return doc.get("records", [])


def test_no_key_and_bad_keys(gateway: Gw) -> None:
    good = gateway.tokens["ops"]
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for name, (path, params) in everything().items():
        r = call(gateway, path, params, None)
        expect(r, 401, "no API key", name)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["error"] == "missing_api_key"
        expect(call(gateway, path, params, "ssmd_garbage"), 401, "invalid API key", name)
        expect(call(gateway, path, params, wrong_secret), 401, "wrong secret", name)
        bearer = gateway.client.get(path, params=params, headers={"Authorization": "Basic x"})
        expect(bearer, 401, "Bearer", name)


def test_revoked_key_stops_within_seconds(gateway: Gw) -> None:
    token = gateway.tokens["alice"]
    assert call(gateway, "/v1/feeds", {}, token).status_code == 200  # cached now
    revoke(gateway.pg_url, gateway.key_ids["alice"])
    time.sleep(0.4)  # the test gateway's cache TTL is 0.3 s
    for name, (path, params) in everything().items():
        expect(call(gateway, path, params, token), 401, "is revoked", name)


def test_admin_revoke_is_immediate_and_audited(gateway: Gw) -> None:
    token = gateway.tokens["alice"]
    assert call(gateway, "/v1/feeds", {}, token).status_code == 200
    key = gateway.key_ids["alice"]
    r = gateway.client.post(f"/v1/admin/keys/{key}/revoke",
                            headers={"X-API-Key": gateway.tokens["ops"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    expect(call(gateway, "/v1/feeds", {}, token), 401, "is revoked", "feeds")
    from ssmd.meta import audit

    with connect(gateway.pg_url) as conn:
        (entry,) = audit.log(conn, action="key.revoke")
    assert entry.actor == "client:ops" and entry.target == f"key/{key}"
    again = gateway.client.post(f"/v1/admin/keys/{key}/revoke",
                                headers={"X-API-Key": gateway.tokens["ops"]})  # fmt: skip
    assert again.status_code == 400 and "already revoked" in again.json()["message"]
    none = gateway.client.post("/v1/admin/keys/000000000000/revoke",
                               headers={"X-API-Key": gateway.tokens["ops"]})  # fmt: skip
    assert none.status_code == 404


def test_expired_key(gateway: Gw) -> None:
    expire_now(gateway.pg_url, gateway.key_ids["ops"])
    for name, (path, params) in everything().items():
        expect(call(gateway, path, params, gateway.tokens["ops"]), 401, "is expired", name)


def test_wrong_scope(gateway: Gw) -> None:
    for name, (path, params) in {**data_endpoints(), **LISTINGS, **ADMIN}.items():
        expect(call(gateway, path, params, gateway.tokens["streamer"]), 403,
               "lacks scope", name)  # fmt: skip
    for name, (path, params) in ADMIN.items():
        expect(call(gateway, path, params, gateway.tokens["alice"]), 403,
               "lacks scope 'admin'", name)  # fmt: skip
    r = call(gateway, "/v1/trades", q("BTC-USD", D1, D2), gateway.tokens["streamer"])
    assert "lacks scope 'read'" in r.json()["message"] and r.json()["error"] == "missing_scope"


def test_no_entitlement_for_the_feed(gateway: Gw) -> None:
    token = gateway.tokens["elsewhere"]
    for name, (path, params) in data_endpoints().items():
        r = call(gateway, path, params, token)
        expect(r, 403, "no entitlement for feed 'sim'", name)
        assert r.json()["error"] == "not_entitled"
    assert call(gateway, "/v1/feeds", {}, token).json()["feeds"] == []
    assert call(gateway, "/v1/catalog", {}, token).json()["days"] == []
    seed_instruments(gateway)
    assert call(gateway, "/v1/instruments", {}, token).json()["instruments"] == []


def seed_instruments(g: Gw) -> None:
    with connect(g.pg_url) as conn:
        for sym in ("BTC-USD", "ETH-USD"):
            instruments.upsert(conn, Instrument(venue="sim", venue_symbol=sym, symbol=sym,
                                                kind="spot", tick_size=to_fixed("0.1")),
                               effective_ns=D1)  # fmt: skip


def test_symbol_outside_the_globs(gateway: Gw) -> None:
    token = gateway.tokens["alice"]
    for name, (path, params) in data_endpoints("ETH-USD").items():
        expect(call(gateway, path, params, token), 403, "'ETH-USD' is outside the globs", name)
    seed_instruments(gateway)
    inst = call(gateway, "/v1/instruments", {"at": str(D1 + H)}, token).json()["instruments"]
    assert [i["symbol"] for i in inst] == ["BTC-USD"] and inst[0]["tick_size"] == "0.1"
    before = call(gateway, "/v1/instruments", {"at": str(D1 - H)}, token).json()
    assert before["instruments"] == []  # point in time: not listed yet
    days = call(gateway, "/v1/catalog", {}, token).json()["days"]
    assert days and all(d["symbols"] == ["BTC-USD"] for d in days)


def test_record_type_not_entitled(gateway: Gw) -> None:
    token = gateway.tokens["alice"]
    for kind in ("gap", "status", "instrument"):
        r = call(gateway, f"/v1/records/{kind}", q("BTC-USD", D1, D2), token)
        expect(r, 403, f"record type '{kind}' is not in", kind)


def test_date_outside_the_window(gateway: Gw) -> None:
    token = gateway.tokens["alice"]
    for name, (path, params) in data_endpoints("BTC-USD", D2, D2 + 6 * H).items():
        expect(call(gateway, path, params, token), 403, "window end", name)
    for name, (path, params) in data_endpoints("BTC-USD", D1 - 24 * H, D1 - 12 * H).items():
        expect(call(gateway, path, params, token), 403, "before the window start", name)


def test_partial_window_is_clipped_and_nothing_leaks(gateway: Gw) -> None:
    token = gateway.tokens["alice"]
    for name, (path, params) in data_endpoints("BTC-USD", D1 + 12 * H, D2 + 12 * H).items():
        if name == "book-at":
            continue
        r = call(gateway, path, {**params, "limit": 100000}, token)
        assert r.status_code == 200, f"{name}: {r.text}"
        doc = r.json()
        assert doc["clipped"] is True and r.headers["X-Clipped"] == "true"
        rows = doc.get("records", doc.get("bars"))
        assert rows, name
        for rec in rows:
            ts = rec.get("ts_event") or rec.get("ts")
            assert D1 + 12 * H <= ts < D2, (name, rec)
            assert rec.get("symbol", "BTC-USD") == "BTC-USD"
    csv = call(gateway, "/v1/trades", {**q("BTC-USD", D1, D2 + 12 * H), "format": "csv",
                                       "limit": 100000}, token)  # fmt: skip
    assert csv.status_code == 200 and len(csv.text.splitlines()) == 1 + 144


def test_every_successful_response_is_entitled(gateway: Gw) -> None:
    """Sweep symbols, types and ranges as alice: 200s hold only entitled records."""
    token = gateway.tokens["alice"]
    seen = 0
    for sym in ("BTC-USD", "ETH-USD", "BTC-EUR"):
        for kind in ("trade", "quote", "book", "gap"):
            for t0, t1 in (
                (D1 - H, D1 + H),
                (D1, D2),
                (D2 - H, D2 + H),
                (D1 - 24 * H, D2 + 24 * H),
            ):
                r = call(gateway, f"/v1/records/{kind}",
                         {**q(sym, t0, t1), "limit": 100000}, token)  # fmt: skip
                assert r.status_code in (200, 403), r.text
                for rec in records_of(r) if r.status_code == 200 else []:
                    seen += 1
                    assert rec["symbol"].startswith("BTC-") and rec["type"] == kind
                    assert kind in ("trade", "quote", "book")
                    assert D1 <= (rec["ts_event"] or rec["ts_recv"]) < D2
    assert seen > 0
