"""The clock model of a connector (docs/clocks.md explains it for operators).

- `ts_recv` is wall-clock (`time.time_ns()`) taken when a frame is read: it is what
  records carry and what clients compare across machines. Its quality is the host's
  NTP/PTP discipline, which we *watch* here but never correct.
- The journal also stores `time.monotonic_ns()` per frame: immune to clock steps, it
  orders frames and measures intervals even when the wall clock jumps.
- Latency = `ts_recv − ts_event` per feed: network + venue publishing delay + the
  difference between the venue's clock and ours. Negative beyond a tolerance means one
  of the two clocks is wrong (usually ours).

Three detectors feed metrics and a status dict: negative latency beyond
`negative_tolerance`, the kernel's own verdict (adjtimex: STA_UNSYNC, TIME_ERROR,
maxerror/esterror), and wall/monotonic drift (the offset wall − monotonic should only
move by slew; a jump means the wall clock was stepped).

The per-record path (`observe`) is a bisect and two additions: the histogram is kept
locally and exported by a collector at scrape time, not through prometheus_client's
locked per-observation path (100k records/s budget).
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import CounterMetricFamily

from ssmd.ops.metrics import LATENCY_BUCKETS

MS = 1_000_000

# --- kernel clock (adjtimex) --------------------------------------------------------

STA_UNSYNC = 0x0040
TIME_ERROR = 5
_STATES = {
    0: "TIME_OK",
    1: "TIME_INS",
    2: "TIME_DEL",
    3: "TIME_OOP",
    4: "TIME_WAIT",
    5: "TIME_ERROR",
}


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    """Linux `struct timex` (include/uapi/linux/timex.h), read-only use (modes = 0)."""

    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    )


@dataclass(frozen=True)
class KernelClock:
    """What the kernel says about its own wall clock (microseconds as the kernel keeps them)."""

    synced: bool
    state: str
    status: int
    maxerror_us: int
    esterror_us: int
    offset: int
    freq_ppm: float


def kernel_clock() -> KernelClock | None:
    """adjtimex(2) with modes = 0 (reads, needs no privilege); None off Linux or on error."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return from_timex(state, tx.status, tx.maxerror, tx.esterror, tx.offset, tx.freq)


def from_timex(
    state: int, status: int, maxerror: int, esterror: int, offset: int = 0, freq: int = 0
) -> KernelClock:
    """Pure: the kernel's answer interpreted (unsynchronized = STA_UNSYNC or TIME_ERROR)."""
    synced = not (status & STA_UNSYNC) and state != TIME_ERROR
    return KernelClock(
        synced=synced,
        state=_STATES.get(state, str(state)),
        status=status,
        maxerror_us=maxerror,
        esterror_us=esterror,
        offset=offset,
        freq_ppm=freq / 65536,  # freq is ppm with a 16-bit fraction
    )


# --- policy and pure evaluation -----------------------------------------------------


@dataclass(frozen=True)
class ClockPolicy:
    """Tolerances (see docs/clocks.md for why these values)."""

    negative_tolerance_ns: int = 10 * MS
    """ts_recv may trail ts_event by this much (venue clock ahead of ours) before alarming."""
    max_error_us: int = 100_000
    """Alarm when the kernel's maxerror exceeds this (100 ms)."""
    jump_tolerance_ns: int = 50 * MS
    """A change of wall − monotonic beyond this between two samples is a step (jump)."""
    max_drift_ppm: float = 500.0
    """Slew beyond the kernel's own max (500 ppm) means something else moves the clock."""


def alarms(
    policy: ClockPolicy,
    kernel: KernelClock | None,
    negatives: int,
    jumps: int,
    drift_ppm: float | None,
) -> list[str]:
    """Every clock problem in words, empty when the clock is trustworthy (pure)."""
    out = []
    if kernel is not None:
        if not kernel.synced:
            out.append(f"kernel clock unsynchronized ({kernel.state}, status={kernel.status:#x})")
        if kernel.maxerror_us > policy.max_error_us:
            out.append(f"kernel maxerror {kernel.maxerror_us / 1000:g} ms")
    if negatives:
        tol = policy.negative_tolerance_ns / MS
        out.append(f"{negatives} record(s) with latency below -{tol:g} ms")
    if jumps:
        out.append(f"wall clock jumped {jumps} time(s)")
    if drift_ppm is not None and abs(drift_ppm) > policy.max_drift_ppm:
        out.append(f"wall/monotonic drift {drift_ppm:.0f} ppm")
    return out


