"""Clients and entitlements mirrored from the definition, each change audited."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
import pytest

from ssmd.meta import audit, clients
from ssmd.meta.clients import ClientSpec, EntitlementSpec

DAY = 86_400 * 10**9
JAN1_2026 = 1_767_225_600 * 10**9


def _spec() -> list[dict[str, Any]]:
    return [
        {
            "id": "alice",
            "type": "display",
            "scopes": ["read", "stream"],
            "entitlements": [
                {
                    "feeds": ["kraken"],
                    "symbols": ["BTC-*"],
                    "record_types": ["trade"],
                    "from": "2026-01-01",
                    "to": JAN1_2026 + DAY,
                    "expires": "2027-01-01T00:00:00Z",
                }
            ],
        },
        {"id": "bot", "type": "trading", "scopes": ["stream"]},
    ]


def test_sync_adds_clients_with_entitlements_and_audits(conn: psycopg.Connection) -> None:
    result = clients.sync_clients(conn, "dev", _spec(), "ops", ts_ns=7)
    assert (result.added, result.changed, result.deactivated) == (["alice", "bot"], [], [])
    alice, bot = clients.list_clients(conn, "dev")
    assert (alice.id, alice.type, alice.scopes, alice.active) == (
        "alice",
        "display",
        ("read", "stream"),
        True,
    )
    assert alice.entitlements == (
        EntitlementSpec(
            feeds=("kraken",),
            symbols=("BTC-*",),
            record_types=("trade",),
            date_from_ns=JAN1_2026,
            date_to_ns=JAN1_2026 + DAY,
            expires_ns=1_798_761_600 * 10**9,
        ),
    )
    assert (bot.type, bot.scopes, bot.entitlements) == ("trading", ("stream",), ())
    log = audit.log(conn)
    assert [(e.action, e.target) for e in reversed(log)] == [
        ("client.add", "client/dev/alice"),
        ("client.add", "client/dev/bot"),
    ]
    assert log[1].details["entitlements"][0]["symbols"] == ["BTC-*"]
    assert all(e.actor == "ops" and e.ts_ns == 7 for e in log)


def test_resync_identical_is_silent(conn: psycopg.Connection) -> None:
    clients.sync_clients(conn, "dev", _spec(), "ops")
    result = clients.sync_clients(conn, "dev", _spec(), "ops")
    assert result.unchanged == ["alice", "bot"]
    assert (result.added, result.changed, result.deactivated) == ([], [], [])
    assert len(audit.log(conn)) == 2


def test_changes_and_removals_are_audited_with_what_changed(conn: psycopg.Connection) -> None:
    clients.sync_clients(conn, "dev", _spec(), "ops")
    spec = _spec()[:1]
    spec[0]["scopes"] = ["read"]
    spec[0]["entitlements"][0]["symbols"] = ["BTC-*", "ETH-*"]
    result = clients.sync_clients(conn, "dev", spec, "ops")
    assert (result.changed, result.deactivated) == (["alice"], ["bot"])
    assert [c.id for c in clients.list_clients(conn, "dev")] == ["alice"]
    bot = clients.get_client(conn, "dev", "bot")
    assert bot is not None and bot.active is False
    newest = {e.action: e for e in audit.log(conn, limit=3)}
    assert set(newest) == {"entitlement.change", "client.change", "client.deactivate"}
    assert newest["client.change"].details == {
        "scopes": {"from": ["read", "stream"], "to": ["read"]}
    }
    ent = newest["entitlement.change"].details
    assert ent["from"][0]["symbols"] == ["BTC-*"]
    assert ent["to"][0]["symbols"] == ["BTC-*", "ETH-*"]
    # re-adding restores the same client row
    result = clients.sync_clients(conn, "dev", _spec(), "ops")
    assert sorted(result.changed) == ["alice", "bot"]
    assert clients.get_client(conn, "dev", "bot").active is True  # type: ignore[union-attr]
    assert audit.verify(conn).ok


def test_environments_have_separate_clients(conn: psycopg.Connection) -> None:
    clients.sync_clients(conn, "dev", _spec(), "ops")
    clients.sync_clients(conn, "prod", _spec()[1:], "ops")
    assert [c.id for c in clients.list_clients(conn, "prod")] == ["bot"]
    assert clients.envs_of(conn, "bot") == ["dev", "prod"]
    assert clients.envs_of(conn, "alice") == ["dev"]


def test_structs_from_the_spec_are_accepted(conn: psycopg.Connection) -> None:
    class Ent(msgspec.Struct):
        feeds: list[str]
        symbols: list[str]
        window: dict[str, str]

    class Cl(msgspec.Struct):
        name: str
        type: str
        scopes: list[str]
        entitlements: list[Ent]

    spec = [Cl("carol", "non-display", ["read"], [Ent(["f"], ["*"], {"from": "2026-01-01"})])]
    clients.sync_clients(conn, "dev", spec, "ops")
    [carol] = clients.list_clients(conn, "dev")
    assert carol.entitlements == (EntitlementSpec(feeds=("f",), date_from_ns=JAN1_2026),)
    assert clients.coerce_client(ClientSpec(id="x")) == ClientSpec(id="x")


@pytest.mark.parametrize(
    ("client", "message"),
    [
        ({"id": "bad id"}, r"clients\[0\].id"),
        ({"id": "a", "type": "robot"}, r"clients\[0\].type"),
        ({"id": "a", "scopes": ["root"]}, r"unknown \['root'\]"),
        ({"id": "a", "entitlements": [{"to": "yesterday"}]}, r"entitlements\[0\].to: not a time"),
    ],
)
def test_bad_clients_are_refused_with_their_path(
    conn: psycopg.Connection, client: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        clients.sync_clients(conn, "dev", [client], "ops")


def test_duplicate_ids_are_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="listed twice"):
        clients.sync_clients(conn, "dev", [{"id": "a"}, {"id": "a"}], "ops")


def test_the_spec_client_struct_syncs_with_inclusive_end_and_revoked() -> None:
    from ssmd.spec.model import Client as SpecClient

    raw = {
        "id": "desk",
        "type": "display",
        "description": "trading desk screens",
        "scopes": ["stream", "read"],
        "transforms": ["bps"],
        "entitlements": [
            {
                "feeds": ["kraken"],
                "symbols": ["BTC-*"],
                "types": ["trade"],
                "start": "2026-01-01",
                "end": "2026-01-31",
                "lookback": DAY,
                "expires": "2027-01-01",
            }
        ],
    }
    spec = msgspec.convert(raw, SpecClient, strict=False)
    got = clients.coerce_client(spec)
    assert got == ClientSpec(
        id="desk",
        type="display",
        description="trading desk screens",
        scopes=("read", "stream"),
        transforms=("bps",),
        entitlements=(
            EntitlementSpec(
                feeds=("kraken",),
                symbols=("BTC-*",),
                record_types=("trade",),
                date_from_ns=JAN1_2026,
                date_to_ns=JAN1_2026 + 31 * DAY,  # end 2026-01-31 inclusive
                expires_ns=1_798_761_600 * 10**9,
                lookback_ns=DAY,
            ),
        ),
    )
    revoked = msgspec.convert(raw | {"revoked": True}, SpecClient, strict=False)
    assert clients.coerce_client(revoked).active is False


def test_revoked_in_definition_deactivates(conn: psycopg.Connection) -> None:
    clients.sync_clients(conn, "dev", [{"id": "a"}], "ops")
    result = clients.sync_clients(conn, "dev", [{"id": "a", "revoked": True}], "ops")
    assert result.changed == ["a"]
    assert clients.list_clients(conn, "dev") == []
    [entry] = audit.log(conn, action="client.change")
    assert entry.details == {"active": {"from": True, "to": False}}
    stored = clients.get_client(conn, "dev", "a")
    assert stored is not None and stored.active is False


def test_entitled_checks_every_condition() -> None:
    ent = EntitlementSpec(
        feeds=("kraken",),
        symbols=("BTC-*",),
        record_types=("trade",),
        date_from_ns=JAN1_2026,
        date_to_ns=JAN1_2026 + 31 * DAY,
        expires_ns=JAN1_2026 + 365 * DAY,
        lookback_ns=60 * DAY,
    )
    client = clients.Client(
        env="dev",
        id="desk",
        type="display",
        scopes=("read",),
        active=True,
        entitlements=(ent,),
        created_ns=0,
        updated_ns=0,
    )
    now = JAN1_2026 + 40 * DAY
    ok = {"feed": "kraken", "symbol": "btc-usd", "record_type": "trade", "data_ns": JAN1_2026}
    assert clients.entitled(client, **ok, now=now) is True
    assert clients.entitled(client, **ok | {"feed": "binance"}, now=now) is False
    assert clients.entitled(client, **ok | {"symbol": "ETH-USD"}, now=now) is False
    assert clients.entitled(client, **ok | {"record_type": "book"}, now=now) is False
    assert clients.entitled(client, **ok | {"data_ns": JAN1_2026 - 1}, now=now) is False
    assert clients.entitled(client, **ok | {"data_ns": JAN1_2026 + 31 * DAY}, now=now) is False
    assert clients.entitled(client, **ok, now=JAN1_2026 + 61 * DAY) is False  # lookback
    assert clients.entitled(client, **ok, now=JAN1_2026 + 365 * DAY) is False  # expired
    anything = EntitlementSpec(feeds=("*",))
    wide = msgspec.structs.replace(client, entitlements=(ent, anything))
    assert clients.entitled(wide, **ok | {"feed": "x", "record_type": "book"}, now=now) is True
    assert clients.entitled(msgspec.structs.replace(wide, active=False), **ok, now=now) is False
