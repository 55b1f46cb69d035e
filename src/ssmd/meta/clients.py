"""Clients and their entitlements, mirrored from the environment definition on apply.

The definition is the source of truth (DESIGN.md §1): `sync_clients(env, clients, actor)`
makes the store match the definition's `clients` section — adds, changes, deactivates —
and writes one audit entry per change. A client dropped from the definition is marked
inactive, not deleted: its keys stop authenticating but its history (and key rows) stay,
and re-adding it restores them.

Input: anything msgspec can turn into builtins — `ssmd.spec.Client` Structs, dicts — with
per client `id` (or `name`), `type` (display | non-display | trading), `scopes`,
`description`, `transforms`, `entitlements`: a list of {feeds, symbols (globs),
types (or record_types), start / end (dates, end INCLUSIVE, as in the spec) or
date_from / date_to (ns or ISO, to exclusive), lookback (ns), expires}. Times are ns or
ISO-8601 strings/dates. `ClientSpec` / `EntitlementSpec` below are the normalized form.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

import msgspec
import psycopg

from ssmd.meta import audit
from ssmd.meta.canon import to_plain
from ssmd.model.time import now_ns, parse_time

ClientType = Literal["display", "non-display", "trading"]
SCOPES: tuple[str, ...] = ("admin", "operator", "read", "stream", "feedback")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY = 86_400 * 10**9


class EntitlementSpec(msgspec.Struct, kw_only=True, frozen=True):
    feeds: tuple[str, ...] = ()
    """Feed names, '*' for every feed; empty = none (entitlements grant, never default)."""
    symbols: tuple[str, ...] = ("*",)
    """Symbol globs (fnmatch) over normalized symbols."""
    record_types: tuple[str, ...] = ()
    """Record types (trade, quote, book, …); empty = every type."""
    date_from_ns: int | None = None
    """History window start (inclusive), ns; None = unbounded."""
    date_to_ns: int | None = None
    """History window end (exclusive), ns; None = unbounded."""
    expires_ns: int | None = None
    """The grant ends at this time, ns; None = never."""
    lookback_ns: int = 0
    """Rolling history window, ns; 0 = unlimited."""


class ClientSpec(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    type: ClientType = "non-display"
    scopes: tuple[str, ...] = ("read",)
    entitlements: tuple[EntitlementSpec, ...] = ()
    description: str = ""
    transforms: tuple[str, ...] = ()
    active: bool = True
    """False when the definition marks the client `revoked: true`."""


class Client(msgspec.Struct, kw_only=True, frozen=True):
    env: str
    id: str
    type: ClientType
    scopes: tuple[str, ...]
    active: bool
    entitlements: tuple[EntitlementSpec, ...]
    created_ns: int
    updated_ns: int
    description: str = ""
    transforms: tuple[str, ...] = ()


class SyncResult(msgspec.Struct, kw_only=True, frozen=True):
    added: list[str] = []
    changed: list[str] = []
    deactivated: list[str] = []
    unchanged: list[str] = []


def _time(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value if isinstance(value, int) else str(value))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


def _pick(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in data and data[name] is not None:
            return data[name]
    return None


def coerce_entitlement(obj: Any, where: str = "entitlement") -> EntitlementSpec:
    data = to_plain(obj)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {data!r}")
    window = data.get("window") or data.get("dates") or {}
    symbols = _pick(data, "symbols", "symbol_globs")
    return EntitlementSpec(
        feeds=_strings(_pick(data, "feeds", "feed"), f"{where}.feeds"),
        symbols=("*",) if symbols is None else _strings(symbols, f"{where}.symbols"),
        record_types=_strings(_pick(data, "record_types", "types"), f"{where}.record_types"),
        date_from_ns=_time(
            _pick(data, "date_from_ns", "date_from", "from", "start")
            or _pick(window, "from", "start"),
            f"{where}.from",
        ),
        date_to_ns=_end(data, window, where),
        expires_ns=_time(_pick(data, "expires_ns", "expires", "expiry"), f"{where}.expires"),
        lookback_ns=_lookback(data.get("lookback"), where),
    )


def _end(data: dict[str, Any], window: dict[str, Any], where: str) -> int | None:
    """Exclusive end in ns. The spec's `end` is an inclusive date: the day after, 00:00."""
    exclusive = _pick(data, "date_to_ns", "date_to", "to") or _pick(window, "to")
    if exclusive is not None:
        return _time(exclusive, f"{where}.to")
    inclusive = _pick(data, "end") or _pick(window, "end")
    end = _time(inclusive, f"{where}.end")
    if end is not None and isinstance(inclusive, str) and _DATE.match(inclusive):
        end += _DAY
    return end


