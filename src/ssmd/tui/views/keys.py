"""c — clients and their API keys. r revokes the selected key and n creates one (the app
runs them, after a confirmation, through `ssmd key`'s own code: audited)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from ssmd.tui.format import RateHistory, age, day_time
from ssmd.tui.snapshot import Snapshot
from ssmd.tui.views.common import View, fill, table


class Keys(View):
    DEFAULT_CSS = """
    Keys #client-table { height: 7; }
    Keys #key-table { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "app.revoke_key", "revoke"),
        Binding("n", "app.create_key", "new"),
    ]

    def compose(self) -> ComposeResult:
        yield table("client", "type", "scopes", "active", "live keys", id="client-table")
        yield table("key id", "client", "scopes", "state", "created UTC", "used", id="key-table")

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        now = snap.taken_ns
        live = {c.id: 0 for c in snap.clients}
        for k in snap.keys:
            if k.state(now) in ("active", "grace"):
                live[k.client_id] = live.get(k.client_id, 0) + 1
        if snap.pg_error:
            fill(
                self.query_one("#client-table", DataTable),
                [("pg", ["Postgres unreachable", "", "", "", ""])],
            )
        else:
            fill(
                self.query_one("#client-table", DataTable),
                [
                    (
                        c.id,
                        [
                            c.id,
                            c.type,
                            ",".join(c.scopes),
                            "yes" if c.active else "no",
                            live.get(c.id, 0),
                        ],
                    )
                    for c in snap.clients
                ],
            )
        fill(
            self.query_one("#key-table", DataTable),
            [
                (
                    k.key_id,
                    [
                        k.key_id,
                        k.client_id,
                        ",".join(k.scopes),
                        k.state(now),
                        day_time(k.created_ns),
                        age(k.last_used_ns, now),
                    ],
                )
                for k in snap.keys
            ],
        )

    def selected_key(self) -> str | None:
        """The key id under the cursor of the keys table."""
        keys = self.query_one("#key-table", DataTable)
        if not keys.row_count:
            return None
        return keys.coordinate_to_cell_key(keys.cursor_coordinate).row_key.value

    def focus_keys(self) -> None:
        self.query_one("#key-table", DataTable).focus()
