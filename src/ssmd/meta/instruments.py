"""The security master: stable iids and point-in-time instrument attributes.

An instrument is identified by (venue, venue_symbol) and gets an integer iid from an
identity sequence the first time it is seen; iids are never reused because instruments
are never deleted (they change status). Attributes are effective-dated: each version
holds over [valid_from, valid_to) in ns, so `at(ts)` answers what was true at ts.
History is append-only: a change must take effect after the current version began.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from ssmd.model.instrument import Instrument
from ssmd.model.records import InstrumentKind
from ssmd.model.time import now_ns

KINDS: tuple[str, ...] = ("spot", "perp", "future", "option", "binary")
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._:/+-]*$")


class InstrumentVersion(msgspec.Struct, kw_only=True, frozen=True):
    """One effective-dated version of an instrument (valid_to None = current)."""

    iid: int
    venue: str
    venue_symbol: str
    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    tick_size: int
    lot_size: int
    status: str
    expiry_ns: int
    settlement: str
    extra: dict[str, str]
    valid_from: int
    valid_to: int | None
    recorded_ns: int

    def instrument(self) -> Instrument:
        return Instrument(
            venue=self.venue,
            venue_symbol=self.venue_symbol,
            symbol=self.symbol,
            kind=self.kind,
            base=self.base,
            quote=self.quote,
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            status=self.status,
            expiry_ns=self.expiry_ns,
            settlement=self.settlement,
            extra=self.extra,
        )


class Upserted(msgspec.Struct, kw_only=True, frozen=True):
    """What `upsert` did: 'created', 'changed' or 'unchanged', and the version now current."""

    iid: int
    outcome: str
    version: InstrumentVersion


class HistoryError(ValueError):
    """A change that would rewrite the past (effective at or before the current version)."""


def normalize_symbol(symbol: str) -> str:
    """Normalized symbols are upper-case, no spaces: 'btc-usd ' → 'BTC-USD'."""
    out = symbol.strip().upper()
    if not _SYMBOL.match(out):
        raise ValueError(
            f"not a valid normalized symbol: {symbol!r} "
            "(letters, digits and . _ : / + -, e.g. BTC-USD)"
        )
    return out


_ATTRS = (
    "symbol",
    "kind",
    "base",
    "quote",
    "tick_size",
    "lot_size",
    "status",
    "expiry_ns",
    "settlement",
    "extra",
)
_COLUMNS = (
    "i.iid, i.venue, i.venue_symbol, v.symbol, v.kind, v.base, v.quote, v.tick_size,"
    " v.lot_size, v.status, v.expiry_ns, v.settlement, v.extra, v.valid_from, v.valid_to,"
    " v.recorded_ns"
)
_FROM = "instruments i JOIN instrument_versions v ON v.iid = i.iid"
_AT = "v.valid_from <= %(at)s AND (v.valid_to IS NULL OR %(at)s < v.valid_to)"


def _row(row: tuple[Any, ...]) -> InstrumentVersion:
    return InstrumentVersion(
        iid=row[0],
        venue=row[1],
        venue_symbol=row[2],
        symbol=row[3],
        kind=row[4],
        base=row[5],
        quote=row[6],
        tick_size=row[7],
        lot_size=row[8],
        status=row[9],
        expiry_ns=row[10],
        settlement=row[11],
        extra=row[12],
        valid_from=row[13],
        valid_to=row[14],
        recorded_ns=row[15],
    )


def _clean(inst: Instrument) -> Instrument:
    if inst.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}: {inst.kind!r}")
    if not inst.venue or not inst.venue_symbol:
        raise ValueError("an instrument needs a venue and a venue symbol")
    if inst.tick_size < 0 or inst.lot_size < 0:
        raise ValueError("tick and lot sizes are >= 0 (fixed-point, 0 = unknown)")
    if not inst.status:
        raise ValueError("status must not be empty")
    return msgspec.structs.replace(
        inst,
        symbol=normalize_symbol(inst.symbol),
        base=inst.base.strip().upper(),
        quote=inst.quote.strip().upper(),
    )


def _same(a: InstrumentVersion, b: Instrument) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in _ATTRS)


def upsert(
    conn: psycopg.Connection,
    instrument: Instrument,
    effective_ns: int | None = None,
    *,
    recorded_ns: int | None = None,
) -> Upserted:
    """Record `instrument` as true from effective_ns (default now).

    New (venue, venue_symbol) → a new iid. Identical attributes → no-op. Different
    attributes → the current version is closed at effective_ns and a new one opens;
    effective_ns must then be after the current version's valid_from (HistoryError).
    """
    inst = _clean(instrument)
    eff = now_ns() if effective_ns is None else effective_ns
    rec = now_ns() if recorded_ns is None else recorded_ns
    iid = _lock_iid(conn, inst.venue, inst.venue_symbol, rec)
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE i.iid = %s AND v.valid_to IS NULL", (iid,)
    ).fetchone()
    current = None if row is None else _row(row)
    if current is not None:
        if _same(current, inst):
            return Upserted(iid=iid, outcome="unchanged", version=current)
        if eff <= current.valid_from:
            raise HistoryError(
                f"instrument {iid} ({inst.venue} {inst.venue_symbol}) has a version from "
                f"{current.valid_from}; a change must take effect after it (got {eff})"
            )
        conn.execute(
            "UPDATE instrument_versions SET valid_to = %s WHERE iid = %s AND valid_to IS NULL",
            (eff, iid),
        )
    conn.execute(
        "INSERT INTO instrument_versions (iid, valid_from, symbol, kind, base, quote,"
        " tick_size, lot_size, status, expiry_ns, settlement, extra, recorded_ns)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            iid,
            eff,
            inst.symbol,
            inst.kind,
            inst.base,
            inst.quote,
            inst.tick_size,
            inst.lot_size,
            inst.status,
            inst.expiry_ns,
            inst.settlement,
            Jsonb(dict(inst.extra)),
            rec,
        ),
    )
    version = history(conn, iid)[0]
    return Upserted(iid=iid, outcome="created" if current is None else "changed", version=version)


def ensure_iids(
    conn: psycopg.Connection, venue: str, venue_symbols: Mapping[str, str]
) -> dict[str, int]:
    """iids for instruments as a definition names them (name -> the venue's symbol, the
    secmaster's key), allocated on first sight. Allocation needs no attributes: records
    carry the iid from the first capture; `ssmd instrument sync|map` add attributes."""
    rec = now_ns()
    return {name: _lock_iid(conn, venue, vs, rec) for name, vs in venue_symbols.items()}


def _lock_iid(conn: psycopg.Connection, venue: str, venue_symbol: str, rec: int) -> int:
    """The iid of (venue, venue_symbol), row-locked; allocated if new.

    Looks before inserting so routine refreshes do not burn sequence values.
    """
    query = "SELECT iid FROM instruments WHERE venue = %s AND venue_symbol = %s FOR UPDATE"
    for _ in range(2):
        row = conn.execute(query, (venue, venue_symbol)).fetchone()
        if row is not None:
            return int(row[0])
        row = conn.execute(
            "INSERT INTO instruments (venue, venue_symbol, created_ns) VALUES (%s, %s, %s)"
            " ON CONFLICT (venue, venue_symbol) DO NOTHING RETURNING iid",
            (venue, venue_symbol, rec),
        ).fetchone()
        if row is not None:
            return int(row[0])
    raise RuntimeError(f"could not allocate an iid for {venue} {venue_symbol}")


def at(conn: psycopg.Connection, iid: int, ts_ns: int | None = None) -> InstrumentVersion | None:
    """The instrument's attributes as they were at ts_ns (default now), or None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE i.iid = %(iid)s AND {_AT}",
        {"iid": iid, "at": now_ns() if ts_ns is None else ts_ns},
    ).fetchone()
    return None if row is None else _row(row)


