"""The WebSocket part of the authorization matrix: every key and entitlement case, and
proof by exhaustion that no record outside a client's entitlements is ever delivered."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import websockets

from ssmd.gateway.app import create_app
from ssmd.gateway.settings import GatewaySettings
from ssmd.meta import clients as meta_clients
from ssmd.model.time import now_ns

from .rest_helpers import revoke
from .stream_harness import (
    CLIENTS,
    ENV,
    SYMBOLS,
    Bus,
    book,
    collect,
    definition,
    gateway,
    quote,
    recv_json,
    subscribe,
    trade,
    until,
)


async def refused_at_connect(gw, token: str | None, query: str = "") -> tuple[dict, int, str]:
    async with gw.connect(token, query) as ws:
        msgs = await recv_json(ws)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_json(ws)
        return msgs[0], closed.value.rcvd.code, closed.value.rcvd.reason


def test_keys_and_scopes_at_connect(pg_url, nats_url, tokens):
    async def main() -> None:
        async with gateway(pg_url, nats_url) as gw:
            err, code, _ = await refused_at_connect(gw, None)
            assert (err["code"], code) == ("missing_api_key", 4401)
            err, code, _ = await refused_at_connect(gw, "ssmd_000000000000_nope")
            assert (err["code"], code) == ("invalid_api_key", 4401)
            err, code, reason = await refused_at_connect(gw, tokens["reader"])
            assert (err["code"], code) == ("missing_scope", 4403)
            assert "stream" in err["message"] and "stream" in reason
            revoke(pg_url, tokens["btc"].split("_")[1])
            err, code, _ = await refused_at_connect(gw, tokens["btc"])
            assert (err["code"], code) == ("invalid_api_key", 4401)
            assert "revoked" in err["message"]
            # ?api_key= works for browsers (no headers on WebSocket there)
            async with gw.connect(None, f"api_key={tokens['all']}") as ws:
                await ws.send('{"op":"ping"}')
                assert (await until(ws, lambda m: m.get("op") == "pong"))[-1]["op"] == "pong"

    asyncio.run(main())


SUBSCRIBE_CASES = [
    # (client, request, expected error code or None, words in the message)
    ("other", {"feed": "sim"}, "forbidden", ["feed 'sim'"]),
    ("btc", {"feed": "sim", "types": ["book"]}, "forbidden", ["book"]),
    ("btc", {"feed": "sim", "symbols": ["ETH-USD"]}, "forbidden", ["ETH-USD"]),
    ("btc", {"feed": "sim", "types": ["trade"], "symbols": ["BTC-USD", "SOL-USD"]}, "forbidden",
     ["SOL-USD"]),
    ("old", {"feed": "sim"}, "forbidden", ["ended"]),
    ("old", {"feed": "sim", "from": "2019-06-01T00:00:00Z"}, "forbidden", ["before"]),
    ("recent", {"feed": "sim", "from_ago_s": 7200}, "forbidden", ["before"]),
    ("recent", {"feed": "sim", "from_ago_s": 30}, None, []),
    ("btc", {"feed": "sim", "symbols": ["*"]}, None, []),
    ("books", {"feed": "sim", "types": ["book"], "symbols": ["BTC-USD"]}, None, []),
]  # fmt: skip


def test_subscriptions_outside_the_entitlements_are_refused_saying_what(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url), gateway(pg_url, nats_url) as gw:
            for i, (client, case, code, words) in enumerate(SUBSCRIBE_CASES):
                req = dict(case)
                if "from_ago_s" in req:  # relative to now, not to when the module was imported
                    req["from"] = now_ns() - req.pop("from_ago_s") * 10**9
                async with gw.connect(tokens[client]) as ws:
                    reply = await subscribe(ws, id=i, **req)
                    if code is None:
                        assert reply["op"] == "subscribed", (client, req, reply)
                        continue
                    assert (reply["op"], reply["code"], reply["id"]) == ("error", code, i), reply
                    for word in words:
                        assert word in reply["message"], (word, reply)

    asyncio.run(main())


def test_no_record_outside_the_entitlements_is_ever_delivered(pg_url, nats_url, tokens):
    """Every client subscribes as widely as it may (globs, all types, narrowed) and gets
    exactly the records its entitlements allow — checked record by record against
    `ssmd.meta.clients.entitled`, the definition of an entitlement."""
    specs = {c["id"]: meta_clients.coerce_client(c) for c in CLIENTS}
    who = ["all", "btc", "books", "recent"]

    async def main() -> dict[str, list[dict]]:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            socks = {c: await gw.connect(tokens[c]).__aenter__() for c in who}
            try:
                for c, ws in socks.items():
                    ok = await subscribe(ws, id=c, feed="sim", symbols=["*"])
                    assert ok["op"] == "subscribed", ok
                    assert ok["narrowed"] is (c in ("btc", "books"))
                published = []
                for n, (sym, kind) in enumerate(itertools.product(SYMBOLS, ["t", "q", "b"])):
                    rec = (
                        trade(n, sym) if kind == "t" else quote(n, sym) if kind == "q"
                        else book(sym, True, [(100, 1)], [(101, 1)], n + 1)
                    )  # fmt: skip
                    published.append(rec)
                await bus.publish(*published)
                await bus.publish(trade(999, "END-USD"))  # outside btc-* globs
                got: dict[str, list[dict]] = {}
                for c, ws in socks.items():
                    got[c] = await collect(ws, 1.5)
                return got
            finally:
                for ws in socks.values():
                    await ws.close()

    got = asyncio.run(main())
    now = now_ns()
    for c in who:
        records = [m for m in got[c] if "op" not in m]
        client = meta_clients.Client(
            env=ENV, id=c, type=specs[c].type, scopes=specs[c].scopes, active=True,
            entitlements=specs[c].entitlements, created_ns=0, updated_ns=0,
        )  # fmt: skip
        for r in records:
            assert r["id"] == c
            assert meta_clients.entitled(
                client, feed="sim", symbol=r["symbol"], record_type=r["type"],
                data_ns=r["ts_event"] or r["ts_recv"], now=now,
            ), (c, r)  # fmt: skip
        kinds = {(r["symbol"], r["type"]) for r in records}
        if c == "btc":
            assert kinds == {("BTC-USD", "trade"), ("BTC-USD", "quote")}
        if c == "books":
            assert kinds == {("BTC-USD", "book")}
        if c in ("all", "recent"):
            assert len(kinds) == 3 * 3 + 1  # every symbol and type, and END-USD's trade


def test_revocation_mid_stream_closes_the_socket(pg_url, nats_url, tokens):
    async def main() -> None:
        async with (
            Bus(nats_url),
            gateway(pg_url, nats_url) as gw,
            gw.connect(tokens["btc"]) as ws,
        ):
            reply = await subscribe(ws, id=1, feed="sim", types=["trade"])
            assert reply["op"] == "subscribed"
            revoke(pg_url, tokens["btc"].split("_")[1])
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await until(ws, lambda m: False, timeout=10)
            assert closed.value.rcvd.code == 4401
            assert "revoked" in closed.value.rcvd.reason

    asyncio.run(main())


def test_mounted_in_the_gateway_app(pg_url, nats_url, tokens):
    """The route as `ssmd gateway` serves it (create_app, lifespan on)."""

    async def main() -> None:
        async with Bus(nats_url) as bus:
            settings = GatewaySettings(definition=definition(), pg_url=pg_url, nats_url=nats_url)
            async with (
                gateway(pg_url, nats_url, app=lambda gw: create_app(settings, gateway=gw)) as gw,
                gw.connect(tokens["btc"]) as ws,
            ):
                await subscribe(ws, id="m", feed="sim", symbols=["BTC-USD"])
                await bus.publish(trade(1, "BTC-USD"))
                msgs = await until(ws, lambda m: m.get("trade_id") == "1")
                assert msgs[-1]["id"] == "m" and msgs[-1]["price"] == "101"

    asyncio.run(main())
