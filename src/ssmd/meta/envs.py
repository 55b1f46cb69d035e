"""Environments and their immutable versions (DESIGN.md §4, `ssmd env apply`).

A version is (env, version, spec, sha256, author, created_ns, message). Adding a spec
whose sha256 equals the latest version's is a no-op that returns that version, so
re-applying is idempotent; anything else gets the next number. Rows are never updated
(a trigger refuses it); rollback is "add the old spec again" as a new version.
"""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from ssmd.meta import audit
from ssmd.meta.canon import canonical_json, sha256_hex
from ssmd.model.time import now_ns


class EnvVersion(msgspec.Struct, kw_only=True, frozen=True):
    env: str
    version: int
    spec: dict[str, Any]
    sha256: str
    author: str
    created_ns: int
    message: str = ""


class EnvSummary(msgspec.Struct, kw_only=True, frozen=True):
    env: str
    latest: int
    sha256: str
    updated_ns: int


def spec_sha256(spec: Any) -> str:
    """The identity of a spec: sha256 of its canonical JSON (key order does not matter)."""
    return sha256_hex(canonical_json(spec))


_COLUMNS = "env, version, spec, sha256, author, created_ns, message"


def _version(row: tuple[Any, ...]) -> EnvVersion:
    return EnvVersion(
        env=row[0],
        version=row[1],
        spec=row[2],
        sha256=row[3],
        author=row[4],
        created_ns=row[5],
        message=row[6],
    )


def add_version(
    conn: psycopg.Connection,
    env: str,
    spec: Any,
    author: str,
    message: str = "",
    *,
    created_ns: int | None = None,
) -> tuple[EnvVersion, bool]:
    """Store `spec` as the next version of `env`; return (version, created).

    created is False when the spec is identical to the latest version (nothing stored,
    nothing audited). When created, the audit entry `env.version` is appended in the
    same transaction. Concurrent adds for one env are serialized by a row lock.
    """
    ts = now_ns() if created_ns is None else created_ns
    plain = msgspec.json.decode(canonical_json(spec))
    if not isinstance(plain, dict):
        raise TypeError("an environment spec is a mapping")
    digest = spec_sha256(plain)
    conn.execute(
        "INSERT INTO environments (name, created_ns) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (env, ts),
    )
    conn.execute("SELECT 1 FROM environments WHERE name = %s FOR UPDATE", (env,))
    current = latest(conn, env)
    if current is not None and current.sha256 == digest:
        return current, False
    number = 1 if current is None else current.version + 1
    row = conn.execute(
        f"INSERT INTO env_versions ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        f" RETURNING {_COLUMNS}",
        (env, number, Jsonb(plain), digest, author, ts, message),
    ).fetchone()
    assert row is not None
    audit.append(
        conn,
        author,
        "env.version",
        f"env/{env}",
        {"version": number, "sha256": digest, "message": message},
        ts_ns=ts,
    )
    return _version(row), True


def latest(conn: psycopg.Connection, env: str) -> EnvVersion | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM env_versions WHERE env = %s ORDER BY version DESC LIMIT 1",
        (env,),
    ).fetchone()
    return None if row is None else _version(row)


def get(conn: psycopg.Connection, env: str, version: int) -> EnvVersion | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM env_versions WHERE env = %s AND version = %s", (env, version)
    ).fetchone()
    return None if row is None else _version(row)


def history(conn: psycopg.Connection, env: str) -> list[EnvVersion]:
    """Every version of `env`, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM env_versions WHERE env = %s ORDER BY version DESC", (env,)
    ).fetchall()
    return [_version(r) for r in rows]


def list_envs(conn: psycopg.Connection) -> list[EnvSummary]:
    """Each environment with its latest version."""
    rows = conn.execute(
        "SELECT DISTINCT ON (env) env, version, sha256, created_ns FROM env_versions"
        " ORDER BY env, version DESC"
    ).fetchall()
    return [EnvSummary(env=r[0], latest=r[1], sha256=r[2], updated_ns=r[3]) for r in rows]
