"""SVG screenshots of `ssmd tui` at 80×24, from the realistic state of conftest.

They are written to a temp dir on every run (so they keep working); to refresh the ones
in the README and docs/tui.md:

    SSMD_SCREENSHOTS=docs/img .venv/bin/python -m pytest tests/tui/test_screenshots.py
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

from tests.tui.conftest import World, put_heartbeats
from tests.tui.helpers import refreshed, started, until
from textual.pilot import Pilot

from ssmd.tui.views.keys import Keys
from ssmd.tui.views.modals import Confirm

SHOTS = {
    "tui-overview.svg": ("o", "overview"),
    "tui-feed.svg": ("f", "feed sim"),
    "tui-keys.svg": ("c", "clients and keys"),
    "tui-revoke.svg": ("r", "revoking a key"),
    "tui-quality.svg": ("q", "data quality and feedback"),
}


async def warm_up(pilot: Pilot, world: World, samples: int = 24) -> None:
    """A few minutes of heartbeats, so the sparklines have a shape."""
    for i in range(samples):
        rate = 800 + 250 * math.sin(i / 3) + (180 if i % 7 == 3 else 0)
        await put_heartbeats(world.nats_url, sim_rate=round(rate, 1))
        await refreshed(pilot)


def test_screenshots(world: World, tmp_path: Path) -> None:
    out = Path(os.environ.get("SSMD_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    app = world.app(interval=0.1)

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await started(pilot)
            await warm_up(pilot, world)
            for name, (key, what) in SHOTS.items():
                if name == "tui-feed.svg":
                    await pilot.press(key, "down")  # the sim feed
                elif name == "tui-revoke.svg":
                    while app.query_one(Keys).selected_key() != world.key_ids["alice"]:
                        await pilot.press("down")
                    await pilot.press(key)
                    await until(pilot, lambda: isinstance(app.screen, Confirm))
                else:
                    await pilot.press(key)
                await pilot.pause(0.3)
                (out / name).write_text(app.export_screenshot(title=f"ssmd tui — {what}"))
                if name == "tui-revoke.svg":
                    await pilot.press("n")

    asyncio.run(main())
    overview = (out / "tui-overview.svg").read_text()
    assert "connector.sim.0" in overview.replace("&#160;", " ")
    assert all((out / name).stat().st_size > 10_000 for name in SHOTS)
