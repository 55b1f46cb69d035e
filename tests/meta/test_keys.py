"""API keys: hashed at rest, shown once, revocable, rotatable, audited."""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from tests.meta.helpers import all_text

from ssmd.meta import audit, clients, keys
from ssmd.meta.keys import KeyRefused, KeyRejected

NOW = 1_800_000_000 * 10**9
HOUR = 3600 * 10**9


@pytest.fixture
def dev(conn: psycopg.Connection) -> psycopg.Connection:
    clients.sync_clients(
        conn,
        "dev",
        [{"id": "alice", "scopes": ["read", "stream"]}, {"id": "bob", "scopes": ["read"]}],
        "ops",
    )
    return conn


def test_token_format_and_only_the_hash_is_stored(dev: psycopg.Connection) -> None:
    issued = keys.create(dev, "dev", "alice", "ops", ts_ns=NOW)
    key_id, secret = keys.parse_token(issued.token)
    assert issued.token == f"ssmd_{key_id}_{secret}"
    assert key_id == issued.key.key_id and len(key_id) == 12
    assert len(secret) >= 43  # 32 bytes, urlsafe base64
    dev.commit()
    dump = all_text(dev)
    assert key_id in dump
    assert secret not in dump
    assert issued.token not in dump
    stored = dev.execute("SELECT secret_sha256 FROM api_keys").fetchone()
    assert stored is not None and bytes(stored[0]) == hashlib.sha256(secret.encode()).digest()


def test_create_defaults_to_client_scopes_and_is_audited(dev: psycopg.Connection) -> None:
    issued = keys.create(dev, "dev", "alice", "ops", expires_ns=NOW + HOUR, ts_ns=NOW)
    k = issued.key
    assert (k.env, k.client_id, k.scopes, k.created_by) == (
        "dev",
        "alice",
        ("read", "stream"),
        "ops",
    )
    assert (k.created_ns, k.expires_ns, k.revoked_ns, k.last_used_ns) == (
        NOW,
        NOW + HOUR,
        None,
        None,
    )
    [entry] = audit.log(dev, action="key.")
    assert (entry.action, entry.target, entry.actor) == ("key.create", f"key/{k.key_id}", "ops")
    assert entry.details == {
        "env": "dev",
        "client": "alice",
        "scopes": ["read", "stream"],
        "expires_ns": NOW + HOUR,
    }
    assert issued.token not in str(entry.details)


def test_create_refuses_unknown_client_and_extra_scopes(dev: psycopg.Connection) -> None:
    with pytest.raises(KeyRefused, match="no client 'carol' in environment 'dev'"):
        keys.create(dev, "dev", "carol", "ops")
    with pytest.raises(KeyRefused, match="no client 'alice' in environment 'prod'"):
        keys.create(dev, "prod", "alice", "ops")
    with pytest.raises(KeyRefused, match=r"does not hold scope\(s\) \['stream'\]"):
        keys.create(dev, "dev", "bob", "ops", scopes=["stream"])
    with pytest.raises(KeyRefused, match="unknown scope"):
        keys.create(dev, "dev", "bob", "ops", scopes=["root"])
    assert keys.create(dev, "dev", "alice", "ops", scopes=["read"]).key.scopes == ("read",)


def test_authenticate_checks_secret_and_records_last_use(dev: psycopg.Connection) -> None:
    issued = keys.create(dev, "dev", "alice", "ops", ts_ns=NOW)
    key = keys.authenticate(dev, issued.token, ts_ns=NOW + 5)
    assert (key.key_id, key.client_id, key.scopes) == (
        issued.key.key_id,
        "alice",
        ("read", "stream"),
    )
    assert keys.get(dev, key.key_id).last_used_ns == NOW + 5  # type: ignore[union-attr]
    wrong = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    with pytest.raises(KeyRejected, match="unknown API key or wrong secret"):
        keys.authenticate(dev, wrong, ts_ns=NOW)
    with pytest.raises(KeyRejected, match="unknown API key or wrong secret"):
        keys.authenticate(dev, "ssmd_0123456789ab_" + "x" * 43, ts_ns=NOW)
    with pytest.raises(KeyRejected, match="not an ssmd API key"):
        keys.authenticate(dev, "Bearer abc", ts_ns=NOW)