def _lookback(value: Any, where: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{where}.lookback: int ns >= 0 (got {value!r})")
    return value


def coerce_client(obj: Any, where: str = "client") -> ClientSpec:
    """Normalize one client from the spec (Struct, dataclass or dict) into a ClientSpec."""
    data = to_plain(obj)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {data!r}")
    cid = _pick(data, "id", "name", "client_id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ValueError(f"{where}.id: a client id is letters, digits, . _ - (got {cid!r})")
    ctype = data.get("type") or "non-display"
    if ctype not in ("display", "non-display", "trading"):
        raise ValueError(f"{where}.type: display, non-display or trading (got {ctype!r})")
    scopes = _strings(data.get("scopes", ["read"]), f"{where}.scopes")
    bad = [s for s in scopes if s not in SCOPES]
    if bad:
        raise ValueError(f"{where}.scopes: unknown {bad} (known: {', '.join(SCOPES)})")
    ents = data.get("entitlements") or []
    return ClientSpec(
        id=cid,
        type=ctype,
        description=str(data.get("description") or ""),
        transforms=_strings(data.get("transforms"), f"{where}.transforms"),
        active=bool(data.get("active", True)) and not bool(data.get("revoked", False)),
        scopes=tuple(sorted(set(scopes))),
        entitlements=tuple(
            coerce_entitlement(e, f"{where}.entitlements[{i}]") for i, e in enumerate(ents)
        ),
    )


def sync_clients(
    conn: psycopg.Connection,
    env: str,
    clients: Any,
    actor: str,
    *,
    ts_ns: int | None = None,
) -> SyncResult:
    """Make env's clients match `clients` (the full list from the definition); audit each change.

    Runs in the caller's transaction. The environment row is created if missing.
    """
    ts = now_ns() if ts_ns is None else ts_ns
    wanted = [coerce_client(c, f"clients[{i}]") for i, c in enumerate(clients or [])]
    seen: set[str] = set()
    for spec in wanted:
        if spec.id in seen:
            raise ValueError(f"client {spec.id!r} listed twice")
        seen.add(spec.id)
    conn.execute(
        "INSERT INTO environments (name, created_ns) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (env, ts),
    )
    conn.execute("SELECT 1 FROM environments WHERE name = %s FOR UPDATE", (env,))
    existing = {c.id: c for c in list_clients(conn, env, include_inactive=True)}
    result = SyncResult()
    for spec in wanted:
        old = existing.get(spec.id)
        target = f"client/{env}/{spec.id}"
        if old is None:
            conn.execute(
                "INSERT INTO clients (env, client_id, type, scopes, description, transforms,"
                " active, created_ns, updated_ns) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    env,
                    spec.id,
                    spec.type,
                    list(spec.scopes),
                    spec.description,
                    list(spec.transforms),
                    spec.active,
                    ts,
                    ts,
                ),
            )
            _write_entitlements(conn, env, spec)
            audit.append(conn, actor, "client.add", target, to_plain(spec), ts_ns=ts)
            result.added.append(spec.id)
            continue
        changes = _diff(old, spec)
        if not changes:
            result.unchanged.append(spec.id)
            continue
        conn.execute(
            "UPDATE clients SET type = %s, scopes = %s, description = %s, transforms = %s,"
            " active = %s, updated_ns = %s WHERE env = %s AND client_id = %s",
            (
                spec.type,
                list(spec.scopes),
                spec.description,
                list(spec.transforms),
                spec.active,
                ts,
                env,
                spec.id,
            ),
        )
        if "entitlements" in changes:
            conn.execute(
                "DELETE FROM entitlements WHERE env = %s AND client_id = %s", (env, spec.id)
            )
            _write_entitlements(conn, env, spec)
            audit.append(
                conn, actor, "entitlement.change", target, changes.pop("entitlements"), ts_ns=ts
            )
        if changes:
            audit.append(conn, actor, "client.change", target, changes, ts_ns=ts)
        result.changed.append(spec.id)
    for cid, old in existing.items():
        if cid in seen or not old.active:
            continue
        conn.execute(
            "UPDATE clients SET active = false, updated_ns = %s WHERE env = %s AND client_id = %s",
            (ts, env, cid),
        )
        audit.append(conn, actor, "client.deactivate", f"client/{env}/{cid}", {}, ts_ns=ts)
        result.deactivated.append(cid)
    return result


def _diff(old: Client, new: ClientSpec) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if old.active != new.active:
        changes["active"] = {"from": old.active, "to": new.active}
    if old.type != new.type:
        changes["type"] = {"from": old.type, "to": new.type}
    if tuple(old.scopes) != tuple(new.scopes):
        changes["scopes"] = {"from": list(old.scopes), "to": list(new.scopes)}
    if old.description != new.description:
        changes["description"] = {"from": old.description, "to": new.description}
    if tuple(old.transforms) != tuple(new.transforms):
        changes["transforms"] = {"from": list(old.transforms), "to": list(new.transforms)}
    if tuple(old.entitlements) != tuple(new.entitlements):
        changes["entitlements"] = {
            "from": to_plain(old.entitlements),
            "to": to_plain(new.entitlements),
        }
    return changes


def _write_entitlements(conn: psycopg.Connection, env: str, spec: ClientSpec) -> None:
    for pos, ent in enumerate(spec.entitlements):
        conn.execute(
            "INSERT INTO entitlements (env, client_id, position, feeds, symbols, record_types,"
            " date_from_ns, date_to_ns, expires_ns, lookback_ns)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                env,
                spec.id,
                pos,
                list(ent.feeds),
                list(ent.symbols),
                list(ent.record_types),
                ent.date_from_ns,
                ent.date_to_ns,
                ent.expires_ns,
                ent.lookback_ns,
            ),
        )


