"""Environment versions: immutable, numbered, idempotent on identical specs."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ssmd.meta import audit, connect, envs

SPEC = {"apiVersion": "ssmd/v1", "kind": "Environment", "feeds": [{"name": "k", "shards": 2}]}


def test_first_version_is_1_with_sha_author_and_audit(conn: psycopg.Connection) -> None:
    version, created = envs.add_version(conn, "dev", SPEC, "alice", "first", created_ns=1000)
    assert created is True
    assert version.env == "dev"
    assert version.version == 1
    assert version.spec == SPEC
    assert version.sha256 == envs.spec_sha256(SPEC)
    assert version.author == "alice"
    assert version.created_ns == 1000
    assert version.message == "first"
    [entry] = audit.log(conn)
    assert (entry.actor, entry.action, entry.target) == ("alice", "env.version", "env/dev")
    assert entry.details == {"version": 1, "sha256": version.sha256, "message": "first"}


def test_identical_spec_is_a_noop_returning_the_latest(conn: psycopg.Connection) -> None:
    first, _ = envs.add_version(conn, "dev", SPEC, "alice")
    reordered = dict(reversed(list(SPEC.items())))
    again, created = envs.add_version(conn, "dev", reordered, "bob", "again")
    assert created is False
    assert again == first
    assert [v.version for v in envs.history(conn, "dev")] == [1]
    assert len(audit.log(conn)) == 1


def test_changed_spec_gets_next_version_and_rollback_is_a_new_version(
    conn: psycopg.Connection,
) -> None:
    envs.add_version(conn, "dev", SPEC, "alice")
    changed = SPEC | {"streams": {"replicas": 3}}
    v2, created = envs.add_version(conn, "dev", changed, "alice")
    assert (v2.version, created) == (2, True)
    v3, created = envs.add_version(conn, "dev", SPEC, "bob", "rollback to 1")
    assert (v3.version, created) == (3, True)
    assert v3.sha256 == envs.get(conn, "dev", 1).sha256  # type: ignore[union-attr]
    assert [v.version for v in envs.history(conn, "dev")] == [3, 2, 1]
    latest = envs.latest(conn, "dev")
    assert latest is not None and latest.spec == SPEC and latest.author == "bob"
    assert envs.get(conn, "dev", 9) is None
    assert envs.latest(conn, "prod") is None


def test_environments_are_independent(conn: psycopg.Connection) -> None:
    envs.add_version(conn, "dev", SPEC, "a")
    envs.add_version(conn, "prod", SPEC, "a")
    envs.add_version(conn, "prod", SPEC | {"x": 1}, "a")
    assert [(s.env, s.latest) for s in envs.list_envs(conn)] == [("dev", 1), ("prod", 2)]


def test_versions_cannot_be_updated_or_deleted(conn: psycopg.Connection) -> None:
    envs.add_version(conn, "dev", SPEC, "alice")
    conn.commit()
    with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
        conn.execute("UPDATE env_versions SET author = 'mallory'")
    conn.rollback()
    with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
        conn.execute("DELETE FROM env_versions")
    conn.rollback()
    with pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
        conn.execute("TRUNCATE env_versions CASCADE")
    conn.rollback()
    assert envs.latest(conn, "dev").author == "alice"  # type: ignore[union-attr]


def test_concurrent_adds_get_distinct_numbers(pg_url: str) -> None:
    connect(pg_url).close()
    barrier = threading.Barrier(4)
    created: list[int] = []
    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            with connect(pg_url) as c:
                barrier.wait()
                version, _ = envs.add_version(c, "dev", SPEC | {"n": i}, f"user{i}")
                created.append(version.version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(created) == [1, 2, 3, 4]
    with connect(pg_url) as c:
        assert audit.verify(c).ok
        assert audit.verify(c).rows == 4


def test_float_in_spec_is_hashed_but_must_be_a_mapping(conn: psycopg.Connection) -> None:
    version, _ = envs.add_version(conn, "dev", {"deploy": {"cpu": 0.5}}, "a")
    assert version.spec == {"deploy": {"cpu": 0.5}}
    with pytest.raises(TypeError, match="mapping"):
        envs.add_version(conn, "dev", [1, 2], "a")
