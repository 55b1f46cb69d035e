"""The connector under venue faults (replay server fault injection) and a full disk.

For every case the stream must hold exactly the records the journal yields offline
(nothing lost, nothing twice), the fault must show up as the right `gap` records, and
every broken book must come back through a resync (a fresh snapshot after the gap).
Each case prints one JSON line of figures (the fault matrix of the closing note).
"""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from tests.bus.helpers import read_stream
from tests.capture.test_connector import (
    REPO,
    STREAM,
    SYMBOLS,
    assert_exactly_once,
    capture,
    dev,
    offline,
)

from ssmd.capture.connector import Connector, Options
from ssmd.replay.server import ReplayServer

CASES = {
    # name: (fault spec, gap reasons that must appear, reconnects expected)
    "venue-disconnect": ("disconnect@1500#1", {"disconnect"}, True),
    "venue-kill-no-close": ("kill@1500#1", {"disconnect"}, True),
    "dropped-frames": ("drop@0.003", {"checksum"}, False),
    "duplicated-frames": ("dup@0.003", set(), False),
    "reordered-frames": ("reorder@0.003", {"checksum"}, False),
    "corrupted-checksum": ("corrupt-checksum@800#1", {"checksum"}, False),
    "stall-3s": ("stall@1000:3s#1", set(), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fault(case: str, nats_url: str, tmp_path: Path) -> None:
    faults, reasons, reconnects = CASES[case]

    async def main() -> Connector:
        async with ReplayServer(
            synthetic="sim", symbols=SYMBOLS, seed=21, rate=2000, faults=faults
        ) as rs:
            options = Options(tmp_path, nats_url, ws_url=rs.url, rest_url=rs.rest_url)
            connector = Connector(dev(), "sim", options=options)
            await capture(connector, 3.0 if "disconnect" in case or "kill" in case else 5.0)
            return connector

    connector = asyncio.run(main())
    stream = asyncio.run(read_stream(nats_url, STREAM))
    derived = offline(tmp_path)
    ids = [m for m, _ in stream]
    duplicates = len(ids) - len(set(ids))
    lost = len({m for m, _ in derived} - set(ids))
    extra = len(set(ids) - {m for m, _ in derived})
    records = [msgspec.json.decode(p) for _, p in stream]
    gaps = collections.Counter(r["reason"] for r in records if r["type"] == "gap")
    session = connector.links[0].session
    assert session is not None
    print(
        json.dumps(
            {
                "case": case,
                "faults": faults,
                "frames_in": sum(link.frames_in for link in connector.links),
                "records_out": len(ids),
                "duplicates": duplicates,
                "lost": lost,
                "extra": extra,
                "gaps": dict(gaps),
                "connects": session.stats.connects,
                "deduped_by_stream": connector.outbox.duplicates if connector.outbox else 0,
            }
        )
    )
    assert (duplicates, lost, extra) == (0, 0, 0)
    assert reasons <= set(gaps), f"expected gap reasons {reasons}, saw {dict(gaps)}"
    if not reasons:
        assert set(gaps) <= {"disconnect"}  # only the final stop
    assert (session.stats.connects > 1) == reconnects
    # every book broken by an integrity gap is served again from a fresh snapshot
    for gap in (r for r in records if r["type"] == "gap" and r["reason"] != "disconnect"):
        healed = [
            r
            for r in records
            if r["type"] == "book"
            and r["snapshot"]
            and r["symbol"] == gap["symbol"]
            and r["ts_recv"] > gap["ts_recv"]
        ]
        assert healed, f"{gap['symbol']}: no snapshot after the {gap['reason']} gap"


def test_late_book_and_resync_on_a_prebuilt_tape_heal(nats_url: str, tmp_path: Path) -> None:
    """dev.yaml's order (trade, quote, then book, paced 5/s) on a prebuilt tape: the book
    is subscribed a chunk in, and a corrupted checksum forces a resubscribe later. Both
    snapshots must be the book at that point of the tape: every update after them
    verifies (before the fix they were the tape's start: every checksum failed, forever)."""

    async def main() -> Connector:
        tape = {"seed": 21, "rate": 3000, "prebuild": 60_000}
        async with ReplayServer(
            synthetic="sim", symbols=SYMBOLS, faults="corrupt-checksum@9000#1", **tape
        ) as rs:
            options = Options(tmp_path, nats_url, ws_url=rs.url, rest_url=rs.rest_url)
            connector = Connector(dev(), "sim", options=options)
            await capture(connector, 5.0)
            return connector

    connector = asyncio.run(main())
    assert connector.feed.channels == ["trade", "quote", "book"]
    stats = connector.links[0].deriver.stats
    assert stats.checksums_failed == 1, stats  # the corrupted frame, nothing after it
    assert stats.checksums_verified > 3000
    stream = asyncio.run(read_stream(nats_url, STREAM))
    assert_exactly_once(stream, offline(tmp_path))
    records = [msgspec.json.decode(p) for _, p in stream]
    gaps = [r for r in records if r["type"] == "gap" and r["reason"] != "disconnect"]
    assert [g["reason"] for g in gaps][:1] == ["checksum"]
    broken = gaps[0]["symbol"]
    books = [r for r in records if r["type"] == "book"]
    first = {s: min(r["ts_recv"] for r in books if r["symbol"] == s) for s in SYMBOLS}
    trades = [r for r in records if r["type"] == "trade"]
    # the book came a chunk into the tape (after trades), as a snapshot
    assert all(min(r["ts_recv"] for r in trades if r["symbol"] == s) < first[s] for s in SYMBOLS)
    assert all(r["snapshot"] for r in books if r["ts_recv"] == first[r["symbol"]])
    healed = [r for r in books if r["symbol"] == broken and r["ts_recv"] > gaps[0]["ts_recv"]]
    assert healed[0]["snapshot"] and len(healed) > 100
    assert not any(r["snapshot"] for r in healed[-50:])  # updates flow after the snapshot


def test_disk_full_stops_the_connector_loudly(nats_url: str, tmp_path: Path) -> None:
    """The journal on a 256 KiB tmpfs: the connector exits 4 naming the path, and what
    it had journaled before the disk filled is intact."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): disk-full case not run")
    try:
        with ReplayServerThread() as (url, rest_url):
            argv = [
                sys.executable, "-m", "ssmd.cli.main", "connector", "--feed", "sim",
                "--env", str(REPO / "environments" / "dev.yaml"), "--url", url,
                "--rest-url", rest_url, "--nats-url", nats_url, "--data-dir", str(disk),
            ]  # fmt: skip
            out = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert out.returncode == 4, out.stderr[-2000:]
        assert "journal failure" in out.stderr
        assert str(disk) in out.stderr
        assert "No space left on device" in out.stderr or "ENOSPC" in out.stderr
    finally:
        subprocess.run(["umount", str(disk)])


class ReplayServerThread:
    """A fast synthetic replay server on its own event loop thread (for subprocess tests)."""

    def __enter__(self) -> tuple[str, str]:
        import threading

        ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._urls = ("", "")

        async def serve() -> None:
            self._stop = asyncio.Event()
            async with ReplayServer(synthetic="sim", symbols=SYMBOLS, seed=2, rate=0) as rs:
                self._urls = (rs.url, rs.rest_url)
                self._loop = asyncio.get_running_loop()
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        self._thread.start()
        assert ready.wait(15)
        return self._urls

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
