"""API keys: `ssmd_<id>_<secret>` (DESIGN.md §8).

The id (12 hex chars) is public and names the key in lists and logs; the secret is 32
random bytes, urlsafe base64. Only SHA-256 of the secret is stored, and checks use
hmac.compare_digest, so neither the database nor timing gives the secret away. The full
token exists only in the return value of `create` / `rotate`. Rotation issues a new key
and revokes the old one, optionally after a grace period (revoked_ns in the future).
Every lifecycle change is audited in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import msgspec
import psycopg

from ssmd.meta import audit
from ssmd.meta.clients import SCOPES, get_client
from ssmd.model.time import now_ns

PREFIX = "ssmd_"
_DUMMY = hashlib.sha256(b"ssmd-no-such-key").digest()


class KeyRefused(LookupError):
    """A key operation refused (unknown key, unknown client, bad scope...)."""


class KeyRejected(PermissionError):
    """A token that does not authenticate; `reason` is safe to log, never to echo secrets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ApiKey(msgspec.Struct, kw_only=True, frozen=True):
    """A key as stored: never the secret."""

    key_id: str
    env: str
    client_id: str
    scopes: tuple[str, ...]
    created_ns: int
    created_by: str
    expires_ns: int | None
    revoked_ns: int | None
    replaced_by: str | None
    last_used_ns: int | None

    def state(self, now: int) -> str:
        """'active', 'revoked', 'expired' or 'grace' (revocation scheduled)."""
        if self.revoked_ns is not None and self.revoked_ns <= now:
            return "revoked"
        if self.expires_ns is not None and self.expires_ns <= now:
            return "expired"
        return "grace" if self.revoked_ns is not None else "active"


class IssuedKey(msgspec.Struct, kw_only=True, frozen=True):
    """What create/rotate return: the key and, once only, the full token."""

    key: ApiKey
    token: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_token(token: str) -> tuple[str, str]:
    """Split `ssmd_<id>_<secret>` into (id, secret); ValueError if malformed."""
    if not token.startswith(PREFIX):
        raise ValueError("not an ssmd API key (expected ssmd_<id>_<secret>)")
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or any(c not in "0123456789abcdef" for c in key_id):
        raise ValueError("malformed ssmd API key id")
    if len(secret) < 43:
        raise ValueError("malformed ssmd API key secret")
    return key_id, secret


_COLUMNS = (
    "key_id, env, client_id, scopes, created_ns, created_by, expires_ns, revoked_ns,"
    " replaced_by, last_used_ns"
)


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(
        key_id=row[0],
        env=row[1],
        client_id=row[2],
        scopes=tuple(row[3]),
        created_ns=row[4],
        created_by=row[5],
        expires_ns=row[6],
        revoked_ns=row[7],
        replaced_by=row[8],
        last_used_ns=row[9],
    )


def create(
    conn: psycopg.Connection,
    env: str,
    client_id: str,
    actor: str,
    *,
    scopes: list[str] | tuple[str, ...] | None = None,
    expires_ns: int | None = None,
    ts_ns: int | None = None,
    _action: str = "key.create",
    _details: dict[str, Any] | None = None,
) -> IssuedKey:
    """Issue a key for an existing, active client. Scopes default to the client's own and
    must be a subset of them. The token is in the result and nowhere else."""
    ts = now_ns() if ts_ns is None else ts_ns
    client = get_client(conn, env, client_id)
    if client is None or not client.active:
        raise KeyRefused(
            f"no {'active ' if client else ''}client {client_id!r} in environment {env!r} "
            "(clients come from the definition: add it there and `ssmd env apply`)"
        )
    wanted = tuple(sorted(set(scopes))) if scopes else client.scopes
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise KeyRefused(f"unknown scope(s) {unknown} (known: {', '.join(SCOPES)})")
    beyond = [s for s in wanted if s not in client.scopes]
    if beyond:
        raise KeyRefused(
            f"client {client_id!r} does not hold scope(s) {beyond} "
            f"(it has: {', '.join(client.scopes) or 'none'})"
        )
    if expires_ns is not None and expires_ns <= ts:
        raise KeyRefused("the expiry is in the past")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO api_keys (key_id, env, client_id, secret_sha256, scopes, created_ns,"
        f" created_by, expires_ns) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (key_id, env, client_id, _hash(secret), list(wanted), ts, actor, expires_ns),
    ).fetchone()
    assert row is not None
    details: dict[str, Any] = {
        "env": env,
        "client": client_id,
        "scopes": list(wanted),
        "expires_ns": expires_ns,
    }
    audit.append(conn, actor, _action, f"key/{key_id}", details | (_details or {}), ts_ns=ts)
    return IssuedKey(key=_key(row), token=f"{PREFIX}{key_id}_{secret}")