def list_clients(
    conn: psycopg.Connection, env: str | None = None, *, include_inactive: bool = False
) -> list[Client]:
    """Clients (of one env, or all), with their entitlements, ordered by env and id."""
    rows = conn.execute(
        "SELECT env, client_id, type, scopes, active, created_ns, updated_ns, description,"
        " transforms FROM clients"
        " WHERE (%(env)s::text IS NULL OR env = %(env)s) AND (active OR %(all)s)"
        " ORDER BY env, client_id",
        {"env": env, "all": include_inactive},
    ).fetchall()
    ents: dict[tuple[str, str], list[EntitlementSpec]] = {}
    for e in conn.execute(
        "SELECT env, client_id, feeds, symbols, record_types, date_from_ns, date_to_ns,"
        " expires_ns, lookback_ns FROM entitlements WHERE (%(env)s::text IS NULL OR env = %(env)s)"
        " ORDER BY env, client_id, position",
        {"env": env},
    ).fetchall():
        ents.setdefault((e[0], e[1]), []).append(
            EntitlementSpec(
                feeds=tuple(e[2]),
                symbols=tuple(e[3]),
                record_types=tuple(e[4]),
                date_from_ns=e[5],
                date_to_ns=e[6],
                expires_ns=e[7],
                lookback_ns=e[8],
            )
        )
    return [
        Client(
            env=r[0],
            id=r[1],
            type=r[2],
            scopes=tuple(r[3]),
            active=r[4],
            entitlements=tuple(ents.get((r[0], r[1]), [])),
            created_ns=r[5],
            updated_ns=r[6],
            description=r[7],
            transforms=tuple(r[8]),
        )
        for r in rows
    ]


def get_client(conn: psycopg.Connection, env: str, client_id: str) -> Client | None:
    """One client (active or not), or None."""
    for client in list_clients(conn, env, include_inactive=True):
        if client.id == client_id:
            return client
    return None


def envs_of(conn: psycopg.Connection, client_id: str) -> list[str]:
    """The environments where an active client with this id exists."""
    rows = conn.execute(
        "SELECT env FROM clients WHERE client_id = %s AND active ORDER BY env", (client_id,)
    ).fetchall()
    return [r[0] for r in rows]


def entitled(
    client: Client,
    *,
    feed: str,
    symbol: str,
    record_type: str,
    data_ns: int,
    now: int,
) -> bool:
    """May `client` see this record (feed, normalized symbol, type, data time) now?

    Pure, for the gateway's per-query / per-subscription check: the client must be
    active and one entitlement must hold on every condition (feed, symbol glob, record
    type, date window, rolling lookback, expiry).
    """
    if not client.active:
        return False
    sym = symbol.upper()
    for ent in client.entitlements:
        if ent.expires_ns is not None and now >= ent.expires_ns:
            continue
        if "*" not in ent.feeds and feed not in ent.feeds:
            continue
        if not any(fnmatch.fnmatchcase(sym, glob.upper()) for glob in ent.symbols):
            continue
        if ent.record_types and record_type not in ent.record_types:
            continue
        if ent.date_from_ns is not None and data_ns < ent.date_from_ns:
            continue
        if ent.date_to_ns is not None and data_ns >= ent.date_to_ns:
            continue
        if ent.lookback_ns and data_ns < now - ent.lookback_ns:
            continue
        return True
    return False
