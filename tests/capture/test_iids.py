"""The secmaster's iids in the stream: read from KV at start, learned on hot reload, and
journaled (the `open` line, an iids event) so the offline derivation carries the same."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import msgspec
import nats
from tests.bus.helpers import read_stream, wait_for
from tests.capture.test_connector import STREAM, assert_exactly_once, capture, dev, offline

from ssmd import spec
from ssmd.bus.kv import publish_spec
from ssmd.bus.subjects import IIDS_KEY
from ssmd.capture.connector import Connector, Options
from ssmd.replay.server import ReplayServer

IIDS = {"BTC-USD": 101, "ETH-USD": 102, "SOL-USD": 103}


async def put(nats_url: str, key: str, value: bytes) -> None:
    nc = await nats.connect(nats_url)
    try:
        await publish_spec(nc, "dev", value, key)
    finally:
        await nc.close()


def test_records_carry_iids_from_start_and_after_hot_reload(nats_url: str, tmp_path: Path) -> None:
    first = {k: IIDS[k] for k in ("BTC-USD", "ETH-USD")}

    async def main() -> None:
        await put(nats_url, IIDS_KEY, msgspec.json.encode({"sim": first}))
        async with ReplayServer(synthetic="sim", symbols=list(IIDS), seed=3, rate=1500) as rs:
            options = Options(tmp_path, nats_url, ws_url=rs.url, rest_url=rs.rest_url)
            connector = Connector(dev(["BTC-USD", "ETH-USD"]), "sim", options=options)

            async def reload() -> None:  # what `env apply` does: iids first, then the spec
                await put(nats_url, IIDS_KEY, msgspec.json.encode({"sim": IIDS}))
                await put(nats_url, "spec", spec.canonical_json(dev(list(IIDS))))
                await wait_for(lambda: connector.records_by_symbol.get("SOL-USD", 0) > 0, 10)

            await capture(connector, 0.5, during=reload)

    asyncio.run(main())
    stream = asyncio.run(read_stream(nats_url, STREAM))
    records = [msgspec.json.decode(p) for _, p in stream]
    pairs = collections.Counter((r["symbol"], r["iid"]) for r in records)
    assert set(pairs) == set(IIDS.items()), pairs  # every record, gaps included
    assert {r["type"] for r in records if r["symbol"] == "SOL-USD"} >= {"book", "trade"}
    assert_exactly_once(stream, offline(tmp_path))  # the journal says the same
