"""Streams and KV buckets from the definition: exact config, refusal, reconcile."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import StreamConfig

from ssmd import spec
from ssmd.bus.provision import StreamMismatch, ensure_streams, plan_streams
from ssmd.spec.units import S

from .helpers import run

ENV_YAML = """
apiVersion: ssmd/v1
kind: Environment
metadata: {name: qa}
feeds:
  kraken: {venue: kraken-v2, instruments: [BTC/USD]}
  bn: {venue: binance, instruments: [BTCUSDT]}
  off: {venue: binance, instruments: [ETHUSDT], enabled: false}
streams: {max_age: 6h, max_bytes: 2GiB, replicas: 1, dedup_window: 5m}
"""


def env() -> spec.Environment:
    return spec.loads(ENV_YAML)


async def with_js(url: str, fn):
    nc = await nats.connect(url)
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.close()


def test_creates_exactly_the_wanted_streams_and_buckets(nats_url: str) -> None:
    async def go(js):
        first = await ensure_streams(js, env())
        again = await ensure_streams(js, env())
        infos = {i.config.name: i.config for i in await js.streams_info()}
        return first, again, infos

    first, again, infos = run(with_js(nats_url, go))
    assert [(d.stream, d.action) for d in first] == [
        ("MD_QA_BN", "create"),
        ("MD_QA_KRAKEN", "create"),
    ]
    assert [(d.stream, d.action) for d in again] == [("MD_QA_BN", "ok"), ("MD_QA_KRAKEN", "ok")]
    assert sorted(infos) == ["KV_ssmd_qa", "KV_ssmd_qa_status", "MD_QA_BN", "MD_QA_KRAKEN"]
    c = infos["MD_QA_KRAKEN"]
    assert c.subjects == ["md.qa.kraken.>"]
    assert (str(c.storage), str(c.retention), str(c.discard)) == ("file", "limits", "old")
    assert round(c.max_age * S) == 6 * 3600 * S
    assert c.max_bytes == 2 * 2**30
    assert (c.max_msgs, c.max_msgs_per_subject, c.num_replicas) == (-1, -1, 1)
    assert round(c.duplicate_window * S) == 300 * S
    assert infos["KV_ssmd_qa"].max_msgs_per_subject == 16


def test_mismatching_stream_is_refused_naming_every_field(nats_url: str) -> None:
    async def go(js):
        await js.add_stream(
            StreamConfig(
                name="MD_QA_KRAKEN",
                subjects=["md.qa.kraken.trade.>"],
                max_age=3600,
                storage="memory",
                max_bytes=2 * 2**30,
                duplicate_window=300,
            )
        )
        plan = await plan_streams(js, env())
        with pytest.raises(StreamMismatch) as caught:
            await ensure_streams(js, env())
        names = [i.config.name for i in await js.streams_info()]
        return plan, caught.value, names

    plan, exc, names = run(with_js(nats_url, go))
    kraken = next(d for d in plan if d.feed == "kraken")
    assert kraken.action == "refuse"
    assert [(f.field, f.found, f.wanted) for f in kraken.fields] == [
        ("subjects", ["md.qa.kraken.trade.>"], ["md.qa.kraken.>"]),
        ("storage", "memory", "file"),
        ("max_age", 3600 * S, 6 * 3600 * S),
    ]
    text = str(exc)
    assert "stream MD_QA_KRAKEN (feed kraken) disagrees with environment qa:" in text
    assert "subjects: found ['md.qa.kraken.trade.>'], wanted ['md.qa.kraken.>']" in text
    assert "max_age: found 1h, wanted 6h" in text
    assert "storage: found 'memory', wanted 'file'" in text
    assert "`ssmd streams reconcile --env qa` updates max_age, subjects" in text
    assert "`nats stream rm MD_QA_KRAKEN`" in text
    assert names == ["MD_QA_KRAKEN"]  # refused before creating anything


def test_reconcile_updates_safe_fields(nats_url: str) -> None:
    async def go(js):
        await js.add_stream(
            StreamConfig(
                name="MD_QA_BN",
                subjects=["md.qa.bn.quote.>"],
                max_age=60,
                max_bytes=1000,
                duplicate_window=30,
            )
        )
        with pytest.raises(StreamMismatch):
            await ensure_streams(js, env())
        done = await ensure_streams(js, env(), update=True)
        plan = await plan_streams(js, env())
        return done, plan, (await js.stream_info("MD_QA_BN")).config

    done, plan, config = run(with_js(nats_url, go))
    bn = next(d for d in done if d.feed == "bn")
    assert bn.action == "update"
    assert {f.field for f in bn.fields} == {"subjects", "max_age", "max_bytes", "duplicate_window"}
    assert [d.action for d in plan] == ["ok", "ok"]
    assert config.subjects == ["md.qa.bn.>"] and config.max_bytes == 2 * 2**30


def test_reconcile_still_refuses_unsafe_fields(nats_url: str) -> None:
    async def go(js):
        await js.add_stream(
            StreamConfig(name="MD_QA_BN", subjects=["md.qa.bn.>"], storage="memory")
        )
        with pytest.raises(StreamMismatch) as caught:
            await ensure_streams(js, env(), update=True)
        return caught.value

    exc = run(with_js(nats_url, go))
    assert "storage: found 'memory', wanted 'file'" in str(exc)
    assert "reconcile" not in exc.hint and "cannot change in place" in exc.hint
