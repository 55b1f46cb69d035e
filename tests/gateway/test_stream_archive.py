"""Replay older than the stream's retention: archive (Parquet on the S3-compatible
server) → JetStream → live, with no gap and no duplicate at either seam, and a `gap`
notice for the spans neither the archive nor the stream holds."""

from __future__ import annotations

import asyncio
import collections

import msgspec
from tests.storage.helpers import make_bucket

from ssmd import spec
from ssmd.bus.subjects import stream_name
from ssmd.gateway.archive_replay import plan
from ssmd.history.layout import HOUR_NS, hour_floor
from ssmd.model.time import now_ns

from .rest_helpers import write_archive
from .stream_harness import ENV, Bus, definition, gateway, subscribe, trade, until

MIN = 60 * 10**9


def test_plan_cuts_a_range_into_archived_hours_and_merged_gaps() -> None:
    h = 100 * HOUR_NS
    covered = {h, h + 3 * HOUR_NS}
    assert plan(covered, h - 10, h + 4 * HOUR_NS + 5) == [
        (h - 10, h, False),
        (h, h + HOUR_NS, True),
        (h + HOUR_NS, h + 3 * HOUR_NS, False),  # two hours, one notice
        (h + 3 * HOUR_NS, h + 4 * HOUR_NS, True),
        (h + 4 * HOUR_NS, h + 4 * HOUR_NS + 5, False),
    ]
    assert plan(covered, h + 30, h + 40) == [(h + 30, h + 40, True)]
    assert plan(set(), 0, h) == [(0, h, False)]  # an ancient `from` costs one step


def s3_definition(s3_server, monkeypatch) -> spec.Environment:
    monkeypatch.setenv("SSMD_TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("SSMD_TEST_S3_SECRET", s3_server.secret_key)
    env = definition()
    store = spec.model.ObjectStore(
        url=f"s3://{make_bucket(s3_server)}/archive",
        endpoint=s3_server.url,
        region=s3_server.region,
        credentials=spec.model.Credentials(
            access_key_id="env:SSMD_TEST_S3_KEY", secret_access_key="env:SSMD_TEST_S3_SECRET"
        ),
    )
    storage = msgspec.structs.replace(env.storage, object_store=store)
    return msgspec.structs.replace(env, storage=storage)


def test_replay_older_than_the_stream_reads_the_archive_then_the_stream_then_live(
    pg_url, nats_url, tokens, s3_server, monkeypatch, tmp_path
):
    """The stream lost trades 0-4 (purged, as max_age would); the archive holds an old
    hour (trades 100-104) and trades 0-9 of the current hour; the stream holds 5-14; 15-19
    are published live. From 2 h 10 min ago the client must get: a gap notice up to the
    old hour, 100-104, a gap notice for the hour after it, then 0-19 — each once, in
    order."""
    defn = s3_definition(s3_server, monkeypatch)

    async def main() -> tuple[list[dict], int, int, int]:
        async with Bus(nats_url) as bus:
            first = [trade(i, "BTC-USD" if i % 2 else "ETH-USD") for i in range(15)]
            for t in first:
                await bus.publish(t)
                await asyncio.sleep(0.01)
            # the stream no longer holds 0-4 (seqs 1-5)
            await bus.js.purge_stream(stream_name(ENV, "sim"), seq=6)
            h_now = hour_floor(first[0].ts_recv)
            h_old = h_now - 2 * HOUR_NS
            old = [trade(100 + i, "SOL-USD", ts=h_old + i * MIN) for i in range(5)]
            await asyncio.to_thread(write_archive, defn, tmp_path, old + first[:10])
            start = h_old - 10 * MIN
            async with (
                gateway(pg_url, nats_url, defn=defn, data_dir=tmp_path) as gw,
                gw.connect(tokens["all"]) as ws,
            ):
                ok = await subscribe(
                    ws, id="a", feed="sim", types=["trade"], symbols=["*"], **{"from": start}
                )
                assert ok["op"] == "subscribed", ok
                await bus.publish(*(trade(i, "BTC-USD") for i in range(15, 20)))
                msgs = await until(ws, lambda m: m.get("op") == "live", timeout=20)
                if not any(m.get("trade_id") == "19" for m in msgs):
                    msgs += await until(ws, lambda m: m.get("trade_id") == "19")
            return [m for m in msgs if m.get("op") != "heartbeat"], start, h_old, h_now

    msgs, start, h_old, h_now = asyncio.run(main())
    gaps = [(m["from"], m["to"]) for m in msgs if m.get("op") == "gap"]
    assert gaps == [(start, h_old), (h_old + HOUR_NS, h_now)]
    assert all(m["reason"] == "not_archived" and m["id"] == "a" for m in msgs if "op" in m
               and m["op"] == "gap")  # fmt: skip
    # the order of everything: notice, old hour, notice, then 0-19
    seq = [m["trade_id"] if "op" not in m else m["op"] for m in msgs]
    seq = [s for s in seq if s not in ("subscribed", "live")]
    want = ["gap", *map(str, range(100, 105)), "gap", *map(str, range(20))]
    assert seq == want, collections.Counter(seq)
    live = next(m for m in msgs if m.get("op") == "live")
    assert live["replayed"] >= 20  # 100-104, 0-9 (archive), 10-14 (stream)
    # the archive's copies are the same wire records as the stream's
    recs = [m for m in msgs if "op" not in m]
    assert recs[5]["price"] == "100" and recs[5]["symbol"] == "ETH-USD"
    assert isinstance(recs[0]["ts_recv"], int) and recs[0]["ts_recv"] == h_old


def test_replay_from_before_the_stream_without_any_archive_is_a_gap_notice(
    pg_url, nats_url, tokens
):
    async def main() -> tuple[list[dict], int]:
        async with Bus(nats_url) as bus, gateway(pg_url, nats_url) as gw:
            await bus.publish(*(trade(i) for i in range(3)))
            start = now_ns() - 3 * HOUR_NS
            async with gw.connect(tokens["all"]) as ws:
                ok = await subscribe(ws, id=1, feed="sim", types=["trade"], **{"from": start})
                assert ok["op"] == "subscribed"
                msgs = await until(ws, lambda m: m.get("op") == "live", timeout=20)
                return [m for m in msgs if m.get("op") != "heartbeat"], start

    msgs, start = asyncio.run(main())
    (g,) = [m for m in msgs if m.get("op") == "gap"]
    assert g["id"] == 1 and g["from"] == start and g["reason"] == "not_archived"
    assert g["to"] <= now_ns()
    assert [m["trade_id"] for m in msgs if "op" not in m] == ["0", "1", "2"]
    assert msgs.index(g) < next(i for i, m in enumerate(msgs) if "op" not in m)
