"""`ssmd key create|list|revoke|rotate` against the real Postgres."""

from __future__ import annotations

import json

import pytest
from tests.meta.helpers import all_text, cli

from ssmd.meta import audit, clients, connect, keys
from ssmd.meta.keys import KeyRejected


@pytest.fixture
def db(pg_url: str) -> str:
    """A store with clients alice (read, stream) and bob (read) in dev, bob also in prod."""
    with connect(pg_url) as conn:
        clients.sync_clients(
            conn,
            "dev",
            [{"id": "alice", "scopes": ["read", "stream"]}, {"id": "bob", "scopes": ["read"]}],
            "ops",
        )
        clients.sync_clients(conn, "prod", [{"id": "bob", "scopes": ["read"]}], "ops")
    return pg_url


def _authenticate(pg_url: str, token: str) -> keys.ApiKey:
    with connect(pg_url) as conn:
        return keys.authenticate(conn, token)


def test_create_prints_the_token_once_and_stores_only_its_hash(db: str) -> None:
    out = cli("key", "create", "--client", "alice", "--actor", "carol", "--pg-url", db)
    assert out.code == 0, out
    token = out.stdout.strip()
    assert out.stdout == token + "\n"  # stdout is the token alone, for scripts
    assert "shown only now" in out.stderr
    key_id, secret = keys.parse_token(token)
    assert key_id in out.stderr
    key = _authenticate(db, token)
    assert (key.key_id, key.env, key.client_id, key.scopes) == (
        key_id,
        "dev",
        "alice",
        ("read", "stream"),
    )
    with connect(db) as conn:
        dump = all_text(conn)
        [entry] = audit.log(conn, action="key.create")
    assert secret not in dump and token not in dump
    assert (entry.actor, entry.target) == ("carol", f"key/{key_id}")
    listed = cli("key", "list", "--json", "--pg-url", db)
    assert token not in listed.stdout and secret not in listed.stdout
    [doc] = json.loads(listed.stdout)
    assert (doc["key_id"], doc["client"], doc["state"], doc["scopes"]) == (
        key_id,
        "alice",
        "active",
        ["read", "stream"],
    )
    assert doc["last_used_ns"] is not None  # set by the authenticate above


def test_create_json_scope_and_expiry(db: str) -> None:
    out = cli(
        "key", "create", "-c", "alice", "-s", "read", "--expires", "90d", "--json", "--pg-url", db
    )
    assert out.code == 0, out
    doc = json.loads(out.stdout)
    assert doc["scopes"] == ["read"] and doc["state"] == "active"
    assert doc["expires_ns"] - doc["created_ns"] == 90 * 86_400 * 10**9
    assert _authenticate(db, doc["token"]).scopes == ("read",)


def test_create_for_unknown_client_is_refused(db: str) -> None:
    out = cli("key", "create", "--client", "ghost", "--pg-url", db)
    assert out.code == 1
    assert "no client 'ghost' in the store" in out.stderr
    assert "ssmd env apply" in out.stderr
    assert out.stdout == ""
    with connect(db) as conn:
        assert keys.list_keys(conn) == []
        assert audit.log(conn, action="key.") == []


def test_client_in_several_envs_needs_env(db: str) -> None:
    out = cli("key", "create", "--client", "bob", "--pg-url", db)
    assert out.code == 1 and "several environments: dev, prod" in out.stderr
    ok = cli("key", "create", "--client", "bob", "--env", "prod", "--json", "--pg-url", db)
    assert json.loads(ok.stdout)["env"] == "prod"
    wrong = cli("key", "create", "--client", "alice", "--env", "prod", "--pg-url", db)
    assert wrong.code == 1 and "no client 'alice' in environment 'prod'" in wrong.stderr


def test_scope_not_held_and_bad_expiry_are_refused(db: str) -> None:
    out = cli("key", "create", "-c", "bob", "-e", "dev", "-s", "admin", "--pg-url", db)
    assert out.code == 1 and "does not hold scope(s) ['admin']" in out.stderr
    bad = cli("key", "create", "-c", "alice", "--expires", "someday", "--pg-url", db)
    assert bad.code == 1 and "not a time" in bad.stderr


def test_revoke_is_effective(db: str) -> None:
    token = json.loads(cli("key", "create", "-c", "alice", "--json", "--pg-url", db).stdout)[
        "token"
    ]
    key_id = keys.parse_token(token)[0]
    out = cli("key", "revoke", key_id, "--pg-url", db)
    assert out.code == 0, out
    assert out.stdout.strip() == f"revoked key {key_id} (client alice, dev)"
    with pytest.raises(KeyRejected, match="revoked"):
        _authenticate(db, token)
    [doc] = json.loads(cli("key", "list", "--client", "alice", "--json", "--pg-url", db).stdout)
    assert doc["state"] == "revoked"
    again = cli("key", "revoke", key_id, "--pg-url", db)
    assert again.code == 1 and "already revoked" in again.stderr
    unknown = cli("key", "revoke", "000000000000", "--pg-url", db)
    assert unknown.code == 1 and "no API key '000000000000'" in unknown.stderr


def test_rotate_prints_new_token_and_revokes_old(db: str) -> None:
    old = json.loads(cli("key", "create", "-c", "alice", "--json", "--pg-url", db).stdout)
    out = cli("key", "rotate", old["key_id"], "--pg-url", db)
    assert out.code == 0, out
    new_token = out.stdout.strip()
    assert new_token != old["token"]
    assert _authenticate(db, new_token).client_id == "alice"
    with pytest.raises(KeyRejected, match="revoked"):
        _authenticate(db, old["token"])
    with connect(db) as conn:
        stale = keys.get(conn, old["key_id"])
        assert stale is not None and stale.replaced_by == keys.parse_token(new_token)[0]
        assert [e.action for e in audit.log(conn, action="key.")] == ["key.rotate", "key.create"]
        dump = all_text(conn)
    assert keys.parse_token(new_token)[1] not in dump


def test_rotate_with_grace_keeps_old_key_working(db: str) -> None:
    old = json.loads(cli("key", "create", "-c", "alice", "--json", "--pg-url", db).stdout)
    out = cli("key", "rotate", old["key_id"], "--grace", "1h", "--json", "--pg-url", db)
    new = json.loads(out.stdout)
    assert _authenticate(db, old["token"]).key_id == old["key_id"]
    assert _authenticate(db, new["token"]).key_id == new["key_id"]
    states = {
        d["key_id"]: d["state"]
        for d in json.loads(cli("key", "list", "--json", "--pg-url", db).stdout)
    }
    assert states == {old["key_id"]: "grace", new["key_id"]: "active"}
    bad = cli("key", "rotate", old["key_id"], "--grace", "soon", "--pg-url", db)
    assert bad.code == 1 and "not a duration" in bad.stderr


def test_key_list_table(db: str) -> None:
    cli("key", "create", "-c", "alice", "--pg-url", db)
    out = cli("key", "list", "--pg-url", db)
    assert out.code == 0 and "alice" in out.stdout and "active" in out.stdout


def test_unreachable_postgres_exits_3() -> None:
    out = cli("key", "list", "--pg-url", "postgresql://x:pw@127.0.0.1:1/db")
    assert out.code == 3
    assert "Postgres unreachable at postgresql://x@127.0.0.1:1/db" in out.stderr
