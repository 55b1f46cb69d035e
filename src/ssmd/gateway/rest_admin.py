"""Admin endpoints (scope `admin`): API keys of this environment, revoke, usage.

Revocation is audited by `ssmd.meta.keys.revoke` (actor `client:<id>`), and the
revoked key is dropped from this gateway's cache at once; other gateways stop honoring
it within their cache TTL.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from ssmd.gateway.auth import Principal
from ssmd.gateway.deps import ERRORS, ApiError, bad_request, gw, json_response, meter, scoped
from ssmd.model.time import now_ns

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ERRORS)
Admin = Annotated[Principal, Depends(scoped("admin"))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such key."}}


class Keys(BaseModel):
    env: str
    keys: list[dict[str, Any]]


@router.get("/keys", response_model=Keys)
async def list_keys(
    request: Request,
    p: Admin,
    client: Annotated[str | None, Query(description="Only this client's keys.")] = None,
) -> Response:
    """Keys of this environment (never secrets) with their state now."""
    from ssmd.meta import keys

    g = gw(request)
    found = await g.pool.run(lambda c: keys.list_keys(c, env=g.env, client_id=client))
    now = now_ns()
    rows = [
        {"key_id": k.key_id, "client": k.client_id, "scopes": list(k.scopes),
         "state": k.state(now), "created_ns": k.created_ns, "created_by": k.created_by,
         "expires_ns": k.expires_ns, "revoked_ns": k.revoked_ns, "last_used_ns": k.last_used_ns}
        for k in found
    ]  # fmt: skip
    resp = json_response({"env": g.env, "keys": rows})
    meter(request, p, "rest:admin", len(rows), resp.body)
    return resp


@router.post("/keys/{key_id}/revoke", response_model=dict[str, Any], responses=NOT_FOUND)
async def revoke_key(
    request: Request,
    p: Admin,
    key_id: Annotated[str, Path(description="The 12-hex-digit key id.")],
) -> Response:
    """Revoke a key now (audited as `key.revoke` by `client:<admin client>`)."""
    from ssmd.meta import keys

    g = gw(request)

    def revoke(conn: Any) -> Any:
        key = keys.get(conn, key_id)
        if key is None or key.env != g.env:
            raise ApiError(404, "no_such_key", f"no API key {key_id!r} in {g.env!r}")
        try:
            return keys.revoke(conn, key_id, f"client:{p.client_id}")
        except keys.KeyRefused as exc:
            raise bad_request(str(exc), "refused") from None

    key = await g.pool.run(revoke)
    g.auth.invalidate(key_id)
    resp = json_response({"key_id": key.key_id, "state": "revoked", "revoked_ns": key.revoked_ns})
    meter(request, p, "rest:admin", 1, resp.body)
    return resp


class Usage(BaseModel):
    month: str
    rows: list[dict[str, Any]]


@router.get("/usage", response_model=Usage)
async def usage(
    request: Request,
    p: Admin,
    month: Annotated[str, Query(description="YYYY-MM", pattern=r"^\d{4}-\d{2}$")],
) -> Response:
    """Usage per client, class and kind over one month (pending counters flushed first)."""
    from ssmd.gateway import metering

    g = gw(request)
    try:
        metering.month_range(month)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    await g.meter.flush()
    rows = await g.pool.run(lambda c: metering.report(c, month, g.env))
    resp = json_response({"month": month, "rows": rows})
    meter(request, p, "rest:admin", len(rows), resp.body)
    return resp
