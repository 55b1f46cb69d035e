"""Lua transforms over the real WebSocket: defined in the environment definition, applied
per subscription; a failing one (runtime error, instruction budget) ends only its own
subscription — the same client's other subscription and other clients keep receiving."""

from __future__ import annotations

import asyncio

import msgspec

from ssmd import spec

from .stream_harness import Bus, collect, definition, gateway, subscribe, trade, until

NOTIONAL = """
function transform(r)
  r.notional = dec.mul(r.price, r.size)
  r.size = nil
  return r
end
"""
BOOM = """
function transform(r)
  if r.trade_id == "3" then error("no trade 3 please") end
  return r
end
"""
SPIN = "function transform(r) while true do end end"


def with_transforms() -> spec.Environment:
    env = definition()
    lua = {"notional": NOTIONAL, "boom": BOOM, "spin": SPIN}
    return msgspec.structs.replace(
        env, transforms={k: spec.model.Transform(source=v) for k, v in lua.items()}
    )


def records(msgs: list[dict], sid: str) -> list[dict]:
    return [m for m in msgs if "op" not in m and m["id"] == sid]


def test_transformed_values_and_a_failing_transform_ends_only_its_subscription(
    pg_url, nats_url, tokens
):
    async def main() -> None:
        async with (
            Bus(nats_url) as bus,
            gateway(pg_url, nats_url, defn=with_transforms()) as gw,
            gw.connect(tokens["all"]) as a,
            gw.connect(tokens["btc"]) as b,
        ):
            sym = ["BTC-USD"]
            ok = await subscribe(a, id="n", feed="sim", types=["trade"], symbols=sym,
                                 transform="notional")  # fmt: skip
            assert ok["op"] == "subscribed" and ok["transform"] == "notional"
            assert (await subscribe(a, id="x", feed="sim", types=["trade"], symbols=sym,
                                    transform="boom"))["op"] == "subscribed"  # fmt: skip
            assert (await subscribe(b, id="s", feed="sim", types=["trade"], symbols=sym,
                                    transform="spin"))["op"] == "subscribed"  # fmt: skip
            assert (await subscribe(b, id="p", feed="sim", types=["trade"],
                                    symbols=sym))["op"] == "subscribed"  # fmt: skip
            await bus.publish(*(trade(i) for i in range(1, 6)))
            got_a, got_b = await asyncio.gather(collect(a, 2.0), collect(b, 2.0))

            # the values the Lua computed, exact decimals as strings
            n = records(got_a, "n")
            assert [m["trade_id"] for m in n] == ["1", "2", "3", "4", "5"]
            assert n[0]["price"] == "101" and n[0]["notional"] == "1.01"
            assert n[4]["notional"] == "1.05" and all("size" not in m for m in n)
            # the runtime error: records before it, then the error for that id only
            assert [m["trade_id"] for m in records(got_a, "x")] == ["1", "2"]
            err = next(m for m in got_a if m.get("op") == "error")
            assert err["id"] == "x" and err["code"] == "transform_failed"
            assert "no trade 3 please" in err["message"]
            # the budget: the endless loop is stopped; the same client's plain
            # subscription got everything
            err = next(m for m in got_b if m.get("op") == "error")
            assert err["id"] == "s" and err["code"] == "transform_failed"
            assert "budget" in err["message"] or "timeout" in err["message"]
            assert records(got_b, "s") == []
            assert [m["trade_id"] for m in records(got_b, "p")] == ["1", "2", "3", "4", "5"]
            assert "size" in records(got_b, "p")[0]  # untransformed

            # afterwards: both clients keep receiving on their live subscriptions, the
            # failed ones stay ended
            await bus.publish(trade(6))
            more_a = await until(a, lambda m: m.get("trade_id") == "6")
            more_b = await until(b, lambda m: m.get("trade_id") == "6")
            assert [(m["id"], m["notional"]) for m in records(more_a, "n")] == [("n", "1.06")]
            assert records(more_a, "x") == [] and records(more_b, "s") == []
            assert [m["trade_id"] for m in records(more_b, "p")] == ["6"]

    asyncio.run(main())


def test_an_unknown_transform_is_refused(pg_url, nats_url, tokens):
    async def main() -> None:
        async with (
            Bus(nats_url),
            gateway(pg_url, nats_url, defn=with_transforms()) as gw,
            gw.connect(tokens["all"]) as ws,
        ):
            err = await subscribe(ws, id=1, feed="sim", types=["trade"], transform="nope")
            assert err["op"] == "error" and err["code"] == "unknown_transform"
            assert "no transform 'nope'" in err["message"] and "notional" in err["message"]

    asyncio.run(main())
