"""Fuzzing the `/v1/stream` protocol: malformed frames get an error frame (or a policy
close), never a crash; the server survives and other clients are unaffected."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssmd.gateway import protocol
from ssmd.gateway.protocol import ProtocolError

from .stream_harness import Bus, collect, gateway, subscribe, trade, until

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ops = st.sampled_from(["subscribe", "unsubscribe", "ping", "Subscribe", "", "x"])
messages = st.fixed_dictionaries(
    {"op": ops},
    optional={
        "id": json_values,
        "feed": st.sampled_from(["sim", "nope", "", "a.b"]) | json_values,
        "types": st.lists(st.sampled_from(["trade", "book", "bogus"]), max_size=3) | json_values,
        "symbols": st.lists(st.text(max_size=10), max_size=3) | json_values,
        "from": st.integers() | st.text(max_size=30) | json_values,
        "transform": json_values,
        "junk": json_values,
    },
)
frames = (
    messages.map(lambda m: msgspec.json.encode(m).decode())
    | json_values.map(lambda v: msgspec.json.encode(v).decode())
    | st.text(max_size=200)
    | st.binary(max_size=200)
)


@given(frames)
@settings(max_examples=2000, deadline=None)
def test_parse_never_raises_anything_but_a_protocol_error(frame):
    try:
        msg = protocol.parse(frame, now_ns=1_800_000_000 * 10**9)
    except ProtocolError as exc:
        assert exc.code and exc.message
        assert protocol.error(exc.code, exc.message, exc.sub_id)  # encodable
        return
    assert isinstance(msg, protocol.Subscribe | protocol.Unsubscribe | protocol.Ping)


def test_oversized_frame_is_refused():
    with pytest.raises(ProtocolError) as exc:
        protocol.parse("[" + "1," * 40_000 + "1]")
    assert exc.value.code == "frame_too_large"


def test_fuzzed_frames_over_a_real_socket(pg_url, nats_url, tokens):
    """One connection receives hundreds of generated frames; every frame is answered
    (an error, or the reply of a valid op) and the connection stays; a second client's
    records keep arriving throughout; the gateway still accepts new connections."""
    batch: list[str | bytes] = []

    @given(frames)
    @settings(
        max_examples=300, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    def gather(frame):
        batch.append(frame)

    gather()

    async def main() -> None:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            async with gw.connect(tokens["all"]) as bystander, gw.connect(tokens["btc"]) as fuzz:
                await subscribe(bystander, id="b", feed="sim", types=["trade"])
                answers = 0
                for i, frame in enumerate(batch):
                    await fuzz.send(frame)
                    await fuzz.send(f'{{"op":"ping","id":{i}}}')  # a fence after each frame
                    msgs = await until(
                        fuzz, lambda m, i=i: m.get("op") == "pong" and m.get("id") == i
                    )
                    answers += len(msgs) > 1
                    if i % 50 == 0:
                        await bus.publish(trade(i))
                assert answers > len(batch) // 2  # most frames are wrong and said so
                got = [m for m in await collect(bystander, 1.0) if "op" not in m]
                assert [int(m["trade_id"]) for m in got] == list(range(0, len(batch), 50))
            async with gw.connect(tokens["all"]) as again:
                await again.send('{"op":"ping"}')
                assert (await until(again, lambda m: m.get("op") == "pong"))[-1]["op"] == "pong"

    asyncio.run(main())


def test_binary_garbage_and_huge_frames_do_not_kill_the_server(pg_url, nats_url, tokens):
    async def main() -> None:
        async with Bus(nats_url), gateway(pg_url, nats_url) as gw:
            async with gw.connect(tokens["all"], max_size=None) as ws:
                await ws.send(b"\xff\xfe\x00garbage")
                assert (await until(ws, lambda m: m.get("op") == "error"))[-1]["code"] == "bad_json"
                await ws.send("x" * 200_000)
                err = (await until(ws, lambda m: m.get("op") == "error"))[-1]
                assert err["code"] == "frame_too_large"
            # a frame beyond the server's WebSocket size limit closes with a policy code
            async with gw.connect(tokens["all"], max_size=None) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.send("y" * (20 << 20))
                    await until(ws, lambda m: False, timeout=5)
                assert closed.value.rcvd is None or closed.value.rcvd.code in (1009, 1008)
            async with gw.connect(tokens["all"]) as ws:
                await ws.send('{"op":"ping"}')
                assert (await until(ws, lambda m: m.get("op") == "pong"))[-1]["op"] == "pong"

    asyncio.run(main())
