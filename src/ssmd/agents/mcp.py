"""`ssmd mcp`: the MCP server — read-only market-data tools for AI agents.

Every call authenticates the caller's API key (HTTP: `Authorization: Bearer ssmd_…` or
`X-API-Key`; stdio: the key the server was started with, `SSMD_API_KEY`) through the
gateway's `Authenticator`, applies the same scopes and entitlements as the REST API, and
appends an audit entry (`mcp.<tool>`, outcome included) whether it succeeds or not.
Errors come back as tool errors whose text says what to change — written for a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_http_headers
from pydantic import Field

from ssmd.agents import feedback
from ssmd.agents.schema import describe
from ssmd.agents.service import MAX_LIMIT, Service
from ssmd.gateway.auth import Authenticator, AuthError, Principal, require_scope, token_from

INSTRUCTIONS = """\
ssmd serves normalized exchange market data (trades, quotes/BBO, L2 books, gaps) for one
environment. Start with list_feeds, then data_catalog to see which days exist, then
get_trades / get_quotes / get_bars / book_at for one feed and symbol. Times are ns since
the Unix epoch or ISO-8601 (UTC). Prices and sizes are exact decimal strings. Results are
paginated: pass next_cursor back unchanged to continue. Check data_quality before trusting
a window, and report problems you find with report_issue."""

TOOLS: tuple[str, ...] = (
    "list_feeds", "search_instruments", "get_trades", "get_quotes", "book_at", "get_bars",
    "data_catalog", "data_quality", "system_status", "describe_schema", "report_issue",
)  # fmt: skip
"""The tool names, for skill validation (tests check it equals the server's list)."""

Feed = Annotated[str, Field(description="Feed name from list_feeds, e.g. 'sim'.")]
Symbol = Annotated[str, Field(description="Normalized symbol, e.g. 'BTC-USD'.")]
Time = Annotated[str | int, Field(description="ns since epoch or ISO-8601, e.g. 2026-03-01T12:00Z")]
By = Annotated[
    Literal["ts_event", "ts_recv"],
    Field(description="Time column the range applies to: venue event time or capture time."),
]
Limit = Annotated[int | None, Field(description=f"Rows per page, 1..{MAX_LIMIT} (default 100).")]
Cursor = Annotated[
    str | None, Field(description="next_cursor of the previous page (same other arguments).")
]
READ_ONLY = {"readOnlyHint": True, "openWorldHint": False}


def _plain(value: Any) -> Any:
    """Arguments as audit details: JSON without binary floats (the audit log refuses them)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _rows(result: dict[str, Any]) -> int:
    for key in ("records", "bars", "instruments", "days", "feeds", "recent_gaps"):
        if isinstance(result.get(key), list):
            return len(result[key])
    return 0


class Tools:
    """Auth + audit around the service; one instance per server."""

    def __init__(self, service: Service, api_key: str | None, auth_ttl_s: float = 2.0) -> None:
        self.service = service
        self.api_key = api_key
        self.auth = Authenticator(service.pool, service.env, ttl_s=auth_ttl_s)

    def token(self) -> str | None:
        headers = get_http_headers(include={"authorization", "x-api-key"})
        return token_from(headers, allow_query=False) or self.api_key

    async def call(
        self, tool: str, target: str, args: dict[str, Any], fn: Callable[[Principal], Any]
    ) -> Any:
        """Authenticate, await fn(principal), audit the outcome, map errors to ToolError."""
        from ssmd.history.query import QueryError
        from ssmd.history.stream import StreamUnavailable
        from ssmd.meta import MetaUnreachable
        from ssmd.storage import StoreError

        actor, key_id, outcome, rows = "anonymous", None, "ok", 0
        try:
            p = await self.auth.authenticate(self.token())
            actor, key_id = f"client:{p.client_id}", p.key_id
            self.auth.limiter.take(p)
            result = await fn(p)
            rows = _rows(result) if isinstance(result, dict) else 0
            return result
        except AuthError as exc:
            outcome = f"refused:{exc.code}"
            raise ToolError(f"{exc.status} {exc.code}: {exc.message}") from None
        except (ValueError, QueryError) as exc:
            outcome = "invalid"
            raise ToolError(f"invalid arguments: {exc}") from None
        except (StoreError, StreamUnavailable, MetaUnreachable) as exc:
            outcome = "unavailable"
            raise ToolError(f"unavailable, try again later: {exc}") from None
        finally:
            details = {"key": key_id, "args": _plain(args), "outcome": outcome, "rows": rows}
            await anyio.to_thread.run_sync(
                self.service.audit, actor, f"mcp.{tool}", target, details
            )

    def sync(
        self, tool: str, target: str, args: dict[str, Any], fn: Callable[[Principal], Any]
    ) -> Any:
        """`call` for blocking work: fn runs in a worker thread."""

        async def run(p: Principal) -> Any:
            return await anyio.to_thread.run_sync(fn, p)

        return self.call(tool, target, args, run)


def build_server(
    service: Service, *, api_key: str | None = None, auth_ttl_s: float = 2.0
) -> FastMCP:
    """The FastMCP server over `service`; `api_key` authenticates non-HTTP calls."""
    mcp = FastMCP("ssmd", instructions=INSTRUCTIONS, mask_error_details=True)
    t = Tools(service, api_key, auth_ttl_s)
    s = service
    env = service.env

    def target(*parts: str | None) -> str:
        return "/".join(["mcp", env, *(x for x in parts if x)])

    @mcp.tool(annotations=READ_ONLY)
    async def list_feeds() -> dict[str, Any]:
        """The environment's feeds you are entitled to: name, venue, channels, explicit
        instruments, book depth. Start here; other tools take a feed name from this list."""
        return await t.sync("list_feeds", target(), {}, s.list_feeds)

    @mcp.tool(annotations=READ_ONLY)
    async def search_instruments(
        query: Annotated[str | None, Field(description="Glob on symbol or venue symbol, "
                                           "case-insensitive, e.g. 'BTC-*'.")] = None,
        venue: Annotated[str | None, Field(description="Venue id, e.g. kraken-v2.")] = None,
        at: Annotated[str | int | None, Field(
            description="Point in time (ns or ISO); default now. Instruments as they were then."
        )] = None,
        limit: Annotated[int | None, Field(description="1..500, default 50.")] = None,
        offset: Annotated[int, Field(description="Skip this many (next_offset).")] = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """Search the security master point-in-time: instruments in force at `at` whose
        symbol you may see, with tick/lot size (decimal strings), kind, status and the feeds
        that carry them. Paginated by offset (next_offset null = last page)."""
        args = {"query": query, "venue": venue, "at": at, "limit": limit, "offset": offset}
        return await t.sync(
            "search_instruments",
            target("instruments"),
            args,
            lambda p: s.search_instruments(p, query, venue, at, limit, offset),
        )

    @mcp.tool(annotations=READ_ONLY)
    async def get_trades(
        feed: Feed, symbol: Symbol, start: Time, end: Time, by: By = "ts_event",
        limit: Limit = None, cursor: Cursor = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Trades of one symbol with `by` in [start, end), oldest first: price and size as
        decimal strings, side, trade_id, ts_event/ts_recv in ns. `clipped` true means part of
        the range is outside your entitlements. Continue with next_cursor while not null."""
        args = {"feed": feed, "symbol": symbol, "start": start, "end": end, "by": by,
                "limit": limit, "cursor": cursor}  # fmt: skip
        return await t.sync("get_trades", target(feed, "trade", symbol), args,
                            lambda p: s.records(p, "trade", feed, symbol, start, end, by, limit,
                                                cursor))  # fmt: skip

    @mcp.tool(annotations=READ_ONLY)
    async def get_quotes(
        feed: Feed, symbol: Symbol, start: Time, end: Time, by: By = "ts_event",
        limit: Limit = None, cursor: Cursor = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Best bid/offer (BBO) updates of one symbol with `by` in [start, end): bid_px,
        bid_sz, ask_px, ask_sz as decimal strings. Spread = ask_px - bid_px. Paginated like
        get_trades."""
        args = {"feed": feed, "symbol": symbol, "start": start, "end": end, "by": by,
                "limit": limit, "cursor": cursor}  # fmt: skip
        return await t.sync("get_quotes", target(feed, "quote", symbol), args,
                            lambda p: s.records(p, "quote", feed, symbol, start, end, by, limit,
                                                cursor))  # fmt: skip

    @mcp.tool(annotations=READ_ONLY)
    async def book_at(
        feed: Feed, symbol: Symbol, at: Time, by: By = "ts_event",
        depth: Annotated[int, Field(description="Levels per side, 0 = all (max 1000).")] = 10,
    ) -> dict[str, Any]:  # fmt: skip
        """The L2 order book of one symbol at time `at` (last snapshot + deltas): bids
        (best first) and asks as [price, size] decimal strings. known=false with a reason
        when a gap or a missing snapshot makes the book unknowable — never a wrong book."""
        args = {"feed": feed, "symbol": symbol, "at": at, "by": by, "depth": depth}
        return await t.sync(
            "book_at",
            target(feed, "book", symbol),
            args,
            lambda p: s.book_at(p, feed, symbol, at, by, depth),
        )

    @mcp.tool(annotations=READ_ONLY)
    async def get_bars(
        feed: Feed, symbol: Symbol, start: Time, end: Time,
        interval: Annotated[str, Field(description="Bar length: 1s, 1m, 5m, 1h, 1d or ns.")] = "1m",
        by: By = "ts_event", limit: Limit = None, cursor: Cursor = None,
    ) -> dict[str, Any]:  # fmt: skip
        """OHLCV bars built from trades: ts (bar start, ns), open, high, low, close, volume
        (decimal strings), trades (count). Empty bars are omitted. Paginated by next_cursor."""
        args = {"feed": feed, "symbol": symbol, "start": start, "end": end,
                "interval": interval, "by": by, "limit": limit, "cursor": cursor}  # fmt: skip
        return await t.sync("get_bars", target(feed, "bar", symbol), args,
                            lambda p: s.bars(p, feed, symbol, start, end, interval, by, limit,
                                             cursor))  # fmt: skip

    @mcp.tool(annotations=READ_ONLY)
    async def data_catalog(
        feed: Annotated[str | None, Field(description="Only this feed.")] = None,
        limit: Annotated[int | None, Field(description="Days per page, 1..366 (31).")] = None,
        offset: Annotated[int, Field(description="Skip this many days (next_offset).")] = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """What the archive holds, newest day first: per feed, version and UTC day the record
        types with rows/bytes/files, symbols, gap records, reprocessed and complete hours,
        quarantined segments. Use it to pick a time range that has data."""
        args = {"feed": feed, "limit": limit, "offset": offset}
        return await t.sync(
            "data_catalog",
            target(feed, "catalog"),
            args,
            lambda p: s.data_catalog(p, feed, limit, offset),
        )

    @mcp.tool(annotations=READ_ONLY)
    async def data_quality(
        feed: Feed,
        days: Annotated[int, Field(description="Newest archive days to summarize, 1..31.")] = 7,
        symbol: Annotated[str | None, Field(description="Only this symbol's gaps.")] = None,
        hours: Annotated[int, Field(description="Look-back for gap records, 1..168 h: before "
                                    "now and before the archive's last day end.")] = 24,
    ) -> dict[str, Any]:  # fmt: skip
        """Data quality of a feed: per day the gap count, complete hours and completeness
        (complete_hours/24), quarantined segments; recent gap records (reason, since_ns,
        until_ns) newest first; and open issue reports already filed for the feed (check them
        before filing a duplicate with report_issue)."""
        args = {"feed": feed, "days": days, "symbol": symbol, "hours": hours}
        return await t.sync(
            "data_quality",
            target(feed, "quality"),
            args,
            lambda p: s.data_quality(p, feed, days, symbol, hours),
        )

    @mcp.tool(annotations=READ_ONLY)
    async def system_status() -> dict[str, Any]:
        """Live health: every component's heartbeat (connectors, gateway, shipper…) with
        age_s and stale, plus the local stack (which servers `ssmd up` started). Use it to
        tell "no data because nothing is running" from a real data problem."""

        async def run(p: Principal) -> dict[str, Any]:
            require_scope(p, "read")
            return await system_snapshot(s)

        return await t.call("system_status", target("status"), {}, run)

    @mcp.tool(annotations=READ_ONLY)
    async def describe_schema(
        record_type: Annotated[
            Literal["trade", "quote", "book", "status", "gap", "instrument"] | None,
            Field(description="One record type, or all when omitted."),
        ] = None,
    ) -> dict[str, Any]:
        """The normalized record types and their fields with units: decimals are exact
        strings, timestamps are ns since the epoch (UTC), book levels [price, size]."""

        def run(p: Principal) -> dict[str, Any]:
            require_scope(p, "read")
            return describe(record_type)

        return await t.sync("describe_schema", target("schema"), {"type": record_type}, run)

    @mcp.tool(annotations={"readOnlyHint": False, "idempotentHint": True})
    async def report_issue(
        kind: Annotated[Literal["data_quality", "feature_request", "bug", "unknown"],
                        Field(description="What sort of report.")],
        summary: Annotated[str, Field(description="One line: what is wrong (max 200 chars).")],
        subtype: Annotated[
            Literal["bad_tick", "gap", "duplicate", "stale", "schema"] | None,
            Field(description="Required for data_quality: bad_tick (implausible price/size), "
                  "gap (missing data), duplicate, stale (no updates), schema (wrong fields)."),
        ] = None,
        details: Annotated[str, Field(description="Free text: what you saw and expected.")] = "",
        feed: Annotated[str | None, Field(description="Evidence: feed.")] = None,
        symbol: Annotated[str | None, Field(description="Evidence: symbol.")] = None,
        start: Annotated[str | int | None, Field(description="Evidence window start.")] = None,
        end: Annotated[str | int | None, Field(description="Evidence window end.")] = None,
        values: Annotated[dict[str, Any] | None,
                          Field(description="Evidence values, e.g. {'price': '1.0'}.")] = None,
    ) -> dict[str, Any]:  # fmt: skip
        """File an issue with the data or the system. data_quality reports need subtype,
        feed, symbol and start. Identical reports are deduplicated (same fingerprint): the
        answer says whether it is new and how many times it was reported. Needs the
        `feedback` scope."""
        args = {"kind": kind, "subtype": subtype, "summary": summary, "feed": feed,
                "symbol": symbol, "start": start, "end": end}  # fmt: skip

        def run(p: Principal) -> dict[str, Any]:
            report = feedback.report_from(
                kind=kind, summary=summary, subtype=subtype, details=details, feed=feed,
                symbol=symbol, start=start, end=end, values=values, names=("start", "end"),
            )  # fmt: skip
            try:
                return s.report_issue(p, report)
            except feedback.InvalidReport as exc:  # name the tool's arguments, not the API's
                raise exc.renamed({"from": "start", "to": "end"}) from None

        return await t.sync("report_issue", target(feed, "feedback", symbol), args, run)

    return mcp


async def system_snapshot(s: Service) -> dict[str, Any]:
    """KV heartbeats (when NATS is configured) and the local stack state."""
    from ssmd.meta.db import redact_url
    from ssmd.model.time import now_ns
    from ssmd.stack.state import read_state

    out: dict[str, Any] = {"env": s.env, "now_ns": now_ns(), "components": [], "stack": None}
    if s.settings.nats_url:
        from ssmd.bus.connection import connect
        from ssmd.ops.status import read_status

        try:
            nc = await connect(s.settings.nats_url, name="ssmd-mcp", timeout=2)
            try:
                out["components"] = await read_status(nc, s.env)
            finally:
                await nc.close()
        except Exception as exc:
            out["nats_error"] = f"{type(exc).__name__}: {exc}"
    else:
        out["nats_error"] = "no NATS configured: heartbeats unavailable"
    out["stale"] = [c["key"] for c in out["components"] if c.get("stale")]
    state = await anyio.to_thread.run_sync(read_state)
    if state is not None:
        out["stack"] = {"env": state.env, "started_ns": state.started_ns,
                        "servers": sorted(state.pids), "nats_url": state.nats_url,
                        "pg_url": redact_url(state.pg_url), "s3_url": state.s3_url}  # fmt: skip
    return out
