"""o — the whole system on one screen: processes, every component's heartbeat, the
total rate, storage, and counts that lead to the other screens."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Sparkline, Static

from ssmd.tui.format import (
    RateHistory,
    clock_status,
    connections,
    gap,
    health,
    human_bytes,
    lag,
    name,
    rate,
    total_rate,
)
from ssmd.tui.snapshot import Snapshot
from ssmd.tui.views.common import View, fill, table


def processes_line(snap: Snapshot) -> str:
    if not snap.processes:
        return "processes: no local stack here (state file not found)"
    down = [name for name, running in snap.processes.items() if not running]
    up = len(snap.processes) - len(down)
    line = f"processes: {up}/{len(snap.processes)} up"
    return line + (f" · DOWN: {', '.join(down)}" if down else "")


def storage_line(snap: Snapshot) -> str:
    s = snap.storage
    parts: list[str] = []
    if s:
        parts += [
            f"journal {human_bytes(s.get('journal_bytes'))}",
            f"objects {human_bytes(s.get('objects_bytes'))}",
            f"postgres {human_bytes(s.get('postgres_bytes'))}",
        ]
    if not snap.nats_error:
        parts.append(f"JetStream {human_bytes(snap.jetstream.storage_bytes)}")
    return " · ".join(parts) or "storage: -"


def counts_line(snap: Snapshot) -> str:
    if snap.pg_error:
        return "metadata: Postgres unreachable"
    active = sum(1 for k in snap.keys if k.state(snap.taken_ns) == "active")
    seg = snap.segments
    return (
        f"feeds {len(snap.feeds)} · clients {len(snap.clients)} · active keys {active} · "
        f"issues {len(snap.issues)} · unshipped {seg.pending} · quarantined {seg.quarantined}"
    )


def component_row(c: dict[str, Any], now: int) -> tuple[str, list[object]]:
    cells = [name(c), health(c), connections(c), rate(c.get("records_per_s")), lag(c),
             gap(c, now), clock_status(c)]  # fmt: skip
    return str(c["key"]), cells


class Overview(View):
    DEFAULT_CSS = """
    Overview #components { height: 1fr; }
    Overview Sparkline { height: 2; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="processes")
        columns = ("component", "health", "conns", "rec/s", "lag", "last gap (age)", "clock")
        yield table(*columns, id="components")
        yield Static(id="rate")
        yield Sparkline([], id="spark")
        yield Static(id="storage")
        yield Static(id="counts")

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        self.query_one("#processes", Static).update(processes_line(snap))
        if snap.nats_error:
            rows = [("nats", ["nats", "unreachable", "", "", "", "", ""])]
        else:
            rows = [component_row(c, snap.taken_ns) for c in snap.components]
            if not rows:
                rows = [("none", ["no heartbeats yet", "", "", "", "", "", ""])]
        fill(self.query_one("#components"), rows)  # type: ignore[arg-type]
        if snap.nats_error:
            self.query_one("#rate", Static).update(snap.nats_error)
        else:
            total = f"records/s, all components: {total_rate(snap):,.1f}"
            self.query_one("#rate", Static).update(total)
        spark = self.query_one("#spark", Sparkline)
        spark.data = list(history.total)
        spark.display = len(spark.data) > 1 and max(spark.data) > 0
        self.query_one("#storage", Static).update(storage_line(snap))
        self.query_one("#counts", Static).update(counts_line(snap))
