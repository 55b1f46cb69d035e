"""s — where the bytes are: the local journal, the object store (segment catalog), Postgres
and JetStream, with the shipper's backlog (segments not yet verified in the store)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from ssmd.tui.format import RateHistory, human_bytes
from ssmd.tui.snapshot import Snapshot
from ssmd.tui.views.common import View, fill, table


def tier_rows(snap: Snapshot) -> list[tuple[str, list[object]]]:
    s, seg, js = snap.storage, snap.segments, snap.jetstream
    local = "no data dir here" if not s else ""
    pg = "unreachable" if snap.pg_error else ""
    nats = "unreachable" if snap.nats_error else ""
    return [
        ("journal", ["journal (local raw)", human_bytes(s.get("journal_bytes")), local]),
        ("objects", ["object store (local)", human_bytes(s.get("objects_bytes")), local]),
        (
            "shipped",
            [
                "segments shipped",
                human_bytes(seg.verified_bytes) if not pg else "-",
                pg or f"{seg.verified:,} verified in the store",
            ],
        ),
        (
            "backlog",
            [
                "segments waiting",
                "-",
                pg or f"{seg.pending:,} pending, {seg.quarantined:,} quarantined",
            ],
        ),
        ("postgres", ["postgres (local)", human_bytes(s.get("postgres_bytes")), local]),
        (
            "jetstream",
            [
                "JetStream file",
                "-" if nats else human_bytes(js.storage_bytes),
                nats or f"memory {human_bytes(js.memory_bytes)}",
            ],
        ),
    ]


def shipper_line(snap: Snapshot) -> str:
    if snap.nats_error:
        return "shipper: unknown (NATS unreachable)"
    ship = next((c for c in snap.components if c.get("component") == "shipper"), None)
    if ship is None:
        return "shipper: no heartbeat"
    state = "STALE" if ship.get("stale") else ship.get("state", "?")
    error = ship.get("last_error") or ""
    return (
        f"shipper: {state} · {ship.get('pending', 0)} pending "
        f"({human_bytes(ship.get('pending_bytes'))})" + (f" · {error}" if error else "")
    )


class Storage(View):
    DEFAULT_CSS = """
    Storage #tiers { height: 8; }
    Storage #streams { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield table("tier", "size", "detail", id="tiers")
        yield Static(id="shipper")
        yield table("JetStream stream", "messages", "size", "consumers", id="streams")

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        fill(self.query_one("#tiers", DataTable), tier_rows(snap))  # type: ignore[arg-type]
        self.query_one("#shipper", Static).update(shipper_line(snap))
        fill(
            self.query_one("#streams", DataTable),
            [
                (s.name, [s.name, f"{s.messages:,}", human_bytes(s.bytes), s.consumers])
                for s in snap.jetstream.streams
            ],
        )
