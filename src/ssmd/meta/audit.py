"""The audit log: who did what, when, to what, with what — hash-chained (DESIGN.md §8).

Each row's hash is sha256(prev_hash ‖ canonical JSON of its content), the first row's
prev_hash being GENESIS. Appends take a transaction-scoped advisory lock, so concurrent
writers queue up and each one links to the last committed row; the lock is released when
the caller's transaction ends, which is also when the row becomes visible. A row edited,
inserted or deleted behind the log's back breaks the chain, and `verify` names the first
row where it breaks. (Removing the newest rows leaves a shorter valid chain: anchor
`Verification.head` somewhere else if that matters.)
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from ssmd.meta.canon import canonical_json
from ssmd.model.time import now_ns

AUDIT_LOCK = 0x73736D64_0002
"""Advisory lock id serializing appends ('ssmd' + 2)."""

GENESIS = "0" * 64


class AuditEntry(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    ts_ns: int
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class Verification(msgspec.Struct, kw_only=True, frozen=True):
    ok: bool
    rows: int
    """Rows checked (up to and including the broken one)."""
    head: str
    """Hash of the last good row (GENESIS when the log is empty)."""
    broken_id: int | None = None
    reason: str = ""


def row_hash(
    prev_hash: str,
    *,
    id: int,
    ts_ns: int,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
) -> str:
    """The chain hash of one row; the id is inside, so renumbering is detected too."""
    content = canonical_json(
        {
            "id": id,
            "ts_ns": ts_ns,
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
        },
        allow_float=False,
    )
    return hashlib.sha256(prev_hash.encode() + content).hexdigest()


def append(
    conn: psycopg.Connection,
    actor: str,
    action: str,
    target: str,
    details: Any = None,
    *,
    ts_ns: int | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (committed with it, never alone).

    `details` is any JSON-able value (dict, Struct); binary floats are refused because
    they may not hash the same after a round trip through jsonb.
    """
    if not actor or not action:
        raise ValueError("an audit entry needs an actor and an action")
    plain = msgspec.json.decode(canonical_json(details or {}, allow_float=False))
    ts = now_ns() if ts_ns is None else ts_ns
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
    last = conn.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    prev = last[0] if last else GENESIS
    (new_id,) = conn.execute("SELECT nextval(pg_get_serial_sequence('audit_log', 'id'))").fetchone()  # type: ignore[misc]
    digest = row_hash(
        prev, id=new_id, ts_ns=ts, actor=actor, action=action, target=target, details=plain
    )
    conn.execute(
        "INSERT INTO audit_log (id, ts_ns, actor, action, target, details, prev_hash, hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (new_id, ts, actor, action, target, Jsonb(plain), prev, digest),
    )
    return AuditEntry(
        id=new_id,
        ts_ns=ts,
        actor=actor,
        action=action,
        target=target,
        details=plain,
        prev_hash=prev,
        hash=digest,
    )


_COLUMNS = "id, ts_ns, actor, action, target, details, prev_hash, hash"


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(
        id=row[0],
        ts_ns=row[1],
        actor=row[2],
        action=row[3],
        target=row[4],
        details=row[5],
        prev_hash=row[6],
        hash=row[7],
    )


def log(
    conn: psycopg.Connection,
    *,
    limit: int = 50,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
) -> list[AuditEntry]:
    """The newest entries first, optionally filtered (action matches as a prefix)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM audit_log"
        " WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)"
        " AND (%(action)s::text IS NULL OR action LIKE %(action_like)s)"
        " AND (%(target)s::text IS NULL OR target = %(target)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {
            "actor": actor,
            "action": action,
            "action_like": _prefix_like(action or ""),
            "target": target,
            "limit": limit,
        },
    ).fetchall()
    return [_entry(r) for r in rows]


def _prefix_like(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def verify(conn: psycopg.Connection, *, batch: int = 5000) -> Verification:
    """Walk the whole chain in id order; stop at the first row that does not hold."""
    prev = GENESIS
    count = 0
    with conn.cursor(name="ssmd_audit_verify") as cur:
        cur.itersize = batch
        cur.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY id")
        for row in cur:
            entry = _entry(row)
            count += 1
            if entry.prev_hash != prev:
                return Verification(
                    ok=False,
                    rows=count,
                    head=prev,
                    broken_id=entry.id,
                    reason="prev_hash does not match the previous row's hash "
                    "(a row before it was removed, inserted or re-hashed)",
                )
            try:
                expect = row_hash(
                    prev,
                    id=entry.id,
                    ts_ns=entry.ts_ns,
                    actor=entry.actor,
                    action=entry.action,
                    target=entry.target,
                    details=entry.details,
                )
            except (TypeError, ValueError):
                expect = ""  # not canonical JSON any more: it was changed
            if entry.hash != expect:
                return Verification(
                    ok=False,
                    rows=count,
                    head=prev,
                    broken_id=entry.id,
                    reason="content does not match its hash (the row was changed)",
                )
            prev = entry.hash
    return Verification(ok=True, rows=count, head=prev)
