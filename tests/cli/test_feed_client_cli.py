"""`ssmd feed` and `ssmd client`: YAML edits through the CLI, list --json, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ssmd import spec
from ssmd.cli.main import app
from ssmd.cli.output import CliError

REPO = Path(__file__).resolve().parents[2]


def ssmd(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, CliError):
        exc = result.exception
        return exc.code, result.stdout, f"{result.stderr}{exc}\nhint: {exc.hint}"
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SSMD_ENV_DIR", str(tmp_path))
    monkeypatch.delenv("SSMD_ENV", raising=False)
    return Path(shutil.copy(REPO / "environments" / "dev.yaml", tmp_path / "dev.yaml"))


def test_feed_list_json(dev: Path) -> None:
    code, out, _ = ssmd("feed", "list", "--json")
    assert code == 0
    (feed,) = json.loads(out)
    assert (feed["name"], feed["venue"], feed["instruments"], feed["shards"]) == (
        "sim",
        "sim",
        ["BTC-USD", "ETH-USD", "SOL-USD"],
        1,
    )


def test_feed_add_disable_enable_remove(dev: Path) -> None:
    code, out, _ = ssmd(
        "feed", "add", "kr", "--venue", "kraken-v2", "-c", "book", "-i", "BTC/USD", "-e", "dev"
    )
    assert code == 0 and out.strip() == f"added feed kr (kraken-v2) in {dev}"
    assert spec.load(dev).feeds["kr"].channels == ["book"]
    assert ssmd("feed", "disable", "kr")[0] == 0
    assert spec.load(dev).feeds["kr"].enabled is False
    assert ssmd("feed", "enable", "kr")[0] == 0
    assert spec.load(dev).feeds["kr"].enabled is True
    assert ssmd("feed", "add-instrument", "kr", "ETH/USD", "SOL/USD")[0] == 0
    assert spec.load(dev).feeds["kr"].instruments == ["BTC/USD", "ETH/USD", "SOL/USD"]
    assert ssmd("feed", "remove-instrument", "kr", "BTC/USD")[0] == 0
    assert spec.load(dev).feeds["kr"].instruments == ["ETH/USD", "SOL/USD"]
    assert ssmd("feed", "remove", "kr")[0] == 0
    assert list(spec.load(dev).feeds) == ["sim"]


def test_feed_refusals_leave_file(dev: Path) -> None:
    before = dev.read_bytes()
    code, _, err = ssmd("feed", "remove", "sim")
    assert code == 1
    assert f"{dev}:51:17: clients[1].entitlements[0].feeds[0]: unknown feed 'sim'" in err
    assert "is unchanged" in err
    code, _, err = ssmd("feed", "add", "x", "--venue", "krakn", "-i", "A")
    assert code == 1 and "did you mean 'kraken-v2'?" in err
    code, _, err = ssmd("feed", "add", "x", "--venue", "binance", "-c", "trades", "-i", "A")
    assert code == 1 and "venue binance has no channel 'trades'" in err
    code, _, err = ssmd("feed", "enable", "ghost")
    assert code == 1 and "no feed named 'ghost'" in err
    assert dev.read_bytes() == before
    code, _, err = ssmd("feed", "list", "-e", "nope")
    assert code == 1 and "no environment definition" in err


def test_client_add_entitle_revoke(dev: Path) -> None:
    code, out, _ = ssmd("client", "add", "bot", "--type", "trading", "-s", "stream", "-s", "read")
    assert code == 0 and out.strip() == f"added client bot in {dev}"
    code, _, _ = ssmd(
        "client", "entitle", "bot", "-f", "sim", "--symbol", "BTC-*", "-r", "trade",
        "--lookback", "30d", "--expires", "2027-01-01",
    )  # fmt: skip
    assert code == 0
    bot = spec.load(dev).clients[-1]
    assert bot.scopes == ["stream", "read"]
    (ent,) = bot.entitlements
    assert (ent.feeds, ent.symbols, ent.types, ent.lookback) == (
        ["sim"],
        ["BTC-*"],
        ["trade"],
        30 * 86400 * 10**9,
    )
    code, out, _ = ssmd("client", "list", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["dev-admin", "dev-reader", "bot"]
    assert rows[-1]["entitlements"][0]["lookback"] == "30d"
    assert ssmd("client", "revoke", "bot")[0] == 0
    assert spec.load(dev).clients[-1].revoked is True
    assert ssmd("client", "revoke", "bot", "--purge")[0] == 0
    assert [c.id for c in spec.load(dev).clients] == ["dev-admin", "dev-reader"]


def test_client_refusals(dev: Path) -> None:
    before = dev.read_bytes()
    code, _, err = ssmd("client", "add", "x", "--type", "robot")
    assert code == 1 and "'robot' is not allowed" in err
    code, _, err = ssmd("client", "entitle", "dev-reader", "-f", "simm")
    assert code == 1 and "unknown feed 'simm' (did you mean 'sim'?)" in err
    code, _, err = ssmd("client", "entitle", "dev-reader", "-f", "sim", "--start", "2024-13-01")
    assert code == 1 and "expected a date" in err
    code, _, err = ssmd("client", "revoke", "ghost")
    assert code == 1 and "no client with id 'ghost'" in err
    assert dev.read_bytes() == before
    code, _, _ = ssmd("client", "add", "x")
    assert code == 2  # --type is required