@dataclass
class DriftTracker:
    """wall − monotonic over time: jumps (steps) and the slew rate between them (pure)."""

    jump_tolerance_ns: int = 50 * MS
    jumps: int = 0
    last_jump_ns: int = 0
    drift_ppm: float | None = None
    _first: tuple[int, int] | None = None
    _last: tuple[int, int] | None = None

    def sample(self, wall_ns: int, mono_ns: int) -> int:
        """Add a sample; returns the jump seen since the previous one (0 if none)."""
        offset = wall_ns - mono_ns
        jump = 0
        if self._last is not None:
            delta = offset - self._last[1]
            if abs(delta) > self.jump_tolerance_ns:
                jump = delta
                self.jumps += 1
                self.last_jump_ns = delta
                self._first = None  # slew is measured between jumps
        if self._first is None:
            self._first = (mono_ns, offset)
        elif mono_ns > self._first[0]:
            elapsed = mono_ns - self._first[0]
            self.drift_ppm = (offset - self._first[1]) / elapsed * 1e6
        self._last = (mono_ns, offset)
        return jump

    @property
    def offset_ns(self) -> int | None:
        return None if self._last is None else self._last[1]


def raw_monotonic_ns() -> int:
    """The undisciplined oscillator (CLOCK_MONOTONIC_RAW) where the OS has it.

    CLOCK_MONOTONIC is steered by NTP exactly like the wall clock, so wall − monotonic
    only shows steps; against the raw clock it also shows how hard NTP is steering."""
    raw = getattr(time, "CLOCK_MONOTONIC_RAW", None)
    return time.clock_gettime_ns(raw) if raw is not None else time.monotonic_ns()


# --- the monitor (per feed) -----------------------------------------------------------

_BOUNDS_NS = [round(b * 1e9) for b in LATENCY_BUCKETS]


@dataclass
class ClockMonitor:
    """Per-feed latency histogram + clock detectors; register it to export metrics."""

    feed: str
    policy: ClockPolicy = field(default_factory=ClockPolicy)
    counts: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS_NS) + 1))
    total: int = 0
    sum_ns: int = 0
    negatives: int = 0
    min_ns: int | None = None
    last_negative_ns: int = 0
    kernel: KernelClock | None = None
    drift: DriftTracker = field(default_factory=DriftTracker)
    _window_negatives: int = 0

    def __post_init__(self) -> None:
        self.drift.jump_tolerance_ns = self.policy.jump_tolerance_ns

    def observe(self, ts_recv_ns: int, ts_event_ns: int) -> int:
        """One record's latency (skip records without a venue time: ts_event 0)."""
        latency = ts_recv_ns - ts_event_ns
        self.observe_latencies((latency,))
        return latency

    def observe_latencies(self, latencies: Sequence[int]) -> None:
        """Latencies (ts_recv − ts_event) of the records derived together, at once: sorted
        (in C), each bucket's count is where its bound falls, so a socket read's tens of
        records cost about a bisection per bucket; negative latencies, rare, are looked at
        in arrival order only when present."""
        if not latencies:
            return
        ordered = sorted(latencies)
        counts, below, taken = self.counts, bisect.bisect_right, 0
        for index, bound in enumerate(_BOUNDS_NS):
            upto = below(ordered, bound, taken)
            if upto != taken:
                counts[index] += upto - taken
                taken = upto
        counts[-1] += len(ordered) - taken
        self.total += len(ordered)
        self.sum_ns += sum(ordered)
        low = ordered[0]
        if self.min_ns is None or low < self.min_ns:
            self.min_ns = low
        tolerance = -self.policy.negative_tolerance_ns
        if low < tolerance:
            negative = [latency for latency in latencies if latency < tolerance]
            self.negatives += len(negative)
            self._window_negatives += len(negative)
            self.last_negative_ns = negative[-1]

    def sample(
        self,
        wall_ns: int | None = None,
        mono_ns: int | None = None,
        kernel: KernelClock | bool | None = True,
    ) -> dict[str, Any]:
        """Periodic check (every few seconds): drift sample (wall against the raw monotonic
        clock), kernel state, then `status()`; negatives are counted per call window.
        kernel=True reads adjtimex; pass a KernelClock (tests) or None to skip it."""
        self.drift.sample(
            time.time_ns() if wall_ns is None else wall_ns,
            raw_monotonic_ns() if mono_ns is None else mono_ns,
        )
        self.kernel = kernel_clock() if kernel is True else (kernel or None)
        status = self.status()
        self._window_negatives = 0
        return status

    def quantile_ns(self, q: float) -> int | None:
        """Upper bound of the bucket holding quantile q (None without data; +Inf = -1)."""
        if not self.total:
            return None
        rank = q * self.total
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return _BOUNDS_NS[i] if i < len(_BOUNDS_NS) else -1
        return -1

    def status(self) -> dict[str, Any]:
        """The clock part of the component heartbeat (`ssmd status`)."""
        found = alarms(
            self.policy, self.kernel, self._window_negatives, self.drift.jumps, self.drift.drift_ppm
        )
        kernel = self.kernel
        return {
            "ok": not found,
            "alarms": found,
            "kernel": None
            if kernel is None
            else {
                "synced": kernel.synced,
                "state": kernel.state,
                "maxerror_ms": kernel.maxerror_us / 1000,
                "esterror_ms": kernel.esterror_us / 1000,
            },
            "latency": {
                "count": self.total,
                "p50_ms": _ms(self.quantile_ns(0.5)),
                "p99_ms": _ms(self.quantile_ns(0.99)),
                "min_ms": _ms(self.min_ns),
                "negative": self.negatives,
            },
            "drift": {
                "jumps": self.drift.jumps,
                "last_jump_ms": self.drift.last_jump_ns / MS,
                "drift_ppm": self.drift.drift_ppm,
            },
        }

    def register(self, registry: CollectorRegistry) -> ClockMonitor:
        registry.register(_Collector(self))
        return self


