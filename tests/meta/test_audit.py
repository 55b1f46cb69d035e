"""The audit log: hash chain, tamper detection, concurrent appends keep one chain."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ssmd.meta import audit, connect
from ssmd.meta.audit import GENESIS, row_hash


def _fill(conn: psycopg.Connection, n: int) -> list[audit.AuditEntry]:
    out = [
        audit.append(conn, "alice", "key.create", f"key/{i}", {"i": i, "s": "x"}, ts_ns=100 + i)
        for i in range(n)
    ]
    conn.commit()
    return out


def test_rows_link_to_each_other_and_hash_their_content(conn: psycopg.Connection) -> None:
    first, second = _fill(conn, 2)
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    assert first.hash == row_hash(
        GENESIS,
        id=first.id,
        ts_ns=100,
        actor="alice",
        action="key.create",
        target="key/0",
        details={"i": 0, "s": "x"},
    )
    result = audit.verify(conn)
    assert result == audit.Verification(ok=True, rows=2, head=second.hash)


def test_empty_log_verifies(conn: psycopg.Connection) -> None:
    assert audit.verify(conn) == audit.Verification(ok=True, rows=0, head=GENESIS)


def test_log_lists_newest_first_with_filters(conn: psycopg.Connection) -> None:
    _fill(conn, 3)
    audit.append(conn, "bob", "env.version", "env/dev", {})
    assert [e.target for e in audit.log(conn, limit=2)] == ["env/dev", "key/2"]
    assert [e.target for e in audit.log(conn, actor="alice")] == ["key/2", "key/1", "key/0"]
    assert [e.actor for e in audit.log(conn, action="env.")] == ["bob"]
    assert audit.log(conn, action="key_") == []  # '_' is literal, not a wildcard


def _tamper(conn: psycopg.Connection, statement: str) -> None:
    """What an attacker with table-owner rights does: bypass the append-only trigger."""
    conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    conn.execute(statement)
    conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    conn.commit()


def test_update_behind_its_back_is_detected_at_that_row(conn: psycopg.Connection) -> None:
    entries = _fill(conn, 5)
    _tamper(conn, f"UPDATE audit_log SET actor = 'mallory' WHERE id = {entries[2].id}")
    result = audit.verify(conn)
    assert result.ok is False
    assert result.broken_id == entries[2].id
    assert result.rows == 3
    assert result.head == entries[1].hash
    assert "changed" in result.reason


def test_details_edit_is_detected(conn: psycopg.Connection) -> None:
    entries = _fill(conn, 3)
    _tamper(
        conn,
        "UPDATE audit_log SET details = jsonb_set(details, '{s}', '\"y\"')"
        f" WHERE id = {entries[0].id}",
    )
    assert audit.verify(conn).broken_id == entries[0].id


def test_rehashed_row_is_detected_at_the_next_row(conn: psycopg.Connection) -> None:
    entries = _fill(conn, 4)
    forged = row_hash(
        entries[1].prev_hash,
        id=entries[1].id,
        ts_ns=101,
        actor="mallory",
        action="key.create",
        target="key/1",
        details={"i": 1, "s": "x"},
    )
    _tamper(
        conn,
        f"UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE id = {entries[1].id}",
    )
    result = audit.verify(conn)
    assert result.broken_id == entries[2].id
    assert "prev_hash" in result.reason


def test_deleted_row_is_detected(conn: psycopg.Connection) -> None:
    entries = _fill(conn, 4)
    _tamper(conn, f"DELETE FROM audit_log WHERE id = {entries[1].id}")
    result = audit.verify(conn)
    assert (result.ok, result.broken_id) == (False, entries[2].id)


def test_plain_update_and_delete_are_refused(conn: psycopg.Connection) -> None:
    _fill(conn, 1)
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("UPDATE audit_log SET actor = 'x'")
    conn.rollback()
    with pytest.raises(psycopg.errors.RestrictViolation):
        conn.execute("DELETE FROM audit_log")
    conn.rollback()
    assert audit.verify(conn).ok


def test_floats_are_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(TypeError, match=r"binary float at \$.price"):
        audit.append(conn, "a", "x", "t", {"price": 1.5})
    with pytest.raises(ValueError, match="actor"):
        audit.append(conn, "", "x", "t")


def test_rolled_back_append_leaves_no_trace(conn: psycopg.Connection) -> None:
    _fill(conn, 1)
    audit.append(conn, "a", "x", "t")
    conn.rollback()
    audit.append(conn, "a", "y", "t")
    conn.commit()
    result = audit.verify(conn)
    assert (result.ok, result.rows) == (True, 2)


def test_concurrent_appends_keep_one_chain(pg_url: str) -> None:
    connect(pg_url).close()
    writers, each = 4, 25
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            with connect(pg_url) as c:
                barrier.wait()
                for i in range(each):
                    audit.append(c, f"w{w}", "test.append", f"t/{i}", {"i": i})
                    c.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with connect(pg_url) as c:
        result = audit.verify(c)
        assert (result.ok, result.rows) == (True, writers * each)
        hashes = c.execute("SELECT prev_hash FROM audit_log").fetchall()
        assert len({h for (h,) in hashes}) == writers * each  # no fork: every prev is unique
