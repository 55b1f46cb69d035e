"""The text the screens show, without a terminal."""

from __future__ import annotations

from ssmd.tui.format import (
    RateHistory,
    age,
    clock_status,
    connections,
    human_bytes,
    name,
    spark,
)
from ssmd.tui.snapshot import Snapshot, feeds_of

S = 10**9


def test_sizes_ages_and_sparklines() -> None:
    assert [human_bytes(n) for n in (None, 0, 1023, 1536, 5 * 2**30)] == [
        "-", "0 B", "1023 B", "1.5 KiB", "5.0 GiB"
    ]  # fmt: skip
    assert [age(t, 100_000 * S) for t in (0, 99_960 * S, 99_000 * S, 10_000 * S)] == [
        "-", "40s", "16m", "1d"
    ]  # fmt: skip
    assert spark([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert spark([0, 0]) == "▁▁" and spark([]) == ""
    assert len(spark(list(range(100)), 16)) == 16


def test_heartbeat_cells() -> None:
    conns = [{"live": True}, {"live": False}]
    assert connections({"connections": conns}) == "1/2" and connections({}) == ""
    assert clock_status({"clock": {"ok": True, "alarms": []}}) == "ok"
    alarm = {"clock": {"ok": False, "alarms": ["wall clock jumped 2 time(s)"]}}
    assert clock_status(alarm) == "1 alarm"
    assert clock_status(alarm, full=True) == "wall clock jumped 2 time(s)"
    assert name({"key": "gateway.-.127_0_0_1_57855"}) == "gateway.127_0_0_1_5…"
    assert name({"key": "shipper.-.-"}) == "shipper"
    assert clock_status({}) == ""


def test_rate_history_takes_one_sample_per_heartbeat() -> None:
    history = RateHistory(size=3)

    def snap(ts: int, rate: float) -> Snapshot:
        return Snapshot(env="e", taken_ns=ts, components=(
            {"key": "connector.a.0", "ts": ts, "records_per_s": rate},
        ))  # fmt: skip

    for ts, rate in ((1, 10.0), (1, 10.0), (2, 20.0), (3, 30.0), (4, 40.0)):
        history.add(snap(ts, rate))
    assert history.of("connector.a.0") == [20.0, 30.0, 40.0]
    assert list(history.total) == [20.0, 30.0, 40.0]


def test_feeds_of_an_applied_definition() -> None:
    b = {"venue": "kraken-v2", "instruments": ["BTC/USD"], "shards": 2}
    spec = {"feeds": {"b": b, "a": {"venue": "sim", "enabled": False, "select": {"base": ["BTC"]}}}}
    a, b = feeds_of(spec)
    assert (a.name, a.enabled, a.shards, a.selector) == ("a", False, 1, '{"base":["BTC"]}')
    assert (b.name, b.venue, b.instruments, b.shards) == ("b", "kraken-v2", ("BTC/USD",), 2)