def _ms(ns: int | None) -> float | None:
    return None if ns is None else ns / MS


class _Collector:
    """Exports a ClockMonitor at scrape time."""

    def __init__(self, monitor: ClockMonitor) -> None:
        self.m = monitor

    def collect(self) -> Iterator[Any]:
        m = self.m
        feed = [m.feed]
        hist = HistogramMetricFamily(
            "ssmd_feed_latency_seconds",
            "ts_recv - ts_event per record (network + venue delay + clock offset)",
            labels=["feed"],
        )
        buckets, cum = [], 0
        for bound, count in zip(LATENCY_BUCKETS, m.counts, strict=False):
            cum += count
            buckets.append((repr(float(bound)), cum))
        buckets.append(("+Inf", m.total))
        hist.add_metric(feed, buckets, m.sum_ns / 1e9)
        yield hist
        neg = CounterMetricFamily(
            "ssmd_clock_negative_latency",
            "Records whose ts_recv is earlier than ts_event beyond the tolerance",
            labels=["feed"],
        )
        neg.add_metric(feed, m.negatives)
        yield neg
        jumps = CounterMetricFamily(
            "ssmd_clock_wall_jumps", "Steps of the wall clock against the monotonic clock"
        )
        jumps.add_metric([], m.drift.jumps)
        yield jumps
        gauges: list[tuple[str, str, float | None]] = [
            ("ssmd_clock_ok", "1 when no clock alarm is raised", float(m.status()["ok"])),
            (
                "ssmd_clock_drift_ppm",
                "Slew of wall against monotonic since the last jump",
                m.drift.drift_ppm,
            ),
        ]
        if m.kernel is not None:
            k = m.kernel
            gauges += [
                ("ssmd_clock_unsynchronized", "Kernel STA_UNSYNC/TIME_ERROR", float(not k.synced)),
                ("ssmd_clock_maxerror_seconds", "Kernel maxerror", k.maxerror_us / 1e6),
                ("ssmd_clock_esterror_seconds", "Kernel esterror", k.esterror_us / 1e6),
            ]
        for name, doc, value in gauges:
            if value is not None:
                g = GaugeMetricFamily(name, doc)
                g.add_metric([], value)
                yield g