def test_revoke_is_effective_and_audited(dev: psycopg.Connection) -> None:
    issued = keys.create(dev, "dev", "alice", "ops", ts_ns=NOW)
    revoked = keys.revoke(dev, issued.key.key_id, "ops", ts_ns=NOW + 10)
    assert revoked.revoked_ns == NOW + 10
    assert revoked.state(NOW + 10) == "revoked"
    with pytest.raises(KeyRejected, match="is revoked"):
        keys.authenticate(dev, issued.token, ts_ns=NOW + 10)
    with pytest.raises(KeyRefused, match="already revoked"):
        keys.revoke(dev, issued.key.key_id, "ops", ts_ns=NOW + 20)
    with pytest.raises(KeyRefused, match="no API key 'ffffffffffff'"):
        keys.revoke(dev, "ffffffffffff", "ops")
    assert [e.action for e in audit.log(dev, action="key.")] == ["key.revoke", "key.create"]


def test_expired_key_is_rejected(dev: psycopg.Connection) -> None:
    issued = keys.create(dev, "dev", "alice", "ops", expires_ns=NOW + HOUR, ts_ns=NOW)
    keys.authenticate(dev, issued.token, ts_ns=NOW + HOUR - 1)
    with pytest.raises(KeyRejected, match="is expired"):
        keys.authenticate(dev, issued.token, ts_ns=NOW + HOUR)
    with pytest.raises(KeyRefused, match="in the past"):
        keys.create(dev, "dev", "alice", "ops", expires_ns=NOW - 1, ts_ns=NOW)


def test_rotate_issues_new_key_and_revokes_old_after_grace(dev: psycopg.Connection) -> None:
    old = keys.create(dev, "dev", "alice", "ops", scopes=["read"], ts_ns=NOW)
    new = keys.rotate(dev, old.key.key_id, "ops", grace_ns=HOUR, ts_ns=NOW + 1)
    assert new.key.key_id != old.key.key_id
    assert (new.key.client_id, new.key.scopes) == ("alice", ("read",))
    stale = keys.get(dev, old.key.key_id)
    assert stale is not None
    assert (stale.revoked_ns, stale.replaced_by) == (NOW + 1 + HOUR, new.key.key_id)
    assert stale.state(NOW + 2) == "grace"
    keys.authenticate(dev, old.token, ts_ns=NOW + HOUR)  # still inside the grace period
    keys.authenticate(dev, new.token, ts_ns=NOW + HOUR)
    with pytest.raises(KeyRejected, match="revoked"):
        keys.authenticate(dev, old.token, ts_ns=NOW + 1 + HOUR)
    [entry] = audit.log(dev, action="key.rotate")
    assert entry.target == f"key/{new.key.key_id}"
    assert entry.details["replaces"] == old.key.key_id
    assert entry.details["grace_ns"] == HOUR
    immediate = keys.rotate(dev, new.key.key_id, "ops", ts_ns=NOW + 5)
    with pytest.raises(KeyRejected, match="revoked"):
        keys.authenticate(dev, new.token, ts_ns=NOW + 5)
    keys.authenticate(dev, immediate.token, ts_ns=NOW + 5)
    dev.commit()
    dump = all_text(dev)
    for token in (old.token, new.token, immediate.token):
        assert keys.parse_token(token)[1] not in dump


def test_deactivated_client_keys_stop_working(dev: psycopg.Connection) -> None:
    issued = keys.create(dev, "dev", "bob", "ops", ts_ns=NOW)
    clients.sync_clients(dev, "dev", [{"id": "alice", "scopes": ["read", "stream"]}], "ops")
    with pytest.raises(KeyRejected, match=r"client 'bob' of API key .* is not active"):
        keys.authenticate(dev, issued.token, ts_ns=NOW + 1)
    with pytest.raises(KeyRefused, match="no active client 'bob'"):
        keys.create(dev, "dev", "bob", "ops")


def test_list_never_shows_secrets(dev: psycopg.Connection) -> None:
    a = keys.create(dev, "dev", "alice", "ops", ts_ns=NOW)
    b = keys.create(dev, "dev", "bob", "ops", ts_ns=NOW + 1)
    listed = keys.list_keys(dev)
    assert [k.key_id for k in listed] == [a.key.key_id, b.key.key_id]
    assert [k.key_id for k in keys.list_keys(dev, client_id="bob")] == [b.key.key_id]
    assert keys.list_keys(dev, env="prod") == []
    assert not hasattr(listed[0], "token")
