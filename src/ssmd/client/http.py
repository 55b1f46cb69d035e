"""HTTP to the gateway: one request with typed errors and a bounded 429 retry, and the
cursor walk every history endpoint shares."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from ssmd.client.errors import ClientError, RateLimited, Unavailable, for_status

MAX_PAGE = 100_000
"""The gateway's largest `limit` per page."""


class Http:
    """A thin wrapper over `httpx.Client`: auth header, error mapping, 429 retry.

    Why bounded: honouring Retry-After blindly could stall a caller for minutes; we wait
    at most `max_retry_wait` seconds per attempt and `retries` times, then raise.
    """

    def __init__(
        self,
        http: httpx.Client,
        api_key: str | None,
        *,
        retries: int = 2,
        max_retry_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path` and return its decoded JSON body; refusals raise ClientError."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                resp = self.http.get(path, params=clean, headers=self.headers)
            except httpx.TransportError as exc:
                raise Unavailable(f"cannot reach the gateway: {exc!r}") from exc
            if resp.status_code == 429:
                err = _rate_limited(resp)
                wait = err.retry_after if err.retry_after is not None else 1.0
                if attempt >= self.retries or wait > self.max_retry_wait:
                    raise err
                attempt += 1
                self.sleep(wait)
                continue
            if resp.status_code >= 400:
                raise _error(resp)
            return resp.json()

    def pages(
        self, path: str, params: dict[str, Any], items: str, limit: int | None, page_size: int
    ) -> Iterator[tuple[dict[str, Any], list[Any]]]:
        """Each page's document and its rows, following `next_cursor` until the end or
        until `limit` rows were returned (the last page is cut, never over-fetched)."""
        left = limit
        cursor: str | None = None
        while True:
            size = page_size if left is None else max(1, min(page_size, left))
            doc = self.get(path, {**params, "limit": size, "cursor": cursor})
            rows = doc.get(items) or []
            if left is not None:
                rows = rows[:left]
                left -= len(rows)
            yield doc, rows
            cursor = doc.get("next_cursor")
            if not cursor or (left is not None and left <= 0):
                return


def _body(resp: httpx.Response) -> tuple[str, str]:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "message" in doc:
        return str(doc.get("error", "")), str(doc["message"])
    return "", resp.text.strip() or resp.reason_phrase


def _error(resp: httpx.Response) -> ClientError:
    code, message = _body(resp)
    return for_status(resp.status_code, code, message)


def _rate_limited(resp: httpx.Response) -> RateLimited:
    code, message = _body(resp)
    raw = resp.headers.get("Retry-After")
    try:
        after = float(raw) if raw is not None else None
    except ValueError:
        after = None  # an HTTP-date: not sent by ssmd; treat as unknown
    return RateLimited(message, retry_after=after, code=code)
