"""`ssmd replay-server`: the subprocess form `ssmd up` uses, and fail-fast options."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import orjson
from tests.replay.client import collect
from typer.testing import CliRunner

from ssmd.cli.main import app
from ssmd.replay import ReplayProcess
from ssmd.stack.ports import free_port
from ssmd.venues import sim


def test_bad_faults_name_the_token() -> None:
    res = CliRunner().invoke(
        app, ["replay-server", "--synthetic", "sim", "--faults", "drop@0.1,boom@3"]
    )
    assert res.exit_code == 1
    assert "boom@3" in str(res.exception) and "unknown kind" in str(res.exception)


def test_neither_mode_is_an_error() -> None:
    res = CliRunner().invoke(app, ["replay-server"])
    assert res.exit_code == 1 and "either recordings or synthetic" in str(res.exception)


def test_subprocess_serves_sim_and_rest(tmp_path: Path) -> None:
    port = free_port()
    with ReplayProcess(tmp_path / "replay.log", synthetic="sim", symbols=["BTC-USD"], seed=2,
                       rate=1000, port=port) as rp:  # fmt: skip
        assert rp.url == f"ws://127.0.0.1:{port}/v2"
        subs = sim.subscribe(["book", "trade"], ["BTC-USD"])
        c = asyncio.run(collect(rp.url, subs, 50))
        body = urllib.request.urlopen(rp.rest_url + sim.instruments_url()).read()
    n = sim.normalizer()
    for f in c.frames:
        n.on_frame(f, 1)
    assert n.stats.checksums_verified > 10 and n.stats.checksums_failed == 0
    assert "BTCUSD" in orjson.loads(body)["result"]
    log = (tmp_path / "replay.log").read_text()
    events = [orjson.loads(x)["event"] for x in log.splitlines() if x.startswith('{"ts"')]
    assert {"listening", "connect", "subscribed", "rest", "disconnect"} <= set(events)


def test_a_restart_on_the_same_log_reports_its_own_url(tmp_path: Path) -> None:
    """Logs are appended to: the URL must come from this start's `listening` line, not
    an earlier run's (its port is dead; a connector given it retried for ever)."""
    log = tmp_path / "replay.log"
    urls = []
    for _ in range(2):
        port = free_port()
        with ReplayProcess(log, synthetic="sim", symbols=["BTC-USD"], seed=2, port=port) as rp:
            urls.append(rp.url)
            assert rp.url == f"ws://127.0.0.1:{port}/v2"
            c = asyncio.run(collect(rp.url, sim.subscribe(["trade"], ["BTC-USD"]), 3))
            assert orjson.loads(c.frames[0])["channel"] == "status"
    assert urls[0] != urls[1]
    assert log.read_text().count('"event":"listening"') == 4  # 2 starts x (stdout + stderr)
