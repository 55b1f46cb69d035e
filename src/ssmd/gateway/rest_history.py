"""History endpoints: trades, quotes, any record type, book at a time, bars.

Each one: scope `read`; the feed must be in the environment; the range is clipped to the
principal's entitlements (403 when nothing of it is entitled, `windows.py`); every
record is checked again before it leaves; then a page (`limit`, `cursor`) in the asked
format. The queries themselves are `ssmd.history.query.History`'s, run in a thread.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import anyio.to_thread
import orjson
import pyarrow as pa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ssmd.gateway import formats
from ssmd.gateway.auth import Principal, authorize
from ssmd.gateway.deps import (
    ERRORS,
    UNAVAILABLE,
    ApiError,
    ErrorBody,
    bad_request,
    gw,
    json_response,
    meter,
    scoped,
    when,
)
from ssmd.gateway.windows import entitled_intervals, record_time
from ssmd.model.fixed import from_fixed
from ssmd.model.records import RECORD_TYPES
from ssmd.model.time import now_ns

NO_FEED: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such feed in this environment."}
}
router = APIRouter(prefix="/v1", tags=["history"], responses={**ERRORS, **NO_FEED, **UNAVAILABLE})

Reader = Annotated[Principal, Depends(scoped("read"))]
Feed = Annotated[str, Query(description="Feed name from the environment.", min_length=1)]
Symbol = Annotated[str, Query(description="Normalized symbol, e.g. BTC-USD.", min_length=1)]
From = Annotated[str, Query(alias="from", description="Start, inclusive: ns or ISO-8601.")]
To = Annotated[str, Query(description="End, exclusive: ns or ISO-8601.")]
By = Annotated[Literal["ts_event", "ts_recv"], Query(description="Time column of the range.")]
Fmt = Annotated[
    Literal["json", "jsonl", "csv", "parquet"] | None,
    Query(description="Output format (else the Accept header; default json)."),
]
Times = Annotated[
    Literal["ns", "iso"], Query(description="Timestamps in text formats: ns or ISO-8601.")
]
Limit = Annotated[int | None, Query(ge=1, description="Rows per page (default 1000).")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
RecordType = Literal["trade", "quote", "book", "status", "gap", "instrument"]

DATA_FORMATS = {
    200: {
        "description": "A page of records (JSON), or the records as JSON lines, CSV, Parquet.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class Page(BaseModel):
    feed: str
    type: str
    symbol: str
    from_: int = Field(alias="from")
    to: int
    by: str
    count: int
    records: list[dict[str, Any]]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    clipped: bool = Field(description="Part of the range was outside the entitlements.")
    intervals: list[list[int]] = Field(description="The entitled [from, to) intervals read.")


class BookLevels(BaseModel):
    feed: str
    symbol: str
    at: int
    by: str
    known: bool
    reason: str
    snapshot_ts_recv: int
    deltas: int
    last_ts_recv: int
    bids: list[list[str]]
    asks: list[list[str]]


# -- helpers ----------------------------------------------------------------------------


def _feed(request: Request, feed: str) -> None:
    feeds = gw(request).settings.definition.feeds
    if feed not in feeds:
        raise ApiError(404, "no_such_feed", f"no feed {feed!r}; feeds: {', '.join(sorted(feeds))}")


def _range(start: str, end: str) -> tuple[int, int]:
    t0, t1 = when(start, "from"), when(end, "to")
    if t0 is None or t1 is None:
        raise bad_request(f"{'from' if t0 is None else 'to'}: a time is required")
    if t1 <= t0:
        raise bad_request(f"empty range: to ({t1}) must be after from ({t0})")
    return t0, t1


def _limit(request: Request, limit: int | None) -> int:
    s = gw(request).settings
    if limit is None:
        return s.default_limit
    if limit > s.max_limit:
        raise bad_request(f"limit is at most {s.max_limit}, not {limit}")
    return limit


def encode_cursor(ts: int, skip: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([ts, skip])).decode().rstrip("=")


def decode_cursor(cursor: str, start: int, end: int) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, skip = orjson.loads(raw)
        if not (isinstance(ts, int) and isinstance(skip, int) and skip >= 0):
            raise ValueError
    except (ValueError, binascii.Error, TypeError, orjson.JSONDecodeError):
        raise bad_request("cursor: not a cursor from this API (use next_cursor)") from None
    if not start <= ts < end:
        raise bad_request("cursor: outside [from, to) of this query")
    return ts, skip


def paginate(
    rows: list[Any], key: Any, limit: int, cursor: tuple[int, int] | None
) -> tuple[list[Any], str | None]:
    """Rows sorted by key(row); a cursor is (key of the next row, rows with that key
    already returned), so pages are stable even when many rows share a timestamp."""
    if cursor is not None:
        ts, skip = cursor
        rows = [r for r in rows if key(r) >= ts]
        seen = 0
        while seen < skip and seen < len(rows) and key(rows[seen]) == ts:
            seen += 1
        rows = rows[seen:]
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    nxt = key(rows[limit])
    done = sum(1 for r in page if key(r) == nxt)
    if cursor is not None and cursor[0] == nxt:
        done += cursor[1]
    return page, encode_cursor(nxt, done)


async def _read(request: Request, feed: str, fn: str, *args: Any) -> Any:
    """Run a History method in a thread; library errors become 400 / 503."""
    from ssmd.history.query import QueryError
    from ssmd.history.stream import StreamUnavailable
    from ssmd.storage import StoreError

    def call() -> Any:
        return getattr(gw(request).history(feed), fn)(*args)

    try:
        return await anyio.to_thread.run_sync(call)
    except QueryError as exc:
        raise bad_request(str(exc)) from None
    except (StreamUnavailable, StoreError) as exc:
        raise ApiError(503, "unavailable", str(exc)) from None


def _export_audit(request: Request, p: Principal, what: dict[str, Any]) -> None:
    """Exports (any non-JSON history format) go to the audit log."""
    from ssmd.meta import audit

    target = f"data/{p.env}/{what['feed']}/{what['type']}/{what['symbol']}"
    details = {"key": p.key_id, **what}
    gw(request).pool.run_sync(
        lambda conn: audit.append(conn, f"client:{p.client_id}", "data.export", target, details)
    )


async def _respond(
    request: Request,
    p: Principal,
    route: str,
    fmt: str,
    times: str,
    doc: dict[str, Any],
    wire: list[dict[str, Any]],
    table: pa.Table | None,
    columns: list[str],
) -> Response:
    headers = {"X-Next-Cursor": doc["next_cursor"]} if doc.get("next_cursor") else {}
    if doc.get("clipped"):
        headers["X-Clipped"] = "true"
    if times == "iso":
        wire = [formats.iso_times(r) for r in wire]
    if fmt == "json":
        body = orjson.dumps({**doc, "records": wire})
    elif fmt == "jsonl":
        body = formats.jsonl(wire)
    elif fmt == "csv":
        body = formats.csv_bytes(wire, columns)
    else:
        assert table is not None
        body = formats.parquet(table)
    if fmt != "json":
        what = {k: doc[k] for k in ("feed", "type", "symbol", "from", "to", "by") if k in doc}
        await anyio.to_thread.run_sync(
            _export_audit, request, p, {**what, "format": fmt, "rows": len(wire)}
        )
    meter(request, p, "export" if fmt != "json" else f"rest:{route}", len(wire), body)
    gw(request).rows.labels(route).inc(len(wire))
    return Response(body, media_type=formats.FORMATS[fmt], headers=headers)


async def _records(
    request: Request,
    p: Principal,
    route: str,
    kind: str,
    feed: str,
    symbol: str,
    start: str,
    end: str,
    by: str,
    fmt: str | None,
    times: str,
    limit: int | None,
    cursor: str | None,
) -> Response:
    from ssmd.history.schema import columns, from_table, to_table
    from ssmd.model.codec import to_wire

    _feed(request, feed)
    t0, t1 = _range(start, end)
    try:
        out = formats.negotiate(fmt, request.headers.get("accept"))
    except formats.FormatError as exc:
        raise bad_request(str(exc)) from None
    n = _limit(request, limit)
    pos = decode_cursor(cursor, t0, t1) if cursor else None
    now = now_ns()
    spans = entitled_intervals(p, feed, symbol, kind, pos[0] if pos else t0, t1, now)
    records: list[Any] = []
    for lo, hi in spans:
        records += from_table(kind, await _read(request, feed, "records", kind, symbol, lo, hi, by))
    records = [
        r
        for r in records
        if p.entitled(feed=feed, symbol=r.symbol, record_type=kind,
                      data_ns=record_time(r.ts_event, r.ts_recv), now=now)
    ]  # fmt: skip
    page, nxt = paginate(records, lambda r: getattr(r, by), n, pos)
    doc = {
        "feed": feed, "type": kind, "symbol": symbol, "from": t0, "to": t1, "by": by,
        "count": len(page), "next_cursor": nxt, "clipped": spans != [(pos[0] if pos else t0, t1)],
        "intervals": [list(s) for s in spans],
    }  # fmt: skip
    table = to_table(kind, page) if out == "parquet" else None
    wire = [to_wire(r) for r in page] if out != "parquet" else [{}] * len(page)
    return await _respond(request, p, route, out, times, doc, wire, table, columns(kind))


# -- endpoints --------------------------------------------------------------------------


@router.get("/trades", response_model=Page, responses=DATA_FORMATS, summary="Trades")
async def trades(
    request: Request, p: Reader, feed: Feed, symbol: Symbol, start: From, to: To,
    by: By = "ts_event", format: Fmt = None, timestamps: Times = "ns",
    limit: Limit = None, cursor: Cursor = None,
) -> Response:  # fmt: skip
    """Trades of one symbol with `by` in [from, to), oldest first."""
    return await _records(request, p, "trades", "trade", feed, symbol, start, to, by, format,
                          timestamps, limit, cursor)  # fmt: skip


@router.get("/quotes", response_model=Page, responses=DATA_FORMATS, summary="Quotes (BBO)")
async def quotes(
    request: Request, p: Reader, feed: Feed, symbol: Symbol, start: From, to: To,
    by: By = "ts_event", format: Fmt = None, timestamps: Times = "ns",
    limit: Limit = None, cursor: Cursor = None,
) -> Response:  # fmt: skip
    """Best bid/offer updates of one symbol with `by` in [from, to)."""
    return await _records(request, p, "quotes", "quote", feed, symbol, start, to, by, format,
                          timestamps, limit, cursor)  # fmt: skip


@router.get(
    "/records/{type}", response_model=Page, responses=DATA_FORMATS, summary="Records of a type"
)
async def records(
    request: Request, p: Reader,
    type: Annotated[RecordType, Path(description="Record type.")],
    feed: Feed, symbol: Symbol, start: From, to: To,
    by: By = "ts_event", format: Fmt = None, timestamps: Times = "ns",
    limit: Limit = None, cursor: Cursor = None,
) -> Response:  # fmt: skip
    """Any record type (trade, quote, book, status, gap, instrument) of one symbol."""
    assert type in RECORD_TYPES
    return await _records(request, p, "records", type, feed, symbol, start, to, by, format,
                          timestamps, limit, cursor)  # fmt: skip


@router.get("/book-at", response_model=BookLevels, summary="L2 book at a time")
async def book_at(
    request: Request, p: Reader, feed: Feed, symbol: Symbol,
    at: Annotated[str, Query(description="Time: ns or ISO-8601.")],
    by: By = "ts_event",
    depth: Annotated[int, Query(ge=0, le=10_000, description="Levels per side; 0 = all.")] = 10,
) -> Response:  # fmt: skip
    """The book at `at`: the last snapshot plus deltas (known false, with the reason,
    after a gap or without a snapshot — never a wrong book). Needs the `book` entitlement
    at `at`. JSON only."""
    _feed(request, feed)
    t = when(at, "at")
    if t is None:
        raise bad_request("at: a time is required")
    authorize(p, feed, symbol, "book", t)
    book = await _read(request, feed, "book_at", symbol, t, by)
    cut = (lambda lv: lv[:depth]) if depth else (lambda lv: lv)
    doc = {
        "feed": feed, "symbol": symbol, "at": t, "by": by, "known": book.known,
        "reason": book.reason, "snapshot_ts_recv": book.snapshot_ts_recv, "deltas": book.deltas,
        "last_ts_recv": book.last_ts_recv,
        "bids": [[from_fixed(px), from_fixed(sz)] for px, sz in cut(book.bids)],
        "asks": [[from_fixed(px), from_fixed(sz)] for px, sz in cut(book.asks)],
    }  # fmt: skip
    resp = json_response(doc)
    meter(request, p, "rest:book-at", 1, resp.body)
    return resp


class BarsPage(BaseModel):
    feed: str
    symbol: str
    interval_ns: int
    by: str
    count: int
    bars: list[dict[str, Any]]
    next_cursor: str | None
    clipped: bool


@router.get("/bars", response_model=BarsPage, responses=DATA_FORMATS, summary="OHLCV bars")
async def bars(
    request: Request, p: Reader, feed: Feed, symbol: Symbol, start: From, to: To,
    interval: Annotated[str, Query(description="Bar length: 1s, 5m, 1h, or ns.")] = "1m",
    by: By = "ts_event", format: Fmt = None, timestamps: Times = "ns",
    limit: Limit = None, cursor: Cursor = None,
) -> Response:  # fmt: skip
    """Bars from the trades the principal is entitled to (needs `trade`): bar start `ts`,
    open, high, low, close, volume, trades. A bar straddling an entitlement edge holds
    only the entitled trades."""
    from ssmd.spec.units import parse_duration

    _feed(request, feed)
    t0, t1 = _range(start, to)
    try:
        iv = int(interval) if interval.isdigit() else parse_duration(interval)
    except ValueError as exc:
        raise bad_request(f"interval: {exc}") from None
    if iv <= 0:
        raise bad_request("interval must be positive")
    try:
        out = formats.negotiate(format, request.headers.get("accept"))
    except formats.FormatError as exc:
        raise bad_request(str(exc)) from None
    n = _limit(request, limit)
    pos = decode_cursor(cursor, t0, t1) if cursor else None
    lo0 = pos[0] if pos else t0
    spans = entitled_intervals(p, feed, symbol, "trade", lo0, t1, now_ns())
    tables = [await _read(request, feed, "bars", symbol, lo, hi, iv, by) for lo, hi in spans]
    rows = [r for t in tables for r in t.to_pylist()]
    page, nxt = paginate(rows, lambda r: r["ts"], n, pos)
    wire = [{**r, **{k: from_fixed(r[k]) for k in ("open", "high", "low", "close", "volume")}}
            for r in page]  # fmt: skip
    doc = {"feed": feed, "type": "bar", "symbol": symbol, "from": t0, "to": t1, "by": by,
           "interval_ns": iv, "count": len(page), "next_cursor": nxt,
           "clipped": spans != [(lo0, t1)]}  # fmt: skip
    table = pa.Table.from_pylist(page) if tables and out == "parquet" else None
    if out == "parquet" and table is None:
        table = pa.table({"ts": pa.array([], pa.int64())})
    if out == "json":
        body = orjson.dumps({**doc, "bars": [formats.iso_times(r) if timestamps == "iso" else r
                                              for r in wire]})  # fmt: skip
        meter(request, p, "rest:bars", len(page), body)
        headers = {"X-Next-Cursor": nxt} if nxt else {}
        if doc["clipped"]:
            headers["X-Clipped"] = "true"
        return Response(body, media_type="application/json", headers=headers)
    cols = ["ts", "open", "high", "low", "close", "volume", "trades"]
    return await _respond(request, p, "bars", out, timestamps, doc, wire, table, cols)
