"""`Client`: history over REST (synchronous) and live records over WebSocket (async).

Why sync history + async stream: a notebook or a script asks for history and waits;
a live consumer is naturally an `async for`. Both share the URL and the API key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import httpx

from ssmd.client.http import MAX_PAGE, Http
from ssmd.client.results import Bars, BookAt, Records, bar_from_wire, records_of
from ssmd.client.stream import Stream
from ssmd.client.times import Time, to_ns
from ssmd.model.codec import from_wire
from ssmd.model.records import RECORD_TYPES

DEFAULT_URL = "http://127.0.0.1:8080"


class Client:
    """A gateway client. `url` defaults to `$SSMD_URL` (else http://127.0.0.1:8080),
    `api_key` to `$SSMD_API_KEY`.

    `retries`/`max_retry_wait`: on 429 wait Retry-After (if at most `max_retry_wait` s)
    and retry, at most `retries` times; then `RateLimited` is raised. `http` lets a
    caller (or a test) supply its own `httpx.Client`, e.g. over an ASGI transport.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 2,
        max_retry_wait: float = 10.0,
        page_size: int = 10_000,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = (url or os.environ.get("SSMD_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("SSMD_API_KEY") or None
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be in 1..{MAX_PAGE}, not {page_size}")
        self.page_size = page_size
        self._own = http is None
        client = http or httpx.Client(base_url=self.url, timeout=timeout)
        self._http = Http(client, self.api_key, retries=retries, max_retry_wait=max_retry_wait)

    def close(self) -> None:
        if self._own:
            self._http.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reference ----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._http.get("/v1/health")

    def feeds(self) -> list[dict[str, Any]]:
        """Feeds this key may see (name, venue, enabled, channels, instruments)."""
        return self._http.get("/v1/feeds")["feeds"]

    def instruments(
        self, at: Time | None = None, symbol: str | None = None, venue: str | None = None
    ) -> list[dict[str, Any]]:
        """The secmaster at `at` (default now); tick/lot sizes stay exact decimal strings."""
        params = {"at": _opt(at), "symbol": symbol, "venue": venue}
        return self._http.get("/v1/instruments", params)["instruments"]

    def catalog(self, feed: str | None = None) -> dict[str, Any]:
        """What the archive holds per version, feed and UTC day (the gateway's document)."""
        return self._http.get("/v1/catalog", {"feed": feed})

    # -- history ------------------------------------------------------------------------

    def records(
        self,
        type: str,
        feed: str,
        symbol: str,
        start: Time,
        end: Time,
        *,
        by: str = "ts_event",
        limit: int | None = None,
    ) -> Records:
        """Records of one type with `by` in [start, end), oldest first, every page
        (or the first `limit` records)."""
        if type not in RECORD_TYPES:
            raise ValueError(f"type must be one of {', '.join(RECORD_TYPES)}, not {type!r}")
        return self._records(f"/v1/records/{type}", feed, symbol, start, end, by, limit)

    def trades(
        self, feed: str, symbol: str, start: Time, end: Time, *, by: str = "ts_event",
        limit: int | None = None,
    ) -> Records:  # fmt: skip
        """Trades with `by` in [start, end) (all pages, or the first `limit`)."""
        return self._records("/v1/trades", feed, symbol, start, end, by, limit)

    def quotes(
        self, feed: str, symbol: str, start: Time, end: Time, *, by: str = "ts_event",
        limit: int | None = None,
    ) -> Records:  # fmt: skip
        """Best bid/offer updates with `by` in [start, end)."""
        return self._records("/v1/quotes", feed, symbol, start, end, by, limit)

    def bars(
        self, feed: str, symbol: str, start: Time, end: Time, interval: str | int = "1m", *,
        by: str = "ts_event", limit: int | None = None,
    ) -> Bars:  # fmt: skip
        """OHLCV bars from trades; `interval` is `1s`, `5m`, `1h`… or ns."""
        params = {"feed": feed, "symbol": symbol, "from": to_ns(start), "to": to_ns(end),
                  "interval": str(interval), "by": by}  # fmt: skip
        out = Bars()
        for doc, rows in self._http.pages("/v1/bars", params, "bars", limit, self.page_size):
            out.extend(bar_from_wire(r) for r in rows)
            out.clipped = out.clipped or bool(doc.get("clipped"))
            out.interval_ns = doc.get("interval_ns", 0)
        return out

    def book_at(
        self, feed: str, symbol: str, at: Time, *, by: str = "ts_event", depth: int = 10
    ) -> BookAt:
        """The L2 book at `at` (`depth` levels per side, 0 = all)."""
        params = {"feed": feed, "symbol": symbol, "at": to_ns(at), "by": by, "depth": depth}
        return BookAt.from_doc(self._http.get("/v1/book-at", params))

    def _records(
        self, path: str, feed: str, symbol: str, start: Time, end: Time, by: str,
        limit: int | None,
    ) -> Records:  # fmt: skip
        params = {"feed": feed, "symbol": symbol, "from": to_ns(start), "to": to_ns(end), "by": by}
        items: list[Any] = []
        clipped = False
        for doc, rows in self._http.pages(path, params, "records", limit, self.page_size):
            items.extend(from_wire(r) for r in rows)
            clipped = clipped or bool(doc.get("clipped"))
        return records_of(items, clipped)

    # -- streaming ----------------------------------------------------------------------

    def stream(
        self,
        feed: str,
        types: Sequence[str] | None = None,
        symbols: Sequence[str] = ("*",),
        start: Time | None = None,
        **options: Any,
    ) -> Stream:
        """Live records (after a replay from `start`, if given) as an async iterator;
        see `ssmd.client.stream.Stream` for reconnection, events and options."""
        return Stream(
            self.url, self.api_key, feed, types=types, symbols=symbols,
            start=None if start is None else to_ns(start), **options,
        )  # fmt: skip


def _opt(value: Time | None) -> int | None:
    return None if value is None else to_ns(value)
