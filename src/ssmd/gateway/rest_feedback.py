"""`POST /v1/feedback`: typed issue reports (scope `feedback`), the REST door of the
intake the MCP tool `report_issue` also uses (`ssmd.agents.feedback.intake`).

201 for a new issue (forwarded to the definition's tracker, `external_url` set when that
worked), 200 when the report was counted against an existing one (same fingerprint).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ssmd.agents import feedback
from ssmd.gateway.auth import Principal
from ssmd.gateway.deps import ERRORS, UNAVAILABLE, bad_request, gw, json_response, meter, scoped

router = APIRouter(prefix="/v1", tags=["feedback"])
Reporter = Annotated[Principal, Depends(scoped("feedback"))]


class FeedbackIn(BaseModel):
    """One report. data_quality needs subtype and evidence: feed, symbol, from."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: Literal["data_quality", "feature_request", "bug", "unknown"]
    summary: str = Field(description="One line: what is wrong (max 200 characters).")
    subtype: Literal["bad_tick", "gap", "duplicate", "stale", "schema"] | None = Field(
        None, description="data_quality only: bad_tick, gap, duplicate, stale or schema."
    )
    details: str = Field("", description="Free text: what you saw and what you expected.")
    feed: str | None = Field(None, description="Evidence: feed name, e.g. sim.")
    symbol: str | None = Field(None, description="Evidence: symbol, e.g. BTC-USD.")
    from_: int | str | None = Field(
        None, alias="from", description="Evidence window start: ns or ISO-8601."
    )
    to: int | str | None = Field(None, description="Evidence window end: ns or ISO-8601.")
    values: dict[str, Any] = Field(
        default_factory=dict, description='Evidence values, e.g. {"price": "1.0"}.'
    )


class FeedbackOut(BaseModel):
    id: int
    fingerprint: str
    new: bool
    count: int
    status: str
    external_url: str | None


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses={
        200: {"model": FeedbackOut, "description": "Counted against an existing issue."},
        201: {"model": FeedbackOut, "description": "A new issue (forwarded to the tracker)."},
        **ERRORS,
        **UNAVAILABLE,
    },
)
async def post_feedback(
    request: Request, p: Reporter, body: Annotated[FeedbackIn, Body()]
) -> Response:
    """Report a data-quality problem, a bug or a wish. Deduplicated by fingerprint (kind,
    subtype, feed, symbol, the hour of `from`; the summary for non-data reports): a repeat
    raises `count`. A data_quality report on a feed or symbol the key may not read is 403."""
    g = gw(request)
    try:
        report = feedback.report_from(
            kind=body.kind,
            summary=body.summary,
            subtype=body.subtype,
            details=body.details,
            feed=body.feed,
            symbol=body.symbol,
            start=body.from_,
            end=body.to,
            values=body.values,
        )
        doc = await anyio.to_thread.run_sync(
            lambda: feedback.intake(g.pool, g.settings.definition, p, report, "rest")
        )
    except feedback.InvalidReport as exc:
        raise bad_request(str(exc), "invalid_report") from None
    resp = json_response(doc, 201 if doc["new"] else 200)
    meter(request, p, "rest:feedback", 1, resp.body)
    return resp
