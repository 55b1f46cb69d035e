"""1,000 instruments, as `ssmd connector` runs them: a replay server and a connector, each
its own process, and data for every instrument within a bounded time.

The bench's 1,000-instrument step once got no frame within 60 s: its replay server wrote
to a log an earlier step had used, `ReplayProcess` took the earlier run's `listening`
line, and the connector retried a dead port for ever. The same sequence runs here.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import nats
from tests.capture.test_connector import REPO, SYMBOLS

from ssmd.replay.process import ReplayProcess
from ssmd.spec.edit import add_instruments
from ssmd.stack.ports import free_port

BOUND_S = 30.0
"""From the connector's launch to a record of every instrument (≈5 s on a quiet box)."""


async def first_books(url: str, symbols: set[str], argv: list[str], log: Path) -> dict:
    """Launch the connector; symbol -> (seconds since launch, its first book record) until
    every symbol has one or the bound passes; record types seen per symbol; the process."""
    seen: dict[str, tuple[float, dict]] = {}
    types: dict[str, set[str]] = {}
    nc = await nats.connect(url)
    t0 = time.monotonic()

    async def on_msg(msg: nats.aio.msg.Msg) -> None:
        record = msgspec.json.decode(msg.data)
        types.setdefault(record["symbol"], set()).add(record["type"])
        if record["type"] == "book":
            seen.setdefault(record["symbol"], (time.monotonic() - t0, record))

    await nc.subscribe("md.dev.sim.>", cb=on_msg)
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    while len(seen) < len(symbols) and time.monotonic() - t0 < BOUND_S:
        await asyncio.sleep(0.1)
    await nc.close()
    return {"seen": seen, "types": types, "proc": proc}


def test_a_connector_process_with_1000_instruments_gets_data_for_all(
    nats_url: str, tmp_path: Path
) -> None:
    env_file = tmp_path / "dev.yaml"
    shutil.copy(REPO / "environments" / "dev.yaml", env_file)
    env = add_instruments(env_file, "sim", [f"S{i:03d}-USD" for i in range(997)])
    symbols = env.feeds["sim"].instruments
    assert len(symbols) == 1000 and env.feeds["sim"].shards == 1  # one connection
    log = tmp_path / "replay.log"
    with ReplayProcess(log, synthetic="sim", symbols=SYMBOLS, seed=1, port=free_port()):
        pass  # an earlier run on the same log, as in the bench
    with ReplayProcess(log, synthetic="sim", symbols=symbols, seed=1, rate=5000) as rp:
        argv = [
            sys.executable, "-m", "ssmd.cli.main", "connector", "--feed", "sim",
            "--env", str(env_file), "--url", rp.url, "--rest-url", rp.rest_url,
            "--nats-url", nats_url, "--data-dir", str(tmp_path / "data"),
        ]  # fmt: skip
        got = asyncio.run(first_books(nats_url, set(symbols), argv, tmp_path / "connector.log"))
        proc = got["proc"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (tmp_path / "connector.log").read_text()[-3000:]
    seen = got["seen"]
    missing = sorted(set(symbols) - set(seen))
    assert missing == [], f"{len(missing)} instruments without a book after {BOUND_S}s"
    books = [record for _, record in seen.values()]
    assert all(r["snapshot"] and r["bids"] and r["asks"] for r in books)
    assert {r["venue"] for r in books} == {"sim"}
    assert all("quote" in got["types"][s] for s in symbols)  # the ticker snapshots
    print(f"1,000 instruments: all with data {max(t for t, _ in seen.values()):.1f}s after launch")
