"""A connector's Prometheus metrics, read from its state at scrape time (no hot-path cost),
and an optional frame → ack latency probe."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ssmd.ops.metrics import registry

if TYPE_CHECKING:
    from ssmd.capture.connector import Connector


class ConnectorCollector:
    def __init__(self, connector: Connector) -> None:
        self.connector = connector

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        c = self.connector
        labels = ["feed", "shard"]
        at = [c.feed_name, str(c.shard)]
        frames = CounterMetricFamily(
            "ssmd_frames_in", "Frames received from the venue.", labels=[*labels, "conn"]
        )
        up = GaugeMetricFamily(
            "ssmd_connection_up", "1 while the connection is open.", labels=[*labels, "conn"]
        )
        live = GaugeMetricFamily(
            "ssmd_connection_live",
            "1 while records are derived live (0: catching up from the journal).",
            labels=[*labels, "conn"],
        )
        lags = CounterMetricFamily(
            "ssmd_connection_lags",
            "Times the connection fell back to deriving from the journal (outbox full).",
            labels=[*labels, "conn"],
        )
        for link in c.links:
            conn = [*at, str(link.index)]
            frames.add_metric(conn, link.frames_in)
            lags.add_metric(conn, link.lags)
            up.add_metric(conn, 1.0 if link.session and link.session.connected else 0.0)
            live.add_metric(conn, 1.0 if link.live else 0.0)
        records = CounterMetricFamily(
            "ssmd_records", "Normalized records derived.", labels=[*labels, "type"]
        )
        for kind, n in sorted(c.records.items()):
            records.add_metric([*at, kind], n)
        outbox = c.outbox
        acked = CounterMetricFamily(
            "ssmd_records_acked", "Records acked by JetStream.", labels=labels
        )
        acked.add_metric(at, outbox.acked if outbox else 0)
        pending = GaugeMetricFamily(
            "ssmd_records_pending", "Records queued or in flight to JetStream.", labels=labels
        )
        pending.add_metric(at, outbox.pending if outbox else 0)
        cpu = CounterMetricFamily(
            "ssmd_connector_cpu_seconds",
            "CPU seconds the connector process used; its rate near 1 means its one core is "
            "full (add a shard).",
            labels=labels,
        )
        cpu.add_metric(at, time.process_time())
        yield from (frames, up, live, lags, records, acked, pending, cpu)


def connector_registry(connector: Connector) -> CollectorRegistry:
    reg = registry()
    reg.register(ConnectorCollector(connector))  # type: ignore[arg-type]
    connector.clock.register(reg)
    return reg


class AckLatency:
    """Frame read → JetStream ack of its last record, in ns (a benchmark/diagnostic probe).

    The outbox calls `frame(total_put, ts_recv)` after queueing a frame's records and
    `acked(total_acked)` as acks arrive in order; a frame is done when the ack count
    passes the count its last record was queued at. Off (None on the outbox) by default,
    so the hot path pays one `is None` test per batch; when on, samples are kept up to
    `limit` (plain ints: percentiles are exact).
    """

    def __init__(self, limit: int = 2_000_000) -> None:
        self.limit = limit
        self.samples: list[int] = []
        self._marks: deque[tuple[int, int]] = deque()

    def frame(self, mark: int, ts_recv: int) -> None:
        self._marks.append((mark, ts_recv))

    def acked(self, count: int) -> None:
        marks = self._marks
        if not marks or marks[0][0] > count:
            return
        now = time.time_ns()
        samples = self.samples
        while marks and marks[0][0] <= count:
            _, ts = marks.popleft()
            if len(samples) < self.limit:
                samples.append(now - ts)

    def reset(self) -> None:
        """Forget samples so far (e.g. after a warm-up); frames in flight still count."""
        self.samples = []

    def percentiles(self, *qs: float) -> dict[str, float]:
        """{"p50_ms": …} for each q in (0, 100], plus count and max."""
        data = sorted(self.samples)
        if not data:
            return {"count": 0}
        out: dict[str, float] = {"count": len(data)}
        for q in qs:
            i = min(len(data) - 1, max(0, int(len(data) * q / 100 + 0.5) - 1))
            out[f"p{q:g}_ms"] = round(data[i] / 1e6, 3)
        out["max_ms"] = round(data[-1] / 1e6, 3)
        return out
