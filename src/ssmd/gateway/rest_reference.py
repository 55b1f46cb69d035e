"""Reference endpoints: health (no key), feeds, instruments (point in time), catalog.

Listings show only what the principal may see: feeds some entitlement names, instruments
whose symbol an entitlement's globs cover on a feed of their venue, catalog days of such
feeds with the symbol lists narrowed the same way. Admin keys see everything.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any

import anyio.to_thread
import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from ssmd.gateway.auth import Principal
from ssmd.gateway.deps import ERRORS, UNAVAILABLE, ApiError, gw, json_response, meter, scoped, when
from ssmd.model.fixed import from_fixed
from ssmd.model.time import now_ns

router = APIRouter(prefix="/v1", tags=["reference"])
Reader = Annotated[Principal, Depends(scoped("read"))]


def sees_symbol(p: Principal, feed: str, symbol: str, now: int) -> bool:
    """Some live entitlement covers this feed and symbol (any type, any date)."""
    if p.has_scope("admin"):
        return True
    sym = symbol.upper()
    return p.client.active and any(
        ("*" in e.feeds or feed in e.feeds)
        and (e.expires_ns is None or now < e.expires_ns)
        and any(fnmatch.fnmatchcase(sym, g.upper()) for g in e.symbols)
        for e in p.entitlements
    )


def sees_feed(p: Principal, feed: str, now: int) -> bool:
    return p.has_scope("admin") or p.may_see_feed(feed, now)


class Health(BaseModel):
    status: str
    env: str
    postgres: str
    draining: bool


@router.get(
    "/health",
    response_model=Health,
    tags=["ops"],
    responses={503: {"model": Health, "description": "Not serving (draining or no Postgres)."}},
)
async def health(request: Request) -> Response:
    """Liveness and readiness without a key: 503 while draining or without Postgres."""
    g = gw(request)
    try:
        await g.pool.run(lambda conn: conn.execute("SELECT 1").fetchone())
        pg = "ok"
    except Exception as exc:
        pg = f"error: {type(exc).__name__}"
    ok = pg == "ok" and not g.draining.is_set()
    doc = {"status": "ok" if ok else "fail", "env": g.env, "postgres": pg,
           "draining": g.draining.is_set()}  # fmt: skip
    return json_response(doc, 200 if ok else 503)


class FeedInfo(BaseModel):
    name: str
    venue: str
    enabled: bool
    channels: list[str]
    instruments: list[str]


class Feeds(BaseModel):
    env: str
    feeds: list[FeedInfo]


@router.get("/feeds", response_model=Feeds, responses=ERRORS)
async def feeds(request: Request, p: Reader) -> Response:
    """The environment's feeds the key is entitled to (all for admin keys)."""
    g = gw(request)
    now = now_ns()
    out = [
        {"name": name, "venue": f.venue, "enabled": f.enabled, "channels": list(f.channels),
         "instruments": list(f.instruments)}
        for name, f in sorted(g.settings.definition.feeds.items())
        if sees_feed(p, name, now)
    ]  # fmt: skip
    resp = json_response({"env": g.env, "feeds": out})
    meter(request, p, "rest:feeds", len(out), resp.body)
    return resp


class Instruments(BaseModel):
    at: int
    count: int
    instruments: list[dict[str, Any]]


@router.get("/instruments", response_model=Instruments, responses={**ERRORS, **UNAVAILABLE})
async def instruments(
    request: Request,
    p: Reader,
    symbol: Annotated[str | None, Query(description="Glob on symbol or venue symbol.")] = None,
    venue: Annotated[str | None, Query(description="Venue id, e.g. kraken-v2.")] = None,
    at: Annotated[str | None, Query(description="Point in time: ns or ISO (default now).")] = None,
) -> Response:
    """The secmaster as it was at `at`: instruments whose symbol the key may see on a feed
    of their venue. Tick and lot sizes are decimal strings."""
    from ssmd.meta import instruments as store

    g = gw(request)
    ts = when(at, "at") or now_ns()
    now = now_ns()
    try:
        found = await g.pool.run(lambda c: store.search(c, venue=venue, symbol=symbol, ts_ns=ts))
    except psycopg.DataError:
        raise  # a value Postgres cannot hold (a NUL byte): the caller's 400, not a 503
    except Exception as exc:
        raise ApiError(503, "unavailable", f"secmaster: {type(exc).__name__}") from None
    by_venue: dict[str, list[str]] = {}
    for name, f in g.settings.definition.feeds.items():
        by_venue.setdefault(f.venue, []).append(name)
    rows = []
    for v in found:
        if not any(sees_symbol(p, feed, v.symbol, now) for feed in by_venue.get(v.venue, [])):
            continue
        rows.append({
            "iid": v.iid, "venue": v.venue, "venue_symbol": v.venue_symbol, "symbol": v.symbol,
            "kind": v.kind, "base": v.base, "quote": v.quote,
            "tick_size": from_fixed(v.tick_size), "lot_size": from_fixed(v.lot_size),
            "status": v.status, "expiry_ns": v.expiry_ns, "settlement": v.settlement,
            "extra": v.extra, "valid_from": v.valid_from, "valid_to": v.valid_to,
            "feeds": sorted(by_venue.get(v.venue, [])),
        })  # fmt: skip
    resp = json_response({"at": ts, "count": len(rows), "instruments": rows})
    meter(request, p, "rest:instruments", len(rows), resp.body)
    return resp


class Catalog(BaseModel):
    env: str
    days: list[dict[str, Any]]


@router.get("/catalog", response_model=Catalog, responses={**ERRORS, **UNAVAILABLE})
async def catalog(
    request: Request,
    p: Reader,
    feed: Annotated[str | None, Query(description="Only this feed.")] = None,
) -> Response:
    """What the archive holds per version, feed and day (types, rows, bytes, gaps,
    symbols), for the feeds the key may see; symbol lists narrowed to its globs."""
    from ssmd.history.catalog import catalog as read_catalog
    from ssmd.storage import StoreError

    g = gw(request)
    now = now_ns()
    try:
        days = await anyio.to_thread.run_sync(lambda: read_catalog(g.store(), g.env, feed))
    except StoreError as exc:
        raise ApiError(503, "unavailable", str(exc)) from None
    out = []
    for day in days:
        if not sees_feed(p, day["feed"], now):
            continue
        day = dict(day)
        day["symbols"] = [s for s in day["symbols"] if sees_symbol(p, day["feed"], s, now)]
        out.append(day)
    resp = json_response({"env": g.env, "days": out})
    meter(request, p, "rest:catalog", len(out), resp.body)
    return resp
