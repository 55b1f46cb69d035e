"""Rendered nats-server authorization: values for a small definition, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

from ssmd.bus.natsauth import build, symbol_tokens
from ssmd.cli.main import app
from ssmd.spec import loads

ENV = """\
apiVersion: ssmd/v1
kind: Environment
metadata: {name: dev}
feeds:
  sim:
    venue: sim
    instruments: [BTC-USD, BTC-EUR, ETH-USD]
  kraken:
    venue: kraken-v2
    instruments: [BTC/USD, SOL/USD]
clients:
  - id: all
    type: non-display
    scopes: [stream]
    entitlements: [{feeds: ['*']}]
  - id: btc
    type: display
    scopes: [read, stream]
    entitlements:
      - feeds: [sim, kraken]
        symbols: ['BTC-*', ETH-USD]
        types: [trade, quote]
  - id: old
    type: display
    scopes: [stream]
    entitlements:
      - {feeds: [sim], expires: 2020-01-01}
      - {feeds: [kraken], symbols: [SOL-USD], start: 2024-01-01}
  - id: rest-only
    type: display
    scopes: [read]
    entitlements: [{feeds: [sim]}]
  - id: gone
    type: display
    scopes: [stream]
    revoked: true
    entitlements: [{feeds: [sim]}]
"""
TODAY = dt.date(2026, 1, 1)


def _users():
    auth = build(loads(ENV), today=TODAY)
    return auth, {u.user: u for u in auth.users}


def test_users_and_skips() -> None:
    auth, users = _users()
    assert list(users) == ["ssmd", "all", "btc", "old"]
    assert auth.skipped == {"rest-only": "no `stream` scope", "gone": "revoked"}
    assert users["ssmd"].permissions() is None


def test_everything_entitled_is_one_wildcard_per_feed() -> None:
    _, users = _users()
    assert users["all"].subscribe_allow == ["md.dev.kraken.>", "md.dev.sim.>", "_INBOX_all.>"]
    assert "$JS.API.CONSUMER.CREATE.MD_DEV_SIM.*.md.dev.sim.>" in users["all"].publish_allow


def test_globs_enumerated_exact_symbols_kept() -> None:
    _, users = _users()
    btc = users["btc"]
    assert btc.subscribe_allow == [
        "md.dev.sim.quote.BTC-EUR",
        "md.dev.sim.quote.BTC-USD",
        "md.dev.sim.quote.ETH-USD",
        "md.dev.sim.trade.BTC-EUR",
        "md.dev.sim.trade.BTC-USD",
        "md.dev.sim.trade.ETH-USD",
        "md.dev.kraken.quote.BTC-USD",
        "md.dev.kraken.quote.ETH-USD",
        "md.dev.kraken.trade.BTC-USD",
        "md.dev.kraken.trade.ETH-USD",
        "_INBOX_btc.>",
    ]
    assert any("'BTC-*' is not a NATS wildcard: enumerated 2" in n for n in btc.notes)
    perms = btc.permissions()
    assert perms is not None
    pub = perms["publish"]
    assert pub["deny"] == [
        "md.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_KRAKEN.all.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_KRAKEN.gone.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_KRAKEN.old.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_KRAKEN.rest-only.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_SIM.all.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_SIM.gone.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_SIM.old.>",
        "$JS.API.CONSUMER.CREATE.MD_DEV_SIM.rest-only.>",
    ]
    assert pub["allow"][:3] == [
        "$JS.API.INFO",
        "$JS.API.STREAM.INFO.MD_DEV_KRAKEN",
        "$JS.API.CONSUMER.CREATE.MD_DEV_KRAKEN.*.md.dev.kraken.quote.BTC-USD",
    ]
    assert "$JS.API.CONSUMER.MSG.NEXT.MD_DEV_SIM.btc" in pub["allow"]
    assert not any(a.startswith("md.") for a in pub["allow"])


def test_expired_skipped_windowed_live_only() -> None:
    _, users = _users()
    old = users["old"]
    assert old.subscribe_allow == ["md.dev.kraken.*.SOL-USD", "_INBOX_old.>"]
    assert old.publish_allow == []  # history window: no JetStream consumer
    assert any("expired" in n for n in old.notes)
    assert any("history window" in n for n in old.notes)


def test_symbol_tokens() -> None:
    assert symbol_tokens("*", []) == (["*"], "")
    assert symbol_tokens("BTC-USD", []) == (["BTC-USD"], "")
    assert symbol_tokens("btc-usd", []) == (["BTC-USD", "btc-usd"], "")
    toks, note = symbol_tokens("?TC-*", ["BTC-USD", "ETH-USD"])
    assert toks == ["BTC-USD"] and "enumerated 1" in note
    assert symbol_tokens("BTC-*", [])[0] == []


def test_config_text() -> None:
    auth, _ = _users()
    text = auth.config({u.user: f"pw-{u.user}" for u in auth.users})
    assert text.startswith("# ssmd nats-auth render --env dev")
    assert 'user: "btc"\n      password: "pw-btc"' in text
    assert 'subscribe: { allow: ["md.dev.kraken.>", "md.dev.sim.>", "_INBOX_all.>"] }' in text


def test_cli_render(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(ENV)
    monkeypatch.setenv("BTC_PW", "s3cret")
    out = tmp_path / "auth.conf"
    res = CliRunner().invoke(
        app,
        ["nats-auth", "render", "--env", str(path), "--password", "btc=env:BTC_PW",
         "-o", str(out), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert sorted(doc["generated"]) == ["all", "old", "ssmd"]
    assert "config" not in doc
    assert (out.stat().st_mode & 0o777) == 0o600
    text = out.read_text()
    assert 'password: "s3cret"' in text
    assert f'password: "{doc["generated"]["all"]}"' in text
    res = CliRunner().invoke(app, ["nats-auth", "render", "--env", str(path)])
    assert res.exit_code == 0 and "authorization {" in res.stdout
    res = CliRunner().invoke(
        app, ["nats-auth", "render", "--env", str(path), "--password", "nobody=env:X"]
    )
    assert res.exit_code == 1
