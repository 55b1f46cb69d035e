# ruff: noqa: F811  (the `gateway` fixture is imported, then used as a parameter)
"""Typed errors carrying the server's message: 401, 403, 404, 400, 429 (+ Retry-After)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.rest_app import D1, D2, Gw, gateway  # noqa: F401 (fixture)
from ssmd.client import (
    AuthenticationError,
    BadRequest,
    Client,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)

from .harness import client_for, rate_limited


def test_401_for_a_missing_or_bad_key(gateway: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSMD_API_KEY", raising=False)
    with pytest.raises(AuthenticationError) as err:
        client_for(gateway.client, None).feeds()
    assert err.value.status == 401 and err.value.code == "missing_api_key"
    with pytest.raises(AuthenticationError) as err:
        client_for(gateway.client, "ssmd_0123456789ab_nope").trades("sim", "BTC-USD", D1, D2)
    assert err.value.code == "invalid_api_key" and err.value.message


def test_key_and_url_from_the_environment(gateway: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSMD_API_KEY", gateway.tokens["ops"])
    monkeypatch.setenv("SSMD_URL", "http://example.invalid:1/")
    c = Client(http=gateway.client)
    assert c.url == "http://example.invalid:1" and c.api_key == gateway.tokens["ops"]
    assert [f["name"] for f in c.feeds()] == ["sim"]


def test_403_names_what_is_missing(gateway: Gw) -> None:
    with pytest.raises(PermissionDenied) as err:
        client_for(gateway.client, gateway.tokens["alice"]).trades("sim", "ETH-USD", D1, D2)
    assert err.value.status == 403 and err.value.code == "not_entitled"
    assert "ETH-USD" in err.value.message and "BTC-*" in err.value.message
    with pytest.raises(PermissionDenied) as err:
        client_for(gateway.client, gateway.tokens["streamer"]).feeds()
    assert err.value.code == "missing_scope" and "read" in err.value.message


def test_400_and_404(gateway: Gw) -> None:
    c = client_for(gateway.client, gateway.tokens["ops"])
    with pytest.raises(NotFound) as nf:
        c.trades("nosuch", "BTC-USD", D1, D2)
    assert nf.value.code == "no_such_feed" and "sim" in nf.value.message
    with pytest.raises(BadRequest) as br:
        c.trades("sim", "BTC-USD", D2, D1)
    assert "empty range" in br.value.message
    with pytest.raises(ValueError):
        c.records("nonsense", "sim", "BTC-USD", D1, D2)


def test_429_is_typed_and_retried_within_bounds(pg_url: str, tmp_path: Path) -> None:
    for http, token in rate_limited(pg_url, tmp_path, rate=1, burst=1):
        strict = client_for(http, token, retries=0)
        strict.feeds()
        with pytest.raises(RateLimited) as err:
            strict.feeds()
        assert err.value.status == 429 and err.value.retry_after == 1
        assert err.value.code == "rate_limited" and err.value.message
        # too long a Retry-After for the bound: raised at once, no sleep
        impatient = client_for(http, token, retries=3, max_retry_wait=0.5)
        t0 = time.monotonic()
        with pytest.raises(RateLimited):
            impatient.feeds()
        assert time.monotonic() - t0 < 0.5
        patient = client_for(http, token, retries=3, max_retry_wait=2)
        assert [f["name"] for f in patient.feeds()] == ["sim"]  # waited Retry-After, retried


def test_unreachable_gateway_is_unavailable() -> None:
    c = Client("http://127.0.0.1:9", "ssmd_x_y", timeout=2)
    with pytest.raises(Unavailable):
        c.feeds()
