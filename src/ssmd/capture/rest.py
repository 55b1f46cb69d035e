"""REST requests a capture depends on (depth snapshots, reference data), rate-limit aware.

Decision: the standard library (`urllib.request`) in a worker thread, not a new HTTP
dependency. These requests are rare (a snapshot per resync, reference data at start
and on a schedule), so a thread per request costs nothing that matters, and stdlib
brings TLS, proxies and redirects. The asyncio side owns the policy:

- 429 / 418 (and 503 with Retry-After) → wait what the server said (`policy.retry_after`),
  closing the venue's shared `RateGate` so the WebSocket handshakes wait too;
- 5xx and connection errors → capped exponential backoff with full jitter;
- other 4xx → `RestError` at once (retrying a bad request only burns quota).
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ssmd.capture.policy import BackoffPolicy, retry_after
from ssmd.capture.ratelimit import RateGate


@dataclass(frozen=True)
class RestResponse:
    """A successful answer; `ts_recv_ns`/`mono_ns` are taken when the body was read."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    ts_recv_ns: int
    mono_ns: int
    attempts: int = 1
    waited_s: float = 0.0


class RestError(Exception):
    """A request that failed for good; says the URL, the status and the body's start."""

    def __init__(self, url: str, status: int, detail: str) -> None:
        super().__init__(f"GET {url}: {f'HTTP {status}' if status else 'failed'}: {detail}")
        self.url = url
        self.status = status


@dataclass
class RestFetcher:
    """GETs against one venue's REST base URL, sharing the venue's RateGate."""

    base_url: str = ""
    gate: RateGate = field(default_factory=RateGate)
    timeout: float = 10.0
    max_attempts: int = 5
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(base=0.5, cap=30.0))
    headers: Mapping[str, str] = field(default_factory=dict)
    rng: Callable[[], float] = random.random
    user_agent: str = "ssmd"

    def url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        full = path if "://" in path else self.base_url.rstrip("/") + "/" + path.lstrip("/")
        if params:
            full += ("&" if "?" in full else "?") + urllib.parse.urlencode(params)
        return full

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> RestResponse:
        """GET with the rate-limit and retry policy of the module docstring."""
        url = self.url(path, params)
        waited = 0.0
        detail, status = "", 0
        for attempt in range(self.max_attempts):
            waited += await self.gate.wait()
            try:
                status, headers, body = await asyncio.to_thread(self._fetch, url)
            except (OSError, TimeoutError) as exc:
                status, headers, body = 0, {}, f"{type(exc).__name__}: {exc}".encode()
            if 200 <= status < 300:
                return RestResponse(
                    url, status, headers, body, time.time_ns(), time.monotonic_ns(),
                    attempt + 1, waited,
                )  # fmt: skip
            detail = body[:200].decode("utf-8", "replace")
            told = retry_after(status, headers, time.time()) if status else None
            if told is not None:
                self.gate.block(told, f"HTTP {status} from {url}")
                continue
            if status and status < 500:
                raise RestError(url, status, detail)
            if attempt + 1 < self.max_attempts:
                delay = self.backoff.delay(attempt, self.rng())
                await asyncio.sleep(delay)
                waited += delay
        raise RestError(url, status, f"{detail} (gave up after {self.max_attempts} attempts)")

    def _fetch(self, url: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            url, headers={"User-Agent": self.user_agent, **self.headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers.items()), exc.read()