def get(conn: psycopg.Connection, key_id: str) -> ApiKey | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s", (key_id,)).fetchone()
    return None if row is None else _key(row)


def list_keys(
    conn: psycopg.Connection, *, env: str | None = None, client_id: str | None = None
) -> list[ApiKey]:
    """Keys (never secrets), oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys"
        " WHERE (%(env)s::text IS NULL OR env = %(env)s)"
        " AND (%(client)s::text IS NULL OR client_id = %(client)s)"
        " ORDER BY created_ns, key_id",
        {"env": env, "client": client_id},
    ).fetchall()
    return [_key(r) for r in rows]


def _locked(conn: psycopg.Connection, key_id: str) -> ApiKey:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s FOR UPDATE", (key_id,)
    ).fetchone()
    if row is None:
        raise KeyRefused(f"no API key {key_id!r} (see `ssmd key list`)")
    return _key(row)


def revoke(
    conn: psycopg.Connection, key_id: str, actor: str, *, ts_ns: int | None = None
) -> ApiKey:
    """Revoke now. Revoking a revoked key is refused; a key in grace is revoked at once."""
    ts = now_ns() if ts_ns is None else ts_ns
    key = _locked(conn, key_id)
    if key.state(ts) == "revoked":
        raise KeyRefused(f"API key {key_id} is already revoked")
    row = conn.execute(
        f"UPDATE api_keys SET revoked_ns = %s WHERE key_id = %s RETURNING {_COLUMNS}",
        (ts, key_id),
    ).fetchone()
    assert row is not None
    audit.append(
        conn,
        actor,
        "key.revoke",
        f"key/{key_id}",
        {"env": key.env, "client": key.client_id},
        ts_ns=ts,
    )
    return _key(row)


def rotate(
    conn: psycopg.Connection,
    key_id: str,
    actor: str,
    *,
    grace_ns: int = 0,
    ts_ns: int | None = None,
) -> IssuedKey:
    """A new key with the same client, scopes and expiry; the old one is revoked after
    `grace_ns` (0 = at once) so deployments can switch without downtime."""
    ts = now_ns() if ts_ns is None else ts_ns
    if grace_ns < 0:
        raise KeyRefused("the grace period cannot be negative")
    old = _locked(conn, key_id)
    if old.state(ts) in ("revoked", "expired"):
        raise KeyRefused(f"API key {key_id} is {old.state(ts)}: create a new one instead")
    issued = create(
        conn,
        old.env,
        old.client_id,
        actor,
        scopes=old.scopes,
        expires_ns=old.expires_ns,
        ts_ns=ts,
        _action="key.rotate",
        _details={"replaces": key_id, "grace_ns": grace_ns},
    )
    conn.execute(
        "UPDATE api_keys SET revoked_ns = %s, replaced_by = %s WHERE key_id = %s",
        (ts + grace_ns, issued.key.key_id, key_id),
    )
    return issued


def authenticate(
    conn: psycopg.Connection, token: str, *, ts_ns: int | None = None, touch: bool = True
) -> ApiKey:
    """The key a token belongs to, if it is valid now; else KeyRejected with the reason.

    Checks the secret in constant time, then revocation, expiry and that the client is
    still active. Records last_used_ns when `touch` (the caller commits).
    """
    ts = now_ns() if ts_ns is None else ts_ns
    try:
        key_id, secret = parse_token(token)
    except ValueError as exc:
        raise KeyRejected(str(exc)) from None
    row = conn.execute(
        f"SELECT {_COLUMNS}, secret_sha256 FROM api_keys WHERE key_id = %s", (key_id,)
    ).fetchone()
    stored = bytes(row[-1]) if row is not None else _DUMMY
    if not hmac.compare_digest(stored, _hash(secret)) or row is None:
        raise KeyRejected("unknown API key or wrong secret")
    key = _key(row[:-1])
    state = key.state(ts)
    if state in ("revoked", "expired"):
        raise KeyRejected(f"API key {key_id} is {state}")
    client = get_client(conn, key.env, key.client_id)
    if client is None or not client.active:
        raise KeyRejected(f"client {key.client_id!r} of API key {key_id} is not active")
    if touch:
        conn.execute("UPDATE api_keys SET last_used_ns = %s WHERE key_id = %s", (ts, key_id))
    return key