def lookup(
    conn: psycopg.Connection, venue: str, venue_symbol: str, ts_ns: int | None = None
) -> InstrumentVersion | None:
    """The version of (venue, venue_symbol) in force at ts_ns (default now)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM}"
        f" WHERE i.venue = %(venue)s AND i.venue_symbol = %(vs)s AND {_AT}",
        {"venue": venue, "vs": venue_symbol, "at": now_ns() if ts_ns is None else ts_ns},
    ).fetchone()
    return None if row is None else _row(row)


def current(conn: psycopg.Connection, venue: str, venue_symbol: str) -> InstrumentVersion | None:
    """The latest (open-ended) version of (venue, venue_symbol), even if it starts later."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM}"
        " WHERE i.venue = %s AND i.venue_symbol = %s AND v.valid_to IS NULL",
        (venue, venue_symbol),
    ).fetchone()
    return None if row is None else _row(row)


def history(conn: psycopg.Connection, iid: int) -> list[InstrumentVersion]:
    """Every version of one instrument, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE i.iid = %s ORDER BY v.valid_from DESC", (iid,)
    ).fetchall()
    return [_row(r) for r in rows]


def search(
    conn: psycopg.Connection,
    *,
    venue: str | None = None,
    symbol: str | None = None,
    ts_ns: int | None = None,
) -> list[InstrumentVersion]:
    """Instruments in force at ts_ns (default now), ordered by iid.

    `symbol` is a glob (fnmatch: * ? [..]) matched, case-insensitively, against the
    normalized symbol or the venue symbol.
    """
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM}"
        f" WHERE (%(venue)s::text IS NULL OR i.venue = %(venue)s) AND {_AT}"
        " ORDER BY i.iid",
        {"venue": venue, "at": now_ns() if ts_ns is None else ts_ns},
    ).fetchall()
    found = [_row(r) for r in rows]
    if symbol:
        pattern = symbol.upper()
        found = [
            v
            for v in found
            if fnmatch.fnmatchcase(v.symbol, pattern)
            or fnmatch.fnmatchcase(v.venue_symbol.upper(), pattern)
        ]
    return found


def find_by_symbol(conn: psycopg.Connection, symbol: str, *, venue: str | None = None) -> list[int]:
    """iids that ever carried this normalized symbol (or venue symbol), optionally on one venue."""
    rows = conn.execute(
        f"SELECT DISTINCT i.iid FROM {_FROM}"
        " WHERE (v.symbol = %(sym)s OR upper(i.venue_symbol) = %(sym)s)"
        " AND (%(venue)s::text IS NULL OR i.venue = %(venue)s) ORDER BY i.iid",
        {"sym": symbol.strip().upper(), "venue": venue},
    ).fetchall()
    return [r[0] for r in rows]


def symbol_map(
    conn: psycopg.Connection, venue: str, ts_ns: int | None = None
) -> dict[str, tuple[str, int]]:
    """venue_symbol → (symbol, iid) for one venue at ts_ns: what a connector needs."""
    return {v.venue_symbol: (v.symbol, v.iid) for v in search(conn, venue=venue, ts_ns=ts_ns)}
