"""`ssmd instrument map|list|show [--at]` against the real Postgres."""

from __future__ import annotations

import json

import pytest
from tests.meta.helpers import cli

from ssmd.meta import audit, connect

JAN = "2026-01-01T00:00:00Z"
FEB = "2026-02-01T00:00:00Z"
JAN_NS = 1_767_225_600 * 10**9
FEB_NS = 1_769_904_000 * 10**9


def _map(pg_url: str, *extra: str) -> dict:
    out = cli(
        "instrument", "map", "--venue", "kraken-v2", "--venue-symbol", "XBT/USD",
        *extra, "--json", "--pg-url", pg_url,
    )  # fmt: skip
    assert out.code == 0, out
    return json.loads(out.stdout)


@pytest.fixture
def mapped(pg_url: str) -> int:
    """XBT/USD mapped from January with tick 0.1, changed to tick 0.5 from February."""
    first = _map(
        pg_url, "--symbol", "btc-usd", "--kind", "spot", "--base", "btc", "--quote", "usd",
        "--tick", "0.1", "--lot", "0.00000001", "--at", JAN,
    )  # fmt: skip
    assert first["outcome"] == "created"
    second = _map(pg_url, "--tick", "0.5", "--at", FEB)
    assert (second["iid"], second["outcome"]) == (first["iid"], "changed")
    return int(first["iid"])


def test_map_creates_then_is_idempotent_and_audited(pg_url: str, mapped: int) -> None:
    again = _map(pg_url, "--tick", "0.5")
    assert (again["iid"], again["outcome"]) == (mapped, "unchanged")
    cur = again["current"]
    assert (cur["symbol"], cur["base"], cur["quote"], cur["kind"]) == (
        "BTC-USD",
        "BTC",
        "USD",
        "spot",
    )
    assert (cur["tick_size"], cur["lot_size"]) == ("0.5", "0.00000001")
    assert (cur["valid_from"], cur["valid_to"]) == (FEB_NS, None)
    with connect(pg_url) as conn:
        log = audit.log(conn, action="instrument.")
    assert [(e.action, e.target) for e in log] == [
        ("instrument.change", f"instrument/{mapped}"),
        ("instrument.map", f"instrument/{mapped}"),
    ]
    assert log[0].details["set"] == {"tick_size": 500_000_000}
    assert log[0].details["effective_ns"] == FEB_NS
    text = cli("instrument", "map", "--venue", "kraken-v2", "--venue-symbol", "XBT/USD",
               "--status", "halted", "--pg-url", pg_url)  # fmt: skip
    assert text.code == 0
    assert text.stdout.startswith(f"iid {mapped} changed: kraken-v2 XBT/USD → BTC-USD (spot)")


def test_list_point_in_time(pg_url: str, mapped: int) -> None:
    _map_eth = cli(
        "instrument", "map", "--venue", "kraken-v2", "--venue-symbol", "ETH/USD",
        "--symbol", "ETH-USD", "--kind", "spot", "--at", FEB, "--pg-url", pg_url,
    )  # fmt: skip
    assert _map_eth.code == 0
    now = json.loads(cli("instrument", "list", "--json", "--pg-url", pg_url).stdout)
    assert [(d["iid"], d["symbol"], d["tick_size"]) for d in now] == [
        (mapped, "BTC-USD", "0.5"),
        (mapped + 1, "ETH-USD", "0"),
    ]
    jan = json.loads(
        cli("instrument", "list", "--at", "2026-01-15", "--json", "--pg-url", pg_url).stdout
    )
    assert [(d["iid"], d["tick_size"]) for d in jan] == [(mapped, "0.1")]
    before = json.loads(
        cli("instrument", "list", "--at", str(JAN_NS - 1), "--json", "--pg-url", pg_url).stdout
    )
    assert before == []
    btc = json.loads(
        cli("instrument", "list", "--symbol", "btc-*", "--json", "--pg-url", pg_url).stdout
    )
    assert [d["iid"] for d in btc] == [mapped]
    other = json.loads(
        cli("instrument", "list", "--venue", "binance", "--json", "--pg-url", pg_url).stdout
    )
    assert other == []
    table = cli("instrument", "list", "--pg-url", pg_url)
    assert table.code == 0 and "ETH" in table.stdout  # rich may abbreviate cells


def test_show_by_symbol_and_iid_with_history(pg_url: str, mapped: int) -> None:
    doc = json.loads(cli("instrument", "show", "BTC-USD", "--json", "--pg-url", pg_url).stdout)
    assert doc["iid"] == mapped
    assert doc["current"]["tick_size"] == "0.5"
    assert [(h["valid_from"], h["valid_to"], h["tick_size"]) for h in doc["history"]] == [
        (FEB_NS, None, "0.5"),
        (JAN_NS, FEB_NS, "0.1"),
    ]
    then = json.loads(
        cli(
            "instrument", "show", str(mapped), "--at", "2026-01-20", "--json", "--pg-url", pg_url
        ).stdout
    )
    assert then["current"]["tick_size"] == "0.1"
    assert then["at_ns"] == JAN_NS + 19 * 86_400 * 10**9
    early = json.loads(
        cli(
            "instrument", "show", str(mapped), "--at", "2025-12-31", "--json", "--pg-url", pg_url
        ).stdout
    )
    assert early["current"] is None and len(early["history"]) == 2
    by_venue_symbol = json.loads(
        cli("instrument", "show", "xbt/usd", "--json", "--pg-url", pg_url).stdout
    )
    assert by_venue_symbol["iid"] == mapped
    table = cli("instrument", "show", "BTC-USD", "--pg-url", pg_url)
    assert table.code == 0 and f"iid {mapped}" in table.stdout and "history" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "X-Y"], "not mapped yet: --kind required"),
        (["--kind", "spot"], "not mapped yet: --symbol required"),
        (["--symbol", "X-Y", "--kind", "stock"], "--kind must be one of"),
        (["--symbol", "X Y", "--kind", "spot"], "not a valid normalized symbol"),
        (["--symbol", "X-Y", "--kind", "spot", "--tick", "0.0000000001"], "--tick: more than 9"),
        (["--symbol", "X-Y", "--kind", "spot", "--at", "tuesday"], "--at: not a time"),
    ],
)
def test_map_bad_input_exits_1(pg_url: str, args: list[str], message: str) -> None:
    out = cli("instrument", "map", "--venue", "v", "--venue-symbol", "S", *args, "--pg-url", pg_url)
    assert out.code == 1, out
    assert message in out.stderr


def test_map_cannot_rewrite_history(pg_url: str, mapped: int) -> None:
    out = cli("instrument", "map", "--venue", "kraken-v2", "--venue-symbol", "XBT/USD",
              "--status", "halted", "--at", JAN, "--pg-url", pg_url)  # fmt: skip
    assert out.code == 1 and "must take effect after it" in out.stderr


def test_show_unknown_exits_1(pg_url: str) -> None:
    out = cli("instrument", "show", "NOPE-USD", "--pg-url", pg_url)
    assert out.code == 1 and "no instrument 'NOPE-USD'" in out.stderr


def test_unreachable_postgres_exits_3() -> None:
    out = cli("instrument", "list", "--pg-url", "postgresql://u:pw@127.0.0.1:1/db")
    assert out.code == 3 and "Postgres unreachable at postgresql://u@127.0.0.1:1/db" in out.stderr
