"""Clock model: latency histogram values, detectors, adjtimex, metrics export."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ssmd.capture.clock import (
    MS,
    STA_UNSYNC,
    ClockMonitor,
    ClockPolicy,
    DriftTracker,
    alarms,
    from_timex,
    kernel_clock,
    raw_monotonic_ns,
)
from ssmd.ops.metrics import LATENCY_BUCKETS, registry, render

SYNCED = from_timex(0, 0x2001, 8_000, 500)  # TIME_OK, STA_PLL|STA_NANO, 8 ms maxerror
T0 = 1_700_000_000_000_000_000


def test_from_timex() -> None:
    assert SYNCED.synced and SYNCED.state == "TIME_OK" and SYNCED.maxerror_us == 8_000
    unsync = from_timex(5, STA_UNSYNC, 16_000_000, 16_000_000, freq=65536 * 12)
    assert not unsync.synced and unsync.state == "TIME_ERROR" and unsync.freq_ppm == 12.0
    assert not from_timex(0, STA_UNSYNC, 0, 0).synced  # the flag alone is enough
    assert not from_timex(5, 0, 0, 0).synced  # so is TIME_ERROR


def test_kernel_clock_reads_adjtimex() -> None:
    k = kernel_clock()
    assert k is not None  # Linux CI
    assert isinstance(k.synced, bool) and k.maxerror_us >= 0 and k.esterror_us >= 0
    assert k.state.startswith("TIME_")
    assert k.synced == (not (k.status & STA_UNSYNC) and k.state != "TIME_ERROR")


def test_latency_histogram_values() -> None:
    m = ClockMonitor("kr")
    for latency_ms in (0.05, 0.3, 2, 2, 7, 40, 3_000, 20_000):
        m.observe(T0 + int(latency_ms * MS), T0)
    assert m.total == 8
    assert m.sum_ns == int((0.05 + 0.3 + 2 + 2 + 7 + 40 + 3000 + 20000) * MS)
    assert m.min_ns == 50_000
    assert m.quantile_ns(0.5) == int(2.5 * MS)  # 4th of 8 is 2 ms: bucket le 2.5 ms
    assert m.quantile_ns(1.0) == -1  # 20 s is beyond the last bound: +Inf
    reg = registry()
    m.register(reg)
    families = {f.name: f for f in text_string_to_metric_families(render(reg).decode())}
    hist = families["ssmd_feed_latency_seconds"]
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets["0.0001"] == 1 and buckets["0.0005"] == 2 and buckets["0.0025"] == 4
    assert buckets["0.01"] == 5 and buckets["0.05"] == 6 and buckets["5.0"] == 7
    assert buckets["+Inf"] == 8
    (count,) = [s.value for s in hist.samples if s.name.endswith("_count")]
    assert count == 8
    assert all(s.labels["feed"] == "kr" for s in hist.samples)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(10**12), 10**12), max_size=50), st.integers(0, 50))
def test_latencies_at_once_are_each_in_turn(latencies: list[int], cut: int) -> None:
    """`observe_latencies` (a read's records at once), in two calls, against a histogram
    counted here by hand from the bucket bounds."""
    m = ClockMonitor("kr", ClockPolicy(negative_tolerance_ns=10 * MS))
    m.observe_latencies(latencies[:cut])
    m.observe_latencies(tuple(latencies[cut:]))
    bounds = [round(b * 1e9) for b in LATENCY_BUCKETS]
    want = [0] * (len(bounds) + 1)
    for latency in latencies:
        want[next((i for i, b in enumerate(bounds) if latency <= b), len(bounds))] += 1
    assert m.counts == want
    assert (m.total, m.sum_ns) == (len(latencies), sum(latencies))
    assert m.min_ns == (min(latencies) if latencies else None)
    negatives = [x for x in latencies if x < -10 * MS]
    assert m.negatives == len(negatives)
    assert m.last_negative_ns == (negatives[-1] if negatives else 0)


def test_negative_latency_beyond_tolerance_alarms() -> None:
    m = ClockMonitor("kr", ClockPolicy(negative_tolerance_ns=10 * MS))
    m.observe(T0 - 9 * MS, T0)  # within tolerance: a venue clock slightly ahead
    status = m.sample(T0, 0, kernel=SYNCED)
    assert status["ok"] and status["alarms"] == [] and status["latency"]["min_ms"] == -9
    m.observe(T0 - 25 * MS, T0)
    m.observe(T0 - 11 * MS, T0)
    status = m.sample(T0 + 10**9, 10**9, kernel=SYNCED)
    assert not status["ok"]
    assert status["alarms"] == ["2 record(s) with latency below -10 ms"]
    assert m.negatives == 2 and m.last_negative_ns == -11 * MS
    assert m.sample(T0 + 2 * 10**9, 2 * 10**9, kernel=SYNCED)["ok"]  # per window


def test_drift_tracker_jumps_and_slew() -> None:
    d = DriftTracker(jump_tolerance_ns=50 * MS)
    assert d.sample(T0, 0) == 0
    assert d.sample(T0 + 10**9 + 10_000, 10**9) == 0  # +10 µs over 1 s: slew
    assert d.drift_ppm == pytest.approx(10.0)
    assert d.sample(T0 + 2 * 10**9 - 200 * MS, 2 * 10**9) == -200 * MS - 10_000  # stepped back
    assert d.jumps == 1 and d.last_jump_ns == -200 * MS - 10_000
    assert d.sample(T0 + 3 * 10**9 - 200 * MS, 3 * 10**9) == 0
    assert d.drift_ppm == pytest.approx(0.0)  # measured since the jump only


def test_alarms_words() -> None:
    p = ClockPolicy()
    unsync = from_timex(5, STA_UNSYNC, 16_000_000, 16_000_000)
    assert alarms(p, unsync, 0, 0, 0.0) == [
        "kernel clock unsynchronized (TIME_ERROR, status=0x40)",
        "kernel maxerror 16000 ms",
    ]
    assert alarms(p, SYNCED, 0, 1, 900.0) == [
        "wall clock jumped 1 time(s)",
        "wall/monotonic drift 900 ppm",
    ]
    assert alarms(p, None, 0, 0, None) == []


def test_clock_metrics_exported() -> None:
    m = ClockMonitor("kr")
    m.sample(T0, 0, kernel=from_timex(5, STA_UNSYNC, 16_000_000, 1_000))
    reg = registry()
    m.register(reg)
    values = {
        s.name: s.value
        for f in text_string_to_metric_families(render(reg).decode())
        for s in f.samples
    }
    assert values["ssmd_clock_unsynchronized"] == 1.0
    assert values["ssmd_clock_maxerror_seconds"] == 16.0
    assert values["ssmd_clock_esterror_seconds"] == 0.001
    assert values["ssmd_clock_ok"] == 0.0
    assert values["ssmd_clock_negative_latency_total"] == 0.0
    assert values["ssmd_clock_wall_jumps_total"] == 0.0


def test_real_sample_runs() -> None:
    m = ClockMonitor("kr")
    m.observe(time.time_ns(), time.time_ns() - 3 * MS)
    first = m.sample()
    time.sleep(0.05)
    status = m.sample()
    assert status["drift"]["jumps"] == 0 and status["kernel"] is not None
    assert abs(status["drift"]["drift_ppm"]) < 10_000
    assert first["latency"]["count"] == 1
    assert raw_monotonic_ns() > 0
