"""Edits keep comments and order, validate, and never write an invalid result."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ssmd import spec
from ssmd.spec import edit
from ssmd.spec.edit import EditError

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "environments" / "dev.yaml"
PROD = REPO / "environments" / "prod.yaml"


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    return Path(shutil.copy(DEV, tmp_path / "dev.yaml"))


@pytest.fixture
def prod(tmp_path: Path) -> Path:
    return Path(shutil.copy(PROD, tmp_path / "prod.yaml"))


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(line in it for line in small)


def test_add_feed_keeps_every_original_line(dev: Path) -> None:
    before = dev.read_text()
    env = edit.add_feed(
        dev, "kraken", venue="kraken-v2", channels=["book"], instruments=["BTC/USD", "ETH/USD"]
    )
    after = dev.read_text()
    assert _is_subsequence(before.splitlines(), after.splitlines())
    assert "# Synthetic market from the replay server; no internet needed." in after
    assert "  kraken:\n    venue: kraken-v2\n    channels: [book]\n    instruments:\n" in after
    assert env.feeds["kraken"].instruments == ["BTC/USD", "ETH/USD"]
    assert spec.load(dev) == env


def test_add_feed_picks_minimum_shards(dev: Path) -> None:
    symbols = [f"S{i}/USD" for i in range(250)]
    env = edit.add_feed(dev, "big", venue="kraken-v2", instruments=symbols)
    assert env.feeds["big"].shards == 3


def test_refused_edit_leaves_file_untouched(dev: Path) -> None:
    before = dev.read_bytes()
    with pytest.raises(spec.InvalidSpec) as exc:
        edit.remove_feed(dev, "sim")  # dev-reader is entitled to it
    assert [str(e) for e in exc.value.errors] == [
        f"{dev}:51:17: clients[1].entitlements[0].feeds[0]: unknown feed 'sim' "
        "(no feeds are defined)"
    ]
    assert dev.read_bytes() == before
    assert list(dev.parent.iterdir()) == [dev]  # no temp file left behind


def test_edit_errors_leave_file_untouched(dev: Path) -> None:
    before = dev.read_bytes()
    with pytest.raises(EditError, match="no feed named 'nope'") as exc:
        edit.set_feed_enabled(dev, "nope", False)
    assert exc.value.hint == "feeds in this environment: sim"
    with pytest.raises(EditError, match="feed 'sim' already exists"):
        edit.add_feed(dev, "sim", venue="sim", instruments=["X"])
    with pytest.raises(EditError, match="already in feed 'sim': BTC-USD"):
        edit.add_instruments(dev, "sim", ["BTC-USD"])
    with pytest.raises(EditError, match="not in feed 'sim': DOGE-USD"):
        edit.remove_instruments(dev, "sim", ["DOGE-USD"])
    with pytest.raises(EditError, match="client 'dev-admin' already exists"):
        edit.add_client(dev, "dev-admin", type="display")
    with pytest.raises(EditError, match="no client with id 'ghost'"):
        edit.revoke(dev, "ghost")
    assert dev.read_bytes() == before


def test_disable_then_enable_restores_bytes(dev: Path) -> None:
    before = dev.read_text()
    env = edit.set_feed_enabled(dev, "sim", False)
    assert env.feeds["sim"].enabled is False
    assert "    venue: sim\n    enabled: false\n" in dev.read_text()
    edit.set_feed_enabled(dev, "sim", True)
    assert dev.read_text() == before


def test_instruments_add_remove(dev: Path) -> None:
    env = edit.add_instruments(dev, "sim", ["XRP-USD"])
    assert env.feeds["sim"].instruments == ["BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD"]
    assert "      - SOL-USD\n      - XRP-USD\n" in dev.read_text()
    env = edit.remove_instruments(dev, "sim", ["BTC-USD", "XRP-USD"])
    assert env.feeds["sim"].instruments == ["ETH-USD", "SOL-USD"]
    with pytest.raises(spec.InvalidSpec) as exc:
        edit.remove_instruments(dev, "sim", ["ETH-USD", "SOL-USD"])
    assert [e.message for e in exc.value.errors] == ["enabled feed has no instruments"]


def test_add_instruments_over_capacity(dev: Path) -> None:
    edit.add_feed(dev, "kr", venue="kraken-v2", instruments=["A/USD"])
    more = [f"S{i}/USD" for i in range(120)]
    with pytest.raises(spec.InvalidSpec) as exc:
        edit.add_instruments(dev, "kr", more)
    (error,) = exc.value.errors
    assert (error.path, error.hint) == ("feeds.kr.shards", "set shards: 2 or more")
    env = edit.add_instruments(dev, "kr", more, reshard=True)
    assert env.feeds["kr"].shards == 2


def test_clients(dev: Path) -> None:
    edit.add_client(dev, "bot", type="trading", scopes=["stream"], description="a bot")
    env = edit.entitle(
        dev, "bot", feeds=["sim"], symbols=["BTC-*"], types=["trade"], expires="2027-01-01"
    )
    bot = env.clients[-1]
    assert (bot.id, bot.type, bot.scopes, bot.description) == (
        "bot",
        "trading",
        ["stream"],
        "a bot",
    )
    (ent,) = bot.entitlements
    assert (ent.feeds, ent.symbols, ent.types, str(ent.expires)) == (
        ["sim"],
        ["BTC-*"],
        ["trade"],
        "2027-01-01",
    )
    assert "        expires: 2027-01-01\n" in dev.read_text()
    with pytest.raises(spec.InvalidSpec):
        edit.entitle(dev, "bot", feeds=["nope"])
    with pytest.raises(spec.InvalidSpec):
        edit.add_client(dev, "Bad_Id", type="display")
    env = edit.revoke(dev, "bot")
    assert env.clients[-1].revoked is True
    env = edit.revoke(dev, "bot", purge=True)
    assert [c.id for c in env.clients] == ["dev-admin", "dev-reader"]


def test_other_indentation_style_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    text = (
        "apiVersion: ssmd/v1\nkind: Environment\nmetadata:\n    name: x\nfeeds:\n"
        "    a:\n        venue: sim\n        instruments:\n        - A\n        - B\n"
    )
    path.write_text(text)
    edit.add_instruments(path, "a", ["C"])
    assert path.read_text() == text + "        - C\n"


def _staging(tmp_path: Path) -> Path:
    text = (
        PROD.read_text()
        .replace("name: prod", "name: staging")
        .replace("replicas: 3\n", "replicas: 1\n")
        .replace("s3://acme-ssmd-prod/md", "s3://acme-ssmd-staging/md")
        .replace("      - XRP/USD\n", "      - XRP/USD\n      - ADA/USD\n")
        .replace("max_age: 2d", "max_age: 3d")
    )
    path = tmp_path / "staging.yaml"
    path.write_text(text)
    return path


def test_promote_keeps_per_environment_sections(tmp_path: Path, prod: Path) -> None:
    staging = _staging(tmp_path)
    before = spec.load(prod)
    after = edit.promote(staging, prod)
    assert after.feeds["kraken"].instruments[-1] == "ADA/USD"
    assert after.streams.max_age == spec.load(staging).streams.max_age
    assert after.streams.replicas == 3
    assert after.metadata == before.metadata
    assert after.storage == before.storage
    assert after.deploy == before.deploy
    assert after.clients == before.clients
    changes = [str(c) for c in spec.diff(before, after)]
    assert changes == ["+ feeds.kraken.instruments: ADA/USD", "~ streams.max_age: 2d -> 3d"]
    assert "    dir: /var/lib/ssmd/raw  # local NVMe\n" in prod.read_text()


def test_promote_refused_when_result_invalid(prod: Path) -> None:
    before = prod.read_bytes()
    with pytest.raises(spec.InvalidSpec) as exc:
        edit.promote(DEV, prod)  # prod's clients name feeds dev does not have
    assert {e.message for e in exc.value.errors} >= {"unknown feed 'kraken'"}
    assert prod.read_bytes() == before


def test_guess_indent() -> None:
    assert edit.guess_indent(DEV.read_text()) == (2, 2)
    assert edit.guess_indent("a:\n    b:\n    - 1\n") == (4, 0)
    assert edit.guess_indent("") == (2, 2)
