"""`ssmd instrument sync`: the venue's reference data into the secmaster, under the iids
`env apply` allocated (here from the replay server's synthetic AssetPairs, whose tick
sizes are 0.1 for BTC and 0.01 for ETH/SOL, lot 1e-8: see replay/synth.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.capture.test_faults import ReplayServerThread
from tests.meta.helpers import cli

from ssmd import spec
from ssmd.control.apply import iids_of
from ssmd.control.reference import choose
from ssmd.meta import audit, connect, instruments
from ssmd.replay.synth import KrakenTape
from ssmd.stack.ports import free_port
from ssmd.venues import sim


def test_choose_takes_the_listed_instruments_and_names_the_missing() -> None:
    parsed = sim.parse_instruments(KrakenTape(["BTC-USD", "ETH-USD"], seed=1).asset_pairs())
    chosen, missing = choose(["ETH-USD", "XYZ-USD", "ETH-USD"], parsed, "sim")
    assert [i.venue_symbol for i in chosen] == ["ETH/USD"] and missing == ["XYZ-USD"]
    everything, _ = choose([], parsed, "sim", everything=True)
    assert [i.venue_symbol for i in everything] == ["BTC/USD", "ETH/USD"]


def test_sync_fills_the_applied_iids_then_is_a_no_op(envdir: Path, pg_url: str) -> None:
    env = spec.load(envdir / "dev.yaml")
    with connect(pg_url) as conn:
        applied = json.loads(iids_of(conn, env))["sim"]
    with ReplayServerThread() as (_, rest_url):
        args = ["instrument", "sync", "sim", "--env", "dev", "--dir", str(envdir),
                "--rest-url", rest_url, "--pg-url", pg_url, "--json"]  # fmt: skip
        first, again = cli(*args), cli(*args)
    assert first.code == 0, first
    result = json.loads(first.stdout)
    assert sorted(result["created"]) == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert result["missing"] == [] and result["url"] == f"{rest_url}/0/public/AssetPairs"
    assert (again.code, json.loads(again.stdout)["unchanged"]) == (0, 3)
    with connect(pg_url) as conn:
        btc = instruments.at(conn, applied["BTC-USD"])
        sol = instruments.at(conn, applied["SOL-USD"])
        log = audit.log(conn, action="instrument.sync")
    assert btc is not None and (btc.symbol, btc.tick_size, btc.lot_size) == ("BTC-USD", 10**8, 10)
    assert sol is not None and (sol.venue_symbol, sol.tick_size) == ("SOL/USD", 10**7)
    assert len(log) == 1  # the no-op second sync is not audited


def test_a_listed_instrument_the_venue_lacks_is_named_exit_1(envdir: Path, pg_url: str) -> None:
    assert cli("feed", "add-instrument", "sim", "XYZ-USD", "--dir", str(envdir)).code == 0
    with ReplayServerThread() as (_, rest_url):
        out = cli("instrument", "sync", "sim", "--dir", str(envdir), "--rest-url", rest_url,
                  "--pg-url", pg_url)  # fmt: skip
    assert out.code == 1 and "does not list XYZ-USD" in out.stderr


def test_an_unreachable_venue_exits_3(envdir: Path, pg_url: str) -> None:
    out = cli("instrument", "sync", "sim", "--dir", str(envdir), "--pg-url", pg_url,
              "--rest-url", f"http://127.0.0.1:{free_port()}")  # fmt: skip
    assert out.code == 3 and "cannot fetch" in out.stderr
