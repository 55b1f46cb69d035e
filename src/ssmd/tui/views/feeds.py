"""f — one feed at a time: its instruments, its shards (connector heartbeats) with rate
sparklines, and the recent gaps its shards reported."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from ssmd.tui.format import (
    RateHistory,
    clock,
    clock_status,
    connections,
    health,
    lag,
    rate,
    spark,
)
from ssmd.tui.snapshot import FeedInfo, Snapshot
from ssmd.tui.views.common import View, fill, table


def shards_of(snap: Snapshot, feed: str) -> list[dict[str, Any]]:
    """The connector heartbeats of a feed, by shard."""
    found = [
        c for c in snap.components if c.get("component") == "connector" and c.get("feed") == feed
    ]
    return sorted(found, key=lambda c: str(c.get("shard")))


def feed_rate(shards: list[dict[str, Any]]) -> float:
    return sum(float(c.get("records_per_s") or 0) for c in shards if not c.get("stale"))


def gaps_text(shards: list[dict[str, Any]]) -> str:
    """Newest gap first, one line each (the heartbeat keeps each shard's last one)."""
    gaps = sorted(
        (
            (c.get("last_gap") or {}) | {"shard": c.get("shard")}
            for c in shards
            if c.get("last_gap")
        ),
        key=lambda g: -int(g.get("ts") or 0),
    )
    if not gaps:
        return "recent gaps: none reported"
    lines = [
        f"  {clock(g.get('ts'))} shard {g['shard']} {g.get('reason', '')} "
        f"{g.get('symbol', '')} {g.get('detail', '')}".rstrip()
        for g in gaps
    ]
    return "recent gaps:\n" + "\n".join(lines)


def instruments_text(feed: FeedInfo) -> str:
    if feed.selector:
        return f"instruments: secmaster selector {feed.selector}"
    return f"instruments ({len(feed.instruments)}): {' '.join(feed.instruments) or '-'}"


class Feeds(View):
    DEFAULT_CSS = """
    Feeds #feed-table { height: 6; }
    Feeds #shards { height: 1fr; }
    Feeds #gaps { height: auto; max-height: 6; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._snap: Snapshot | None = None
        self._history: RateHistory | None = None

    def compose(self) -> ComposeResult:
        yield table("feed", "venue", "on", "shards", "instr", "rec/s", "rate", id="feed-table")
        yield Static(id="instruments")
        yield table("shard", "health", "conns", "rec/s", "lag", "clock", "rate", id="shards")
        yield Static(id="gaps")

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        self._snap, self._history = snap, history
        rows = []
        for f in snap.feeds:
            shards = shards_of(snap, f.name)
            line = [history.of(str(c["key"])) for c in shards]
            summed = [sum(v) for v in zip(*line, strict=False)] if line else []
            rows.append(
                (
                    f.name,
                    [
                        f.name,
                        f.venue,
                        "yes" if f.enabled else "no",
                        f.shards,
                        len(f.instruments),
                        rate(feed_rate(shards)),
                        spark(summed),
                    ],
                )
            )
        if not rows:
            why = "Postgres unreachable" if snap.pg_error else "no applied definition"
            rows = [("none", [why, "", "", "", "", "", ""])]
        fill(self.query_one("#feed-table", DataTable), rows)
        self._detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "feed-table":
            self._detail()

    def _detail(self) -> None:
        snap, history = self._snap, self._history
        if snap is None or history is None:
            return
        feeds = self.query_one("#feed-table", DataTable)
        index = min(max(feeds.cursor_row, 0), len(snap.feeds) - 1)
        if not snap.feeds:
            self.query_one("#instruments", Static).update("")
            self.query_one("#gaps", Static).update("")
            fill(self.query_one("#shards", DataTable), [])
            return
        feed = snap.feeds[index]
        shards = shards_of(snap, feed.name)
        self.query_one("#instruments", Static).update(f"{feed.name} " + instruments_text(feed))
        fill(
            self.query_one("#shards", DataTable),
            [
                (
                    str(c["key"]),
                    [
                        c.get("shard"),
                        health(c),
                        connections(c),
                        rate(c.get("records_per_s")),
                        lag(c),
                        clock_status(c),
                        spark(history.of(str(c["key"])), 20),
                    ],
                )
                for c in shards
            ],
        )
        self.query_one("#gaps", Static).update(gaps_text(shards))
