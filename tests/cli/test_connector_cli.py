"""`ssmd connector` refuses bad invocations with the documented exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ssmd.stack.ports import free_port

REPO = Path(__file__).resolve().parents[2]
DEV = str(REPO / "environments" / "dev.yaml")


def connector(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssmd.cli.main", "connector", "--env", DEV, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unknown_feed_exits_1_listing_the_feeds(tmp_path: Path) -> None:
    out = connector(
        "--feed", "nope", "--nats-url", "nats://127.0.0.1:1", "--data-dir", str(tmp_path)
    )
    assert out.returncode == 1
    assert "no feed 'nope' in dev" in out.stderr
    assert "feeds: sim" in out.stderr


def test_bad_shard_exits_1(tmp_path: Path) -> None:
    out = connector(
        "--feed", "sim", "--shard", "3/2", "--nats-url", "nats://x:1", "--data-dir", str(tmp_path)
    )
    assert out.returncode == 1
    assert "need 0 <= I < N" in out.stderr


def test_nats_unreachable_exits_3_naming_it(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    out = connector("--feed", "sim", "--nats-url", url, "--data-dir", str(tmp_path))
    assert out.returncode == 3
    assert f"NATS unreachable at {url}" in out.stderr
    assert not (tmp_path / "raw").exists()  # nothing captured without a place to publish


def test_the_connector_loop_collects_young_objects_less_often() -> None:
    """`run` (what `ssmd connector` and bench/capture.py run the loop with): uvloop, a
    young collection every GC_YOUNG net new containers while it runs, CPython's
    threshold back afterwards."""
    import asyncio
    import gc

    from ssmd.cli.connector import GC_YOUNG, run

    before = gc.get_threshold()

    async def inside() -> tuple[tuple[int, ...], str]:
        return gc.get_threshold(), type(asyncio.get_running_loop()).__module__

    threshold, loop = run(inside())
    assert threshold == (GC_YOUNG, *before[1:]) and GC_YOUNG == 10_000 != before[0]
    assert loop.startswith("uvloop")
    assert gc.get_threshold() == before
