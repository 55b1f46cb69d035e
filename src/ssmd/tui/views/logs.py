"""l — the tail of each service's log under {data_dir}/logs (what `ssmd up` writes);
←/→ switch between logs."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Log, Static

from ssmd.tui.format import RateHistory
from ssmd.tui.snapshot import Snapshot
from ssmd.tui.views.common import View


class Logs(View):
    DEFAULT_CSS = """
    Logs #log { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "step(-1)", "prev log", priority=True),  # before the Log's scrolling
        Binding("right", "step(1)", "next log", priority=True),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="which")
        yield Log(id="log", auto_scroll=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names: list[str] = []
        self.current = ""
        self.texts: dict[str, str] = {}
        self.shown: tuple[str, str] | None = None

    def show(self, snap: Snapshot, history: RateHistory) -> None:
        self.names = sorted(snap.logs)
        self.texts = dict(snap.logs)
        if self.current not in self.texts:
            self.current = self.names[0] if self.names else ""
        self._render_log(force=False)

    def action_step(self, delta: int) -> None:
        if self.names:
            i = (self.names.index(self.current) + delta) % len(self.names)
            self.current = self.names[i]
            self._render_log(force=True)

    def _render_log(self, force: bool) -> None:
        which = self.query_one("#which", Static)
        log = self.query_one("#log", Log)
        if not self.names:
            which.update("logs: none here (they are in {data_dir}/logs of the local stack)")
            log.clear()
            return
        pos = f"{self.names.index(self.current) + 1}/{len(self.names)}"
        which.update(f"log {self.current}.log ({pos}) · ←/→ other logs")
        text = self.texts[self.current]
        if force or self.shown != (self.current, text):
            log.clear()
            log.write_lines(text.splitlines())
            self.shown = (self.current, text)
