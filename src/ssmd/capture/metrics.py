"""A connector's Prometheus metrics, read from its state at scrape time (no hot-path cost)."""

from __future__ import annotations

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
        for link in c.links:
            conn = [*at, str(link.index)]
            frames.add_metric(conn, link.frames_in)
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
        yield from (frames, up, live, records, acked, pending)


def connector_registry(connector: Connector) -> CollectorRegistry:
    reg = registry()
    reg.register(ConnectorCollector(connector))  # type: ignore[arg-type]
    connector.clock.register(reg)
    return reg
