"""The screens against real Postgres and NATS, driven headless at 80×24 with Textual's pilot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.tui.conftest import World, put_heartbeats
from tests.tui.helpers import refreshed, screen_text, shown, started, until
from textual.pilot import Pilot
from textual.widgets import ContentSwitcher, Footer

from ssmd.tui.app import SsmdTui

SCREENS = {
    "f": ("feeds", "instruments (2): BTC/USD ETH/USD"),
    "c": ("keys", "dev-admin"),
    "s": ("storage", "MD_DEV_SIM"),
    "q": ("quality", "open feedback reports: 2"),
    "l": ("logs", '"n":39'),
    "question_mark": ("help", "What the figures mean"),
    "o": ("overview", "connector.sim.0"),
}


def drive(app: SsmdTui, script: Callable[[Pilot], Awaitable[None]]) -> None:
    """Run the app headless in an 80×24 terminal, wait for its first data, then `script`."""

    async def main() -> None:
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await started(pilot)
            await script(pilot)

    asyncio.run(main())


def test_overview_shows_the_kv_status(world: World) -> None:
    app = world.app()

    async def script(pilot: Pilot) -> None:
        assert app.size == (80, 24)
        await shown(pilot, "connector.sim.0", "journal 4.8 MiB")  # the table's frame
        text = screen_text(app)
        lines = text.splitlines()
        assert "definition v1 · NATS ok · Postgres ok" in lines[0]
        assert "processes: 3/4 up · DOWN: shipper" in text
        row = next(line for line in lines if "connector.sim.0" in line).split()
        assert row[:5] == ["connector.sim.0", "ok", "1/1", "812.5", "3"]
        assert "reconnect ETH-USD" in text
        assert "records/s, all components: 1,458.8" in text  # 812.5 + 406.25 + 240
        assert "journal 4.8 MiB" in text
        assert "active keys 2 · issues 2 · unshipped 1" in text
        assert all(len(line) <= 80 for line in lines) and len(lines) <= 24

    drive(app, script)


def test_single_keys_switch_screens_and_the_footer_shows_them(world: World) -> None:
    app = world.app()

    async def script(pilot: Pilot) -> None:
        footer = screen_text(app).splitlines()[-1]
        for key in ("o home", "f feeds", "c keys", "s storage", "q quality", "l logs", "? help"):
            assert key in footer
        assert app.query_one(Footer)
        for key, (screen, shows) in SCREENS.items():
            await pilot.press(key)
            assert app.query_one(ContentSwitcher).current == screen
            await shown(pilot, shows)
        await pilot.press("l", "right")
        await shown(pilot, "log shipper.log (2/2)", "segment shipped")
        await pilot.press("c")
        await shown(pilot, "r revoke n new")
        await pilot.press("x")
        await until(pilot, lambda: not app.is_running)

    drive(app, script)


def test_sparklines_sample_each_new_heartbeat(world: World) -> None:
    app = world.app(interval=0.1)

    async def script(pilot: Pilot) -> None:
        for rate in (100.0, 400.0, 800.0):
            await put_heartbeats(world.nats_url, sim_rate=rate)
            await refreshed(pilot)
        await refreshed(pilot)  # a refresh without a new heartbeat adds no sample
        assert app.history.of("connector.sim.0")[-3:] == [100.0, 400.0, 800.0]
        assert len(app.history.of("connector.sim.0")) == 4
        await pilot.press("f", "down")
        await shown(pilot, "█▂▄█")  # 812.5 (first), 100, 400, 800

    drive(app, script)


def test_unreachable_nats_is_shown_not_fatal(world: World) -> None:
    app = world.app(nats_url="nats://127.0.0.1:9")

    async def script(pilot: Pilot) -> None:
        await shown(pilot, "NATS UNREACHABLE · Postgres ok", "nats       unreachable",
                    "NATS unreachable at nats://127.0.0.1:9")  # fmt: skip
        await pilot.press("c")
        await shown(pilot, "dev-admin")  # Postgres still answers
        await pilot.press("s")
        await shown(pilot, "JetStream file        -        unreachable", "shipper: unknown")
        await refreshed(pilot)
        assert app.is_running

    drive(app, script)


def test_unreachable_postgres_is_shown_not_fatal(world: World) -> None:
    app = world.app(pg_url="postgresql://postgres@127.0.0.1:9/none")

    async def script(pilot: Pilot) -> None:
        # the table may land a frame after the header (waited for, not sampled once)
        await shown(pilot, "NATS ok · Postgres UNREACHABLE", "connector.sim.0",
                    "metadata: Postgres unreachable")  # fmt: skip
        await pilot.press("c", "r")
        await until(pilot, lambda: "cannot" in screen_text(app))  # the toast wraps
        assert len(app.screen_stack) == 1  # nothing to revoke: no dialog

    drive(app, script)
