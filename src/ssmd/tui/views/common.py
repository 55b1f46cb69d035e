"""Pieces every screen uses: a table refilled in place, and a screen's base class."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from textual.containers import Vertical
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from ssmd.tui.format import RateHistory
from ssmd.tui.snapshot import Snapshot

Row = tuple[str, Sequence[object]]
"""(row key, cells)."""


def fill(table: DataTable, rows: list[Row]) -> None:
    """Replace the rows, keeping the cursor on the same row key: a refresh every few
    seconds must not move the selection under the operator's finger."""
    selected = None
    if table.row_count and table.cursor_row >= 0:
        try:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except (RowDoesNotExist, IndexError):
            selected = None
    table.clear()
    for key, cells in rows:
        table.add_row(*(str(c) for c in cells), key=key)
    if selected is not None:
        with contextlib.suppress(RowDoesNotExist, KeyError):
            table.move_cursor(row=table.get_row_index(selected), animate=False)


def table(*columns: str, id: str | None = None) -> DataTable:
    t: DataTable = DataTable(cursor_type="row", zebra_stripes=True, id=id)
    t.add_columns(*columns)
    return t


class View(Vertical):
    """A screen's body; the app calls `show` with every new snapshot."""

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        raise NotImplementedError
