"""The `ssmd tui` application: a status bar, one screen at a time, keys in the footer.

Why a timer that starts one thread worker per refresh (and skips a tick while one is
still running): Postgres and NATS calls block, and an unreachable server can take its
whole connect timeout; the UI thread only ever applies finished snapshots, so it never
freezes, and a slow server can never pile up refreshes.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import ContentSwitcher, Footer, Static
from textual.worker import Worker, WorkerState

from ssmd.meta.keys import IssuedKey
from ssmd.tui.actions import create_key, revoke_key
from ssmd.tui.format import RateHistory, clock
from ssmd.tui.snapshot import Snapshot, Sources, gather
from ssmd.tui.views.common import View
from ssmd.tui.views.feeds import Feeds
from ssmd.tui.views.help import Help
from ssmd.tui.views.keys import Keys
from ssmd.tui.views.logs import Logs
from ssmd.tui.views.modals import Confirm, CreateKey, Secret
from ssmd.tui.views.overview import Overview
from ssmd.tui.views.quality import Quality
from ssmd.tui.views.storage import Storage

REFRESH_S = 2.0
MODAL_BLOCKED = {"view", "leave", "revoke_key", "create_key"}


def bar_text(snap: Snapshot | None, sources: Sources) -> str:
    """The top line: which environment, which version, which dependency is down."""
    if snap is None:
        return f"ssmd {sources.env} · loading…"
    version = "-" if snap.version is None else f"v{snap.version}"
    nats = "UNREACHABLE" if snap.nats_error else "ok"
    pg = "UNREACHABLE" if snap.pg_error else "ok"
    return f"ssmd {snap.env} · definition {version} · NATS {nats} · Postgres {pg} · " + clock(
        snap.taken_ns
    )


class SsmdTui(App[None]):
    TITLE = "ssmd"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #bar { dock: top; height: 1; padding: 0 1; background: $primary-background; }
    ContentSwitcher { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "view('overview')", "home"),
        Binding("f", "view('feeds')", "feeds"),
        Binding("c", "view('keys')", "keys"),
        Binding("s", "view('storage')", "storage"),
        Binding("q", "view('quality')", "quality"),
        Binding("l", "view('logs')", "logs"),
        Binding("question_mark", "view('help')", "help", key_display="?"),
        Binding("x", "leave", "quit"),
    ]

    def __init__(self, sources: Sources, *, actor: str, interval: float = REFRESH_S) -> None:
        super().__init__()
        self.sources = sources
        self.actor = actor
        self.interval = interval
        self.snapshot: Snapshot | None = None
        self.history = RateHistory()
        self.refreshes = 0
        self._refreshing = False
        # kept, not queried: while a dialog is open, queries search the dialog's screen
        self.bar = Static(bar_text(None, sources), id="bar")
        self.keys = Keys(id="keys")
        self.views: dict[str, View] = {
            "overview": Overview(id="overview"), "feeds": Feeds(id="feeds"), "keys": self.keys,
            "storage": Storage(id="storage"), "quality": Quality(id="quality"),
            "logs": Logs(id="logs"), "help": Help(id="help"),
        }  # fmt: skip
        self.switcher = ContentSwitcher(*self.views.values(), initial="overview")

    def compose(self) -> ComposeResult:
        yield self.bar
        yield self.switcher
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_now()
        self.set_interval(self.interval, self.refresh_now)

    # -- data -------------------------------------------------------------------------

    def refresh_now(self) -> None:
        """Start a refresh unless one is running (a slow server must not queue them)."""
        if not self._refreshing:
            self._refreshing = True
            self.run_worker(
                partial(gather, self.sources), thread=True, group="refresh", exit_on_error=False
            )

    def apply(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.history.add(snap)
        self.refreshes += 1
        self.bar.update(bar_text(snap, self.sources))
        for view in self.views.values():
            view.show(snap, self.history)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker, state = event.worker, event.state
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR) or not self.is_running:
            return  # (a refresh that ends while the app shuts down has nowhere to go)
        if worker.group == "refresh":
            self._refreshing = False
            if state == WorkerState.SUCCESS:
                self.apply(worker.result)
            else:
                self.notify(f"refresh failed: {worker.error}", severity="error", markup=False)
            return
        if state == WorkerState.ERROR:
            self.notify(str(worker.error), title=f"{worker.group} failed", severity="error",
                        markup=False)  # fmt: skip
        elif worker.group == "revoke":
            key = worker.result
            self.notify(f"revoked key {key.key_id} (client {key.client_id})")
        elif worker.group == "create":
            issued: IssuedKey = worker.result
            k = issued.key
            about = (
                f"Created key {k.key_id} for client {k.client_id}, scopes {', '.join(k.scopes)}."
            )
            self.push_screen(Secret(issued.token, about))
        self.refresh_now()

    # -- navigation -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Screen keys do nothing while a dialog is open (it has the operator's answer)."""
        return not (action in MODAL_BLOCKED and len(self.screen_stack) > 1)

    def action_leave(self) -> None:
        """x quits, but not from a dialog: a stray x must not lose a secret shown once."""
        self.exit()

    def action_view(self, name: str) -> None:
        self.switcher.current = name
        view = self.views[name]
        if isinstance(view, Keys):
            view.focus_keys()
        else:
            scrollable = view.query("DataTable, Log")
            if scrollable:
                scrollable.first().focus()
            else:
                self.set_focus(None)

    # -- key changes ------------------------------------------------------------------

    def action_revoke_key(self) -> None:
        key_id = self.keys.selected_key()
        snap = self.snapshot
        if snap is not None and snap.pg_error:
            self.notify("Postgres unreachable: keys cannot change now", severity="error")
            return
        key = next((k for k in snap.keys if k.key_id == key_id), None) if snap else None
        if key is None or snap is None:
            self.notify("select a key first (c, then ↑/↓)", severity="warning")
            return
        if key.state(snap.taken_ns) == "revoked":
            self.notify(f"key {key.key_id} is already revoked", severity="warning")
            return
        question = (
            f"Revoke key {key.key_id} of client {key.client_id} "
            f"(scopes {', '.join(key.scopes)})?\nIt stops authenticating at once; "
            f"audited as {self.actor}."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                job = partial(revoke_key, self.sources.pg_url, key.key_id, self.actor)
                self.run_worker(job, thread=True, group="revoke", exit_on_error=False)

        self.push_screen(Confirm(question), answered)

    def action_create_key(self) -> None:
        snap = self.snapshot
        active = [c for c in snap.clients if c.active] if snap else []
        if not active:
            self.notify(
                "no active client (Postgres unreachable, or none defined)", severity="warning"
            )
            return

        def chosen(choice: tuple[str, list[str]] | None) -> None:
            if choice is not None:
                client, scopes = choice
                job = partial(
                    create_key, self.sources.pg_url, self.sources.env, client, scopes, self.actor
                )
                self.run_worker(job, thread=True, group="create", exit_on_error=False)

        self.push_screen(CreateKey(active), chosen)
