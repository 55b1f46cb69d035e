"""The shipper as a service: passes on a timer, capped backoff through outages, metrics
(`/metrics`, `/healthz`, `/readyz`) and a KV status heartbeat.

Passes run in a worker thread (obstore and psycopg block); `stop` is checked between
segments, so SIGTERM lets the segment in flight finish its upload, verification and
catalog record — nothing is ever half-recorded — and then the service returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ssmd.ops.metrics import registry
from ssmd.storage.shipper import PassReport, Progress, Shipper

__all__ = ["Backoff", "GaveUp", "ServiceOptions", "health", "run_service", "shipper_registry"]

log = logging.getLogger("ssmd.shipper")


class GaveUp(RuntimeError):
    """--once could not finish within its deadline (the store or Postgres stayed down)."""

    def __init__(self, report: PassReport) -> None:
        super().__init__(report.error)
        self.report = report


class Backoff:
    """Exponential delays, initial·2^n, capped; `reset()` after a good pass."""

    def __init__(self, initial: float = 1.0, cap: float = 60.0) -> None:
        self.initial, self.cap = initial, cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.initial


@dataclass(frozen=True)
class ServiceOptions:
    once: bool = False
    """One complete pass (retrying through outages), then return."""
    interval_s: float = 10.0
    """Between passes when all went well."""
    backoff_initial_s: float = 1.0
    backoff_cap_s: float = 60.0
    give_up_s: float = 600.0
    """--once only: raise GaveUp after this long without a complete pass."""


class _Collector(Collector):
    """Reads the shipper's counters at scrape time (no second bookkeeping)."""

    def __init__(self, shipper: Shipper, state: dict[str, Any]) -> None:
        self.shipper = shipper
        self.state = state

    def collect(self) -> Iterator[Metric]:
        s = self.shipper
        seg = CounterMetricFamily(
            "ssmd_shipper_segments", "Segments handled, by outcome.", labels=["outcome"]
        )
        for outcome, n in sorted(s.totals.items()):
            seg.add_metric([outcome], n)
        yield seg
        yield CounterMetricFamily(
            "ssmd_shipper_uploaded_bytes", "Bytes uploaded.", value=s.bytes_uploaded
        )
        yield CounterMetricFamily(
            "ssmd_shipper_store_errors", "Passes ended by a store error.", value=s.store_errors
        )
        last = s.last
        yield GaugeMetricFamily(
            "ssmd_shipper_backlog_segments", "Closed segments not yet verified.", last.pending
        )
        yield GaugeMetricFamily(
            "ssmd_shipper_backlog_bytes", "Bytes of those segments.", last.pending_bytes
        )
        oldest = last.oldest_pending_ns
        age = (time.time_ns() - oldest) / 1e9 if oldest else 0.0
        yield GaugeMetricFamily(
            "ssmd_shipper_oldest_pending_age_seconds",
            "Age of the oldest unverified closed segment (0 = none).",
            age,
        )
        yield GaugeMetricFamily(
            "ssmd_shipper_last_pass_timestamp_seconds",
            "When the last pass ended.",
            s.last_pass_ns / 1e9,
        )
        yield GaugeMetricFamily(
            "ssmd_shipper_up", "1 when the last pass reached the store and Postgres.", last.ok
        )


def shipper_registry(shipper: Shipper, state: dict[str, Any] | None = None) -> CollectorRegistry:
    reg = registry()
    reg.register(_Collector(shipper, state or {}))
    return reg


def health(shipper: Shipper, stale_after_s: float) -> tuple[bool, dict[str, object]]:
    """Live while passes keep ending (even failing ones): a stuck thread is unhealthy."""
    age = (time.time_ns() - shipper.last_pass_ns) / 1e9 if shipper.last_pass_ns else 0.0
    ok = age <= stale_after_s
    return ok, {"last_pass_age_s": round(age, 3), "error": shipper.last.error}


def ready(shipper: Shipper) -> tuple[bool, dict[str, object]]:
    """Ready when the last pass reached the store and Postgres."""
    last = shipper.last
    return last.ok, {"pending": last.pending, "error": last.error}


def status_document(shipper: Shipper) -> dict[str, Any]:
    """What the KV heartbeat carries (what `ssmd status` shows)."""
    last = shipper.last
    return {
        "state": "ok" if last.ok else "degraded",
        "pending": last.pending,
        "pending_bytes": last.pending_bytes,
        "oldest_pending_ns": last.oldest_pending_ns,
        "totals": dict(shipper.totals),
        "uploaded_bytes": shipper.bytes_uploaded,
        "last_error": last.error,
        "last_pass_ns": shipper.last_pass_ns,
    }


async def run_service(
    shipper: Shipper,
    stop: asyncio.Event,
    options: ServiceOptions,
    progress: Progress | None = None,
) -> PassReport:
    """Passes until `stop` (or, with `once`, until one completes). Returns the summary of
    everything done; raises GaveUp when --once cannot complete before its deadline."""
    halt = threading.Event()
    waiter = asyncio.ensure_future(stop.wait())
    waiter.add_done_callback(lambda _f: halt.set())
    backoff = Backoff(options.backoff_initial_s, options.backoff_cap_s)
    summary = PassReport()
    started = time.monotonic()
    try:
        while not stop.is_set():
            report = await asyncio.to_thread(shipper.run_pass, halt, progress)
            summary.merge(report)
            if report.ok:
                backoff.reset()
                if options.once:
                    break
                delay = options.interval_s
            else:
                delay = backoff.next()
                if options.once and time.monotonic() - started + delay > options.give_up_s:
                    raise GaveUp(summary)
                log.warning("retrying in %.1fs", delay, extra={"error": report.error})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), delay)
    finally:
        waiter.cancel()
    return summary
