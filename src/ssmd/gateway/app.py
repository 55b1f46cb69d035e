"""The gateway ASGI app: `create_app(settings) -> FastAPI`.

    app = create_app(GatewaySettings(definition, pg_url, nats_url=...))
    uvicorn.run(app)            # or `ssmd gateway --env dev`

Inside a handler, `request.app.state.gw` (or `websocket.app.state.gw`) is the shared
`Gateway` (state.py): `.auth` (Authenticator), `.meter` (Meter), `.settings`,
`.history(feed)`, `.draining` (an asyncio.Event set when SIGTERM starts the drain).

Adding the WebSocket endpoint (gateway/stream.py): define there

    async def stream_endpoint(websocket: WebSocket) -> None:
        gw = websocket.app.state.gw
        principal = await gw.auth.from_connection(websocket, allow_query=True)  # AuthError
        require_scope(principal, "stream")
        ...  gw.meter.record(principal, "stream", messages=n, bytes=b)

and add ONE line at the marked place below:
`app.add_api_websocket_route("/v1/stream", stream.stream_endpoint)`. Close with code 4401
/ 4403 / 4429 for AuthError 401 / 403 / 429 (docs/api.md). During shutdown the server
waits for handlers to return: watch `gw.draining` and close politely (1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ssmd import __version__
from ssmd.gateway import docs, stream
from ssmd.gateway.auth import AuthError
from ssmd.gateway.routes import ROUTERS
from ssmd.gateway.settings import GatewaySettings
from ssmd.gateway.state import Gateway
from ssmd.ops.metrics import render

log = logging.getLogger("ssmd.gateway")

DESCRIPTION = """\
Market data history and reference data of one ssmd environment.

Authenticate with `Authorization: Bearer ssmd_<id>_<secret>` or `X-API-Key`. Scopes:
`read` for everything under /v1 except /v1/admin (`admin`). Records outside the key's
entitlements are never returned: see docs/api.md for the clipping rules, formats,
pagination, rate limits and errors.
"""


def create_app(settings: GatewaySettings, *, gateway: Gateway | None = None) -> FastAPI:
    """The app; resources (Postgres pool, meter, heartbeat) start with its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = gateway or Gateway(settings)
        app.state.gw = gw
        stop = asyncio.Event()
        tasks = [asyncio.create_task(gw.meter.run(stop), name="usage-flush")]
        nc = None
        if settings.nats_url and settings.status_interval_s > 0:
            nc, heartbeat = await _heartbeat(gw)
            if heartbeat is not None:
                tasks.append(asyncio.create_task(heartbeat.run(), name="status"))
                stop_hb = heartbeat.stop
            else:
                stop_hb = None
        else:
            stop_hb = None
        log.info("gateway serving", extra={"env": gw.env})
        try:
            yield
        finally:
            gw.draining.set()
            stop.set()
            if stop_hb is not None:
                stop_hb()
            await asyncio.gather(*tasks, return_exceptions=True)
            if nc is not None:
                with contextlib.suppress(Exception):
                    await nc.close()
            if gateway is None:
                gw.close()
            log.info("gateway stopped", extra={"env": gw.env})

    app = FastAPI(
        title=f"ssmd gateway ({settings.env})",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    for router in ROUTERS:
        app.include_router(router)
    # --- WebSocket routes go here (gateway/stream.py), one line: -------------------------
    app.add_api_websocket_route("/v1/stream", stream.stream_endpoint)
    # -------------------------------------------------------------------------------------
    docs.mount(app)
    _errors(app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        body = render(request.app.state.gw.registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_middleware(Metered)
    return app


async def _heartbeat(gw: Gateway) -> tuple[Any, Any]:
    """NATS connection + StatusPublisher, or (None, None) when NATS is down (logged)."""
    from ssmd.bus.connection import BusUnreachable, connect
    from ssmd.ops.status import StatusPublisher

    try:
        nc = await connect(gw.settings.nats_url, name="ssmd-gateway-status", timeout=2)
    except BusUnreachable as exc:
        log.warning("no status heartbeat: NATS unreachable", extra={"error": str(exc)})
        return None, None
    instance = gw.settings.instance or "gateway"
    pub = StatusPublisher(nc, gw.env, "gateway", shard=instance,
                          interval=gw.settings.status_interval_s, collect=gw.status)  # fmt: skip
    return nc, pub


def _errors(app: FastAPI) -> None:
    """Every refusal is `{"error", "message", "status"}` with its headers."""

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        if exc.status in (401, 403, 429):
            request.app.state.gw.refused.labels(exc.code).inc()
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        body = {"error": "bad_request", "message": "; ".join(parts), "status": 400}
        return JSONResponse(body, status_code=400)

    @app.exception_handler(psycopg.DataError)
    async def bad_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # A value Postgres cannot hold (a NUL byte in a text parameter, say) is the
        # caller's mistake, not a server error.
        message = str(exc).splitlines()[0] if str(exc) else "invalid value"
        body = {"error": "bad_request", "message": f"invalid parameter value: {message}"}
        return JSONResponse({**body, "status": 400}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        body = {"error": code, "message": str(exc.detail), "status": exc.status_code}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class Metered:
    """ASGI middleware: request count and latency per route template (HTTP only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            gw = getattr(scope["app"].state, "gw", None) if "app" in scope else None
            if gw is not None:
                route = getattr(scope.get("route"), "path", "other")
                gw.requests.labels(route, str(status[0])).inc()
                gw.latency.labels(route).observe(time.perf_counter() - t0)
