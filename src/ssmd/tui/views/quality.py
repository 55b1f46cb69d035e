"""q — data quality: per component health, last gap and clock alarms from the heartbeats,
then the open feedback reports (what agents and users flagged, deduplicated)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from ssmd.tui.format import RateHistory, age, clock_status, gap, health, name
from ssmd.tui.snapshot import Snapshot
from ssmd.tui.views.common import View, fill, table


class Quality(View):
    DEFAULT_CSS = """
    Quality DataTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield table("component", "health", "last gap (age)", "clock", id="health")
        yield Static(id="issues-title")
        yield table("id", "kind", "feed", "symbol", "n", "seen", "status", "summary", id="issues")

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        now = snap.taken_ns
        rows = [
            (str(c["key"]), [name(c), health(c), gap(c, now) or "-", clock_status(c, full=True)])
            for c in snap.components
        ]
        if snap.nats_error:
            rows = [("nats", ["nats", "unreachable", "", ""])]
        fill(self.query_one("#health", DataTable), rows)  # type: ignore[arg-type]
        title = (
            "feedback: Postgres unreachable"
            if snap.pg_error
            else f"open feedback reports: {len(snap.issues)}"
        )
        self.query_one("#issues-title", Static).update(title)
        fill(
            self.query_one("#issues", DataTable),
            [
                (
                    str(i["id"]),
                    [
                        i["id"],
                        i["subtype"] or i["kind"],
                        i["feed"] or "-",
                        i["symbol"] or "-",
                        i["count"],
                        age(i["last_seen_ns"], snap.taken_ns),
                        i["status"],
                        i["summary"],
                    ],
                )
                for i in snap.issues
            ],
        )
