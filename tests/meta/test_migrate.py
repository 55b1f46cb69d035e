"""Migrations: applied automatically, once, under a lock; a changed one is refused."""

from __future__ import annotations

import multiprocessing
import re
import threading
from pathlib import Path

import msgspec
import psycopg
import pytest

import ssmd.meta
from ssmd.meta import MetaUnreachable, MigrationError, connect, redact_url
from ssmd.meta.migrate import Migration, available, migrate

MIGRATIONS = Path(ssmd.meta.__file__).parent / "migrations"
FILES = sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))
VERSIONS = [int(f.name[:4]) for f in FILES]
# What the SQL itself says it creates (read from the files, not from the code under test).
TABLES = {"schema_migrations"} | {
    name
    for f in FILES
    for name in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", f.read_text(), re.I)
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as raw:
        rows = raw.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows.fetchall()}


def _applied(url: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(url) as raw:
        return raw.execute(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        ).fetchall()


def test_connect_applies_every_migration_with_its_checksum(pg_url: str) -> None:
    assert _tables(pg_url) == set()
    connect(pg_url).close()
    assert _tables(pg_url) == TABLES
    shipped = available()
    assert VERSIONS[:6] == [1, 2, 3, 4, 5, 6]  # the foundation's, in order
    assert {"environments", "env_versions", "instruments", "api_keys", "audit_log"} <= TABLES
    assert [m.version for m in shipped] == VERSIONS
    assert _applied(pg_url) == [(m.version, m.name, m.checksum) for m in shipped]
    assert all(len(m.checksum) == 64 for m in shipped)


def test_second_connect_applies_nothing(pg_url: str) -> None:
    connect(pg_url).close()
    with connect(pg_url, migrate=False) as conn:
        assert migrate(conn) == []
    assert len(_applied(pg_url)) == len(VERSIONS)


def test_pending_migration_is_applied_on_next_connect(pg_url: str) -> None:
    shipped = available()
    with connect(pg_url, migrate=False) as conn:
        assert migrate(conn, shipped[:2]) == [1, 2]
        assert migrate(conn, shipped) == VERSIONS[2:]
        assert migrate(conn, shipped) == []


def test_changed_applied_migration_is_an_error(pg_url: str) -> None:
    connect(pg_url).close()
    shipped = available()
    edited = msgspec.structs.replace(shipped[1], checksum="f" * 64)
    with (
        connect(pg_url, migrate=False) as conn,
        pytest.raises(MigrationError, match="0002_instruments changed after it was applied"),
    ):
        migrate(conn, [shipped[0], edited, *shipped[2:]])


def test_unknown_applied_migration_is_an_error(pg_url: str) -> None:
    connect(pg_url).close()
    with psycopg.connect(pg_url) as raw:
        raw.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x')")
    with pytest.raises(MigrationError, match="0099_future, which this ssmd does not ship"):
        connect(pg_url)


def test_failing_migration_rolls_back_entirely(pg_url: str) -> None:
    shipped = available()
    broken = Migration(99, "broken", "CREATE TABLE half_done (x int); SELECT 1/0;", "0" * 64)
    with connect(pg_url, migrate=False) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            migrate(conn, [*shipped, broken])
        conn.rollback()
    assert _tables(pg_url) == set()


def test_concurrent_starters_in_threads_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        try:
            barrier.wait()
            connect(pg_url).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert [v for v, _, _ in _applied(pg_url)] == VERSIONS
    assert _tables(pg_url) == TABLES


def _start_in_process(url: str) -> None:
    connect(url).close()


def test_concurrent_starters_in_processes_migrate_once(pg_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_start_in_process, args=(pg_url,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert [v for v, _, _ in _applied(pg_url)] == VERSIONS


def test_unreachable_postgres_names_the_url_without_password() -> None:
    url = "postgresql://alice:s3cret@127.0.0.1:1/ssmd"
    with pytest.raises(MetaUnreachable) as caught:
        connect(url)
    message = str(caught.value)
    assert "postgresql://alice@127.0.0.1:1/ssmd" in message
    assert "s3cret" not in message
    assert "Connection refused" in message
    assert "ssmd up" in message
    assert caught.value.where == "postgresql://alice@127.0.0.1:1/ssmd"


def test_redact_url_forms() -> None:
    assert redact_url("postgresql://u:pw@h:5432/db?sslmode=off&password=x") == (
        "postgresql://u@h:5432/db?sslmode=off"
    )
    assert redact_url("postgresql://h/db") == "postgresql://h/db"
    assert redact_url("host=h password=x dbname=d") == "host=h dbname=d"
