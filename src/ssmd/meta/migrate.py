"""Schema migrations: numbered SQL files applied in order, once, under an advisory lock.

Any component applies them at connect time (there is no manual step), so several may
race at start-up: the transaction-scoped advisory lock lets exactly one apply while the
others wait and then find nothing to do. Each applied file's SHA-256 is recorded; a file
changed after it was applied is an error, because the database no longer matches the
code that describes it.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources

import msgspec
import psycopg

MIGRATE_LOCK = 0x73736D64_0001
"""Advisory lock id for migrations ('ssmd' + 1); fixed so every process agrees."""

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The applied migrations disagree with the shipped ones (changed, unknown, malformed)."""


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str
    checksum: str


def available() -> list[Migration]:
    """The migrations shipped in ssmd/meta/migrations, in version order."""
    found: dict[int, Migration] = {}
    for entry in resources.files("ssmd.meta").joinpath("migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {entry.name}")
        data = entry.read_bytes()
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}")
        found[version] = Migration(
            version, match.group(2), data.decode(), hashlib.sha256(data).hexdigest()
        )
    return [found[v] for v in sorted(found)]


def migrate(conn: psycopg.Connection, shipped: list[Migration] | None = None) -> list[int]:
    """Apply every pending migration in one transaction; return the versions applied.

    Commits on success and rolls back (leaving the schema untouched) on any error; call it
    on a connection with no transaction in progress (as `connect` does).
    """
    shipped = available() if shipped is None else shipped
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise MigrationError("migrate() needs a connection with no transaction in progress")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = conn.execute(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        ).fetchall()
        applied = {int(v): (str(n), str(c)) for v, n, c in rows}
        _check(applied, shipped)
        done: list[int] = []
        for mig in shipped:
            if mig.version in applied:
                continue
            conn.execute(mig.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (mig.version, mig.name, mig.checksum),
            )
            done.append(mig.version)
    return done


def _check(applied: dict[int, tuple[str, str]], shipped: list[Migration]) -> None:
    known = {m.version: m for m in shipped}
    for version, (name, checksum) in sorted(applied.items()):
        mig = known.get(version)
        if mig is None:
            raise MigrationError(
                f"database has migration {version:04d}_{name}, which this ssmd does not ship "
                "(the database is newer than the code: upgrade ssmd)"
            )
        if mig.checksum != checksum:
            raise MigrationError(
                f"migration {version:04d}_{mig.name} changed after it was applied "
                f"(recorded sha256 {checksum[:12]}…, file {mig.checksum[:12]}…): "
                "never edit an applied migration, add a new one"
            )
