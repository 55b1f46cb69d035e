"""The rendered authorization, loaded by a real nats-server: entitled subjects readable,
others refused (permission violation), md.> not publishable, JetStream scoped."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import nats
import pytest
from nats.js.api import ConsumerConfig

from ssmd.bus.natsauth import build
from ssmd.spec import loads
from ssmd.stack.binaries import find_binary
from ssmd.stack.ports import LOOPBACK, free_port

ENV = """\
apiVersion: ssmd/v1
kind: Environment
metadata: {name: t}
feeds:
  sim:
    venue: sim
    instruments: [BTC-USD, BTC-EUR, ETH-USD]
clients:
  - id: reader
    type: display
    scopes: [read, stream]
    entitlements:
      - feeds: [sim]
        symbols: ['BTC-*']
        types: [trade]
  - id: other
    type: display
    scopes: [stream]
    entitlements:
      - feeds: [sim]
        types: [quote]
"""
PASSWORDS = {"ssmd": "svc-pw", "reader": "reader-pw", "other": "other-pw"}
STREAM = "MD_T_SIM"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("natsauth")
    auth = build(loads(ENV))
    (d / "auth.conf").write_text(auth.config(PASSWORDS))
    port = free_port()
    (d / "nats.conf").write_text(
        f'listen: "{LOOPBACK}:{port}"\njetstream {{ store_dir: "{d / "js"}" }}\n'
        'include "auth.conf"\n'
    )
    proc = subprocess.Popen(
        [str(find_binary("nats-server")), "-c", str(d / "nats.conf")],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "nats.log", "wb"),  # noqa: SIM115
    )
    url = f"nats://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                asyncio.run(_ping(url))
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((d / "nats.log").read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def _ping(url: str) -> None:
    nc = await nats.connect(url, user="ssmd", password="svc-pw", max_reconnect_attempts=0)
    await nc.jetstream().account_info()
    await nc.close()


async def _client(url: str, user: str, errors: list[str]) -> nats.NATS:
    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        url,
        user=user,
        password=PASSWORDS[user],
        inbox_prefix=f"_INBOX_{user}",
        error_cb=on_error,
        max_reconnect_attempts=0,
    )


def _violated(errors: list[str], op: str, subject: str) -> bool:
    """nats-py reports `-ERR 'Permissions Violation for …'` lower-cased via error_cb."""
    want = f'permissions violation for {op} to "{subject.lower()}"'
    return any(want in e.lower() for e in errors)


async def _scenario(url: str) -> None:
    svc = await nats.connect(url, user="ssmd", password="svc-pw")
    js = svc.jetstream()
    await js.add_stream(name=STREAM, subjects=["md.t.sim.>"])
    errors: list[str] = []
    reader = await _client(url, "reader", errors)

    # live: the entitled subject arrives, the other one is a permission violation
    ok = await reader.subscribe("md.t.sim.trade.BTC-USD")
    await reader.subscribe("md.t.sim.trade.ETH-USD")
    await reader.subscribe("md.t.sim.quote.BTC-USD")
    await reader.subscribe("md.>")
    await reader.flush()
    await asyncio.sleep(0.2)
    assert _violated(errors, "subscription", "md.t.sim.trade.ETH-USD"), errors
    assert _violated(errors, "subscription", "md.t.sim.quote.BTC-USD"), errors
    assert _violated(errors, "subscription", "md.>"), errors

    for sym in ("BTC-USD", "ETH-USD"):
        await js.publish(f"md.t.sim.trade.{sym}", sym.encode())
    await js.publish("md.t.sim.quote.BTC-USD", b"q")
    msg = await ok.next_msg(timeout=2)
    assert msg.data == b"BTC-USD"

    # publishing market data is refused
    errors.clear()
    await reader.publish("md.t.sim.trade.BTC-USD", b"forged")
    await reader.flush()
    await asyncio.sleep(0.2)
    assert _violated(errors, "publish", "md.t.sim.trade.BTC-USD"), errors
    assert (await js.stream_info(STREAM)).state.messages == 3

    # JetStream: a consumer on the entitled filter works (pull, named after the client)
    rjs = reader.jetstream()
    await rjs.add_consumer(
        STREAM,
        ConsumerConfig(
            name="reader", durable_name="reader", filter_subject="md.t.sim.trade.BTC-USD"
        ),
    )
    sub = await rjs.pull_subscribe_bind("reader", STREAM)
    (got,) = await sub.fetch(1, timeout=2)
    assert got.subject == "md.t.sim.trade.BTC-USD" and got.data == b"BTC-USD"
    await got.ack()

    # ...a consumer on anything wider or other is refused
    for name, filt in [
        ("x1", "md.t.sim.trade.ETH-USD"),
        ("x2", "md.t.sim.>"),
        ("x3", "md.t.sim.trade.*"),
        ("x4", "md.t.sim.*.BTC-USD"),
        ("other", "md.t.sim.trade.BTC-USD"),  # another client's consumer name
    ]:
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await rjs.add_consumer(
                STREAM, ConsumerConfig(name=name, filter_subject=filt), timeout=0.5
            )
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await rjs.add_consumer(STREAM, ConsumerConfig(), timeout=0.5)  # no filter at all
    for api in (
        "$JS.API.STREAM.INFO.KV_other",  # another stream
        f"$JS.API.STREAM.MSG.GET.{STREAM}",  # reading any message by sequence
        f"$JS.API.DIRECT.GET.{STREAM}",
        f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.other",  # pulling from another's consumer
        f"$JS.API.STREAM.DELETE.{STREAM}",
    ):
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await reader.request(api, b'{"seq": 1}', timeout=0.5)
    names = {c.name for c in await js.consumers_info(STREAM)}
    assert names == {"reader"}

    # the other client reads quotes only, and not the reader's inbox
    errs2: list[str] = []
    other = await _client(url, "other", errs2)
    await other.subscribe("md.t.sim.quote.ETH-USD")
    await other.subscribe("_INBOX_reader.>")
    await other.flush()
    await asyncio.sleep(0.2)
    assert _violated(errs2, "subscription", "_INBOX_reader.>"), errs2
    assert not any("quote.ETH-USD" in e for e in errs2), errs2

    for nc in (reader, other, svc):
        await nc.close()


def test_real_server_enforces_entitlements(server: str) -> None:
    asyncio.run(_scenario(server))


def test_wrong_password_is_refused(server: str) -> None:
    async def go() -> None:
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(
                server,
                user="reader",
                password="nope",
                max_reconnect_attempts=0,
                allow_reconnect=False,
            )

    asyncio.run(go())


def test_unlisted_client_has_no_user(server: str) -> None:
    assert [u.user for u in build(loads(ENV)).users] == ["ssmd", "reader", "other"]
