"""REST fetcher against a scripted local HTTP server: 429/418 waits, retries, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from tests.http_stub import Answer, serve

from ssmd.capture.policy import BackoffPolicy
from ssmd.capture.ratelimit import RateGate
from ssmd.capture.rest import RestError, RestFetcher


class Script:
    """Answers popped in order; the last one repeats. Each is (status, headers, body)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.hits: list[tuple[float, str]] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    def answer(path: str) -> Answer:
        script.hits.append((time.monotonic(), path))
        return script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]

    with serve(answer) as base:
        yield f"{base}/api/v3", script


FAST = BackoffPolicy(base=0.05, cap=0.1)


def test_ok_with_params_and_timestamps(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(200, {"Content-Type": "application/json"}, b'{"lastUpdateId":7}')]
    before = time.time_ns()
    response = asyncio.run(RestFetcher(base).get("depth", {"symbol": "BTCUSDT", "limit": 1000}))
    assert response.status == 200 and response.body == b'{"lastUpdateId":7}'
    assert response.url.endswith("/api/v3/depth?symbol=BTCUSDT&limit=1000")
    assert script.hits[0][1] == "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    assert before <= response.ts_recv_ns <= time.time_ns()
    assert response.headers["Content-Type"] == "application/json"
    assert response.attempts == 1


@pytest.mark.parametrize("status", [429, 418])
def test_rate_limited_waits_retry_after_and_blocks_the_gate(
    server: tuple[str, Script], status: int
) -> None:
    base, script = server
    script.answers = [(status, {"Retry-After": "2"}, b'{"code":-1003}'), (200, {}, b"ok")]
    gate = RateGate()
    response = asyncio.run(RestFetcher(base, gate=gate, backoff=FAST).get("depth"))
    assert response.body == b"ok" and response.attempts == 2
    waited = script.hits[1][0] - script.hits[0][0]
    assert 2.0 <= waited < 3.0, waited
    assert response.waited_s >= 1.9
    assert gate.blocks == 1 and f"HTTP {status}" in gate.reason


def test_server_errors_back_off_then_give_up(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(502, {}, b"bad gateway")]
    fetcher = RestFetcher(base, backoff=FAST, max_attempts=3, rng=lambda: 0.999)
    with pytest.raises(RestError, match=r"HTTP 502: bad gateway \(gave up after 3 attempts\)"):
        asyncio.run(fetcher.get("exchangeInfo"))
    assert len(script.hits) == 3
    gaps = [b[0] - a[0] for a, b in zip(script.hits, script.hits[1:], strict=False)]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095  # 0.05, then 0.1 windows (u = 0.999)


def test_client_error_is_not_retried(server: tuple[str, Script]) -> None:
    base, script = server
    script.answers = [(400, {}, b'{"msg":"Invalid symbol."}')]
    with pytest.raises(RestError, match="HTTP 400") as info:
        asyncio.run(RestFetcher(base, backoff=FAST).get("depth", {"symbol": "NOPE"}))
    assert info.value.status == 400 and len(script.hits) == 1


def test_connection_refused_is_retried_then_reported() -> None:
    fetcher = RestFetcher("http://127.0.0.1:9/", backoff=FAST, max_attempts=2, timeout=1)
    with pytest.raises(RestError, match=r"failed: .*Error"):
        asyncio.run(fetcher.get("x"))
