"""Revoking and creating keys from the TUI: the CLI's code paths, audited, in real Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from tests.tui.conftest import ACTOR, World
from tests.tui.helpers import screen_text, shown, started, until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from ssmd.meta import audit, connect, keys
from ssmd.meta.keys import KeyRejected
from ssmd.tui.app import SsmdTui
from ssmd.tui.views.keys import Keys
from ssmd.tui.views.modals import Confirm, CreateKey, Secret


def drive(app: SsmdTui, script: Callable[[Pilot], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await started(pilot)
            await pilot.press("c")
            await pilot.pause(0.1)
            await script(pilot)

    asyncio.run(main())


async def select(pilot: Pilot, key_id: str) -> None:
    """Move the keys table's cursor onto a key."""
    table = pilot.app.query_one("#key-table", DataTable)
    assert table.has_focus
    while pilot.app.query_one(Keys).selected_key() != key_id:
        assert table.cursor_row < table.row_count - 1, f"{key_id} not in the table"
        await pilot.press("down")


def state_in_table(app: SsmdTui, key_id: str) -> str:
    table = app.query_one("#key-table", DataTable)
    return str(table.get_row(key_id)[3])


def test_revoke_after_confirmation_is_the_audited_cli_path(world: World) -> None:
    app = world.app()
    alice = world.key_ids["alice"]

    async def script(pilot: Pilot) -> None:
        await select(pilot, alice)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        await until(pilot, lambda: f"Revoke key {alice} of client alice" in screen_text(app))
        await pilot.press("y")
        await until(pilot, lambda: state_in_table(app, alice) == "revoked")
        assert state_in_table(app, world.key_ids["dev-admin"]) == "active"
        assert app.query_one(Keys).selected_key() == alice  # the refresh kept the cursor

    drive(app, script)
    with connect(world.pg_url) as conn:
        assert keys.get(conn, alice).state(2**62) == "revoked"  # type: ignore[union-attr]
        [entry] = audit.log(conn, action="key.revoke")
        assert (entry.actor, entry.target) == (ACTOR, f"key/{alice}")
        assert entry.details == {"env": "dev", "client": "alice"}
        assert audit.verify(conn).ok


@pytest.mark.parametrize("answer", ["n", "escape"])
def test_cancel_does_not_revoke(world: World, answer: str) -> None:
    app = world.app()
    alice = world.key_ids["alice"]

    async def script(pilot: Pilot) -> None:
        await select(pilot, alice)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("f")  # screen keys are inert while the dialog is open
        assert isinstance(app.screen, Confirm)
        await pilot.press(answer)
        await until(pilot, lambda: not isinstance(app.screen, Confirm))
        await pilot.pause(0.5)
        assert state_in_table(app, alice) == "active"

    drive(app, script)
    with connect(world.pg_url) as conn:
        assert keys.get(conn, alice).revoked_ns is None  # type: ignore[union-attr]
        assert audit.log(conn, action="key.revoke") == []


def test_revoking_a_revoked_key_says_so(world: World) -> None:
    app = world.app()
    alice = world.key_ids["alice"]
    with connect(world.pg_url) as conn:
        keys.revoke(conn, alice, "ops")

    async def script(pilot: Pilot) -> None:
        await select(pilot, alice)
        await pilot.press("r")
        await shown(pilot, "already revoked")  # the toast may wrap the rest
        assert len(app.screen_stack) == 1

    drive(app, script)


def test_create_shows_the_secret_once_and_the_key_authenticates(world: World) -> None:
    app = world.app()
    token: list[str] = []

    async def script(pilot: Pilot) -> None:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, CreateKey))
        app.screen.query_one("#client").value = "alice"  # type: ignore[attr-defined]
        app.screen.query_one("#scopes", Input).focus()
        await pilot.press(*"read", "enter")
        await until(pilot, lambda: isinstance(app.screen, Secret))
        secret = app.screen
        assert isinstance(secret, Secret)
        token.append(secret.token)
        await until(pilot, lambda: secret.token in "".join(screen_text(app).split()))
        await pilot.press("x")  # quitting from the dialog would lose the secret: inert
        assert app.is_running and app.screen is secret
        await pilot.press("enter")
        await until(pilot, lambda: len(app.snapshot.keys) == 3)  # type: ignore[union-attr]
        assert secret.token not in screen_text(app)

    drive(app, script)
    with connect(world.pg_url) as conn:
        key = keys.authenticate(conn, token[0])
        assert (key.client_id, key.scopes) == ("alice", ("read",))
        [entry] = audit.log(conn, action="key.create", target=f"key/{key.key_id}")
        assert entry.actor == ACTOR and entry.details["scopes"] == ["read"]


def test_create_refused_scope_is_an_error_not_a_key(world: World) -> None:
    app = world.app()

    async def script(pilot: Pilot) -> None:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, CreateKey))
        app.screen.query_one("#client").value = "alice"  # type: ignore[attr-defined]
        app.screen.query_one("#scopes", Input).focus()
        await pilot.press(*"admin", "enter")
        await until(pilot, lambda: "does not hold" in screen_text(app))
        assert len(app.screen_stack) == 1

    drive(app, script)
    with connect(world.pg_url) as conn:
        assert len(keys.list_keys(conn, env="dev")) == 2
        with pytest.raises(KeyRejected):
            keys.authenticate(conn, "ssmd_000000000000_" + "x" * 43)
