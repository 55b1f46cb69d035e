"""Driving `ssmd tui` headless: the screen as text, waiting for refreshes."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console
from textual.pilot import Pilot

from ssmd.tui.app import SsmdTui


def screen_text(app: SsmdTui) -> str:
    """What the terminal shows now, as plain text (what export_screenshot draws)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text()


async def until(pilot: Pilot, check: Callable[[], object], timeout: float = 20.0) -> None:
    """Let the app run until `check()` is true (refreshes run on worker threads)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s; screen:\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


async def refreshed(pilot: Pilot, after: int | None = None) -> None:
    """Wait for a refresh that started after now (or the first one)."""
    app = pilot.app
    assert isinstance(app, SsmdTui)
    target = (app.refreshes if after is None else after) + 1
    await until(pilot, lambda: app.refreshes >= target)


async def started(pilot: Pilot) -> None:
    """Wait until the first snapshot is on screen (not just applied) with the footer."""
    app = pilot.app
    assert isinstance(app, SsmdTui)
    await until(pilot, lambda: app.snapshot is not None)
    await until(pilot, lambda: "x quit" in (text := screen_text(app)) and "loading" not in text)


async def shown(pilot: Pilot, *texts: str) -> None:
    """Wait until every text is on screen (a key press redraws on a later frame)."""

    def on_screen() -> bool:
        screen = screen_text(pilot.app)
        return all(t in screen for t in texts)

    await until(pilot, on_screen)
