"""What REST routes share: errors, the principal dependency, metering, time parsing.

`Depends(scoped("read"))` authenticates the request (401), applies the key's rate limit
(429) and checks the scope (403) — in that order, so refused requests are rate-limited
too — and gives the route its `Principal`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from ssmd.gateway.auth import AuthError, Principal, require_scope
from ssmd.gateway.state import Gateway
from ssmd.model.time import parse_time


class ApiError(AuthError):
    """Any refused request (400, 404, 503, …) with the same JSON body as auth errors."""


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


class ErrorBody(BaseModel):
    error: str
    message: str
    status: int


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid parameters (the message says which)."},
    401: {"model": ErrorBody, "description": "Missing or invalid API key."},
    403: {"model": ErrorBody, "description": "Missing scope or entitlement (named)."},
    429: {"model": ErrorBody, "description": "Rate limited; see Retry-After."},
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "Storage or NATS unavailable."}
}

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer ssmd_<id>_<secret>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="ssmd_<id>_<secret>")


def gw(request: Request) -> Gateway:
    return request.app.state.gw  # type: ignore[no-any-return]


def scoped(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the authenticated, rate-limited principal holding `scope`."""

    async def principal(
        request: Request,
        _b: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        _k: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        g = gw(request)
        p = await g.auth.from_connection(request)
        g.auth.limiter.take(p)
        require_scope(p, scope)
        request.state.principal = p
        return p

    return principal


def when(value: str | None, name: str) -> int | None:
    """A query time: ns since the epoch or ISO-8601 (400 otherwise)."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise bad_request(f"{name}: {exc}") from None


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(doc), status_code=status, media_type="application/json", headers=headers
    )


def meter(request: Request, p: Principal, kind: str, messages: int, body: bytes) -> None:
    gw(request).meter.record(p, kind, messages, len(body), requests=1)
