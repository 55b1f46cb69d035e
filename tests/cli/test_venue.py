"""`ssmd venue verify` / `ssmd venue list` through the real CLI app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssmd.cli.main import app
from ssmd.venues.base import VenueInfo
from ssmd.venues.registry import VENUES

runner = CliRunner()
KEYS = {"frames", "records", "checksums_verified", "checksums_failed", "sequence_gaps",
        "crossed", "parse_errors"}  # fmt: skip


def test_verify_json_kraken(fixtures_dir: Path) -> None:
    res = runner.invoke(
        app, ["venue", "verify", str(fixtures_dir / "recordings/KRAKEN.ws.50.0"), "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert set(report) >= KEYS
    assert (report["frames"], report["checksums_verified"], report["checksums_failed"]) == (
        4321,
        4269,
        0,
    )
    assert report["records"] == {"book": 4279} and report["venue"] == "kraken-v1"


def test_verify_table_binance(fixtures_dir: Path) -> None:
    res = runner.invoke(app, ["venue", "verify", str(fixtures_dir / "recordings/BINANCE.ws.1.0")])
    assert res.exit_code == 0, res.output
    assert "BINANCE.http.0.0" in res.stdout and "records: book" in res.stdout


def test_verify_fails_on_corruption(fixtures_dir: Path, tmp_path: Path) -> None:
    src = fixtures_dir / "recordings"
    shutil.copy(src / "KRAKEN.0", tmp_path / "KRAKEN.0")
    text = (src / "KRAKEN.ws.50.0").read_text().replace('"c":"1740639334"', '"c":"1"')
    (tmp_path / "KRAKEN.ws.50.0").write_text(text)
    res = runner.invoke(app, ["venue", "verify", str(tmp_path / "KRAKEN.ws.50.0"), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["checksums_failed"] == 1


def test_verify_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = tmp_path / "mystery.log"
    odd.write_text("")
    res = runner.invoke(app, ["venue", "verify", str(odd)])
    assert res.exit_code == 1
    res = runner.invoke(app, ["venue", "verify", str(tmp_path / "absent")])
    assert res.exit_code == 1
    # a registry venue whose adapter module is not importable: clear error, exit 1
    ghost = VenueInfo("ghost", "ghost", "ssmd.venues.no_such_module", (), 1, 1, "ws://x")
    monkeypatch.setitem(VENUES, "ghost", ghost)
    res = runner.invoke(app, ["venue", "verify", str(odd), "--venue", "ghost"])
    assert res.exit_code == 1 and "not available" in str(res.exception or res.output)
    res = runner.invoke(app, ["venue", "verify", str(odd), "--venue", "nope"])
    assert res.exit_code == 1


def test_list_json() -> None:
    res = runner.invoke(app, ["venue", "list", "--json"])
    assert res.exit_code == 0
    items = {i["name"]: i for i in json.loads(res.stdout)}
    assert set(items) == set(VENUES)
    assert items["kraken-v1"]["available"] is True and items["binance"]["available"] is True
    assert items["binance"]["channels"] == ["depth", "bookTicker", "trade", "aggTrade"]
    # the C book path is built by every install with a compiler (tests/venues/test_kraken_native)
    assert items["kraken-v1"]["native"] is True and items["binance"]["native"] is None
