"""gateway.auth against a real Postgres: tokens, the TTL cache and revocation, scopes,
entitlement explanations, rate limits."""

from __future__ import annotations

import asyncio

import pytest

from ssmd.gateway.auth import (
    Authenticator,
    AuthError,
    RateLimiter,
    authorize,
    require_scope,
    token_from,
)
from ssmd.gateway.db import MetaPool
from ssmd.model.time import parse_time

from .rest_helpers import expire_now, issue, revoke, seed_clients

ENV = "dev"
CLIENTS = [
    {
        "id": "alice",
        "type": "display",
        "scopes": ["read", "stream"],
        "entitlements": [
            {
                "feeds": ["sim"],
                "symbols": ["BTC-*"],
                "types": ["trade", "quote"],
                "start": "2026-01-01",
                "end": "2026-12-31",
            }
        ],
    },
    {"id": "bob", "type": "non-display", "scopes": ["read"], "entitlements": []},
]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def pool(pg_url: str):
    seed_clients(pg_url, ENV, CLIENTS)
    p = MetaPool(pg_url)
    yield p
    p.close()


def run(coro):
    return asyncio.run(coro)


def test_token_sources() -> None:
    assert token_from({"authorization": "Bearer ssmd_x"}, allow_query=False) == "ssmd_x"
    assert token_from({"x-api-key": "ssmd_y"}, allow_query=False) == "ssmd_y"
    assert token_from({}, {"api_key": "ssmd_z"}, allow_query=False) is None
    assert token_from({}, {"api_key": "ssmd_z"}, allow_query=True) == "ssmd_z"
    with pytest.raises(AuthError) as err:
        token_from({"authorization": "Basic abc"}, allow_query=False)
    assert err.value.status == 401


def test_missing_and_invalid(pool: MetaPool) -> None:
    auth = Authenticator(pool, ENV)
    with pytest.raises(AuthError) as err:
        run(auth.authenticate(None))
    assert (err.value.status, err.value.code) == (401, "missing_api_key")
    with pytest.raises(AuthError) as err:
        run(auth.authenticate("ssmd_nope"))
    assert err.value.code == "invalid_api_key"
    assert "malformed" in err.value.message


def test_principal_and_cache_then_revocation_within_ttl(pool: MetaPool, pg_url: str) -> None:
    clock = Clock()
    auth = Authenticator(pool, ENV, ttl_s=2.0, clock=clock)
    issued = issue(pg_url, ENV, "alice")
    p = run(auth.authenticate(issued.token))
    assert (p.client_id, p.env, p.type, p.display) == ("alice", ENV, "display", True)
    assert set(p.scopes) == {"read", "stream"}
    assert run(auth.authenticate(issued.token)) is p
    assert auth.lookups == 1  # cached
    revoke(pg_url, issued.key.key_id)
    clock.t += 1.0
    run(auth.authenticate(issued.token))  # still inside the TTL
    clock.t += 1.5
    with pytest.raises(AuthError) as err:
        run(auth.authenticate(issued.token))
    assert err.value.status == 401 and "revoked" in err.value.message


def test_revocation_effective_within_seconds_real_clock(pool: MetaPool, pg_url: str) -> None:
    auth = Authenticator(pool, ENV, ttl_s=0.5)
    issued = issue(pg_url, ENV, "alice")
    run(auth.authenticate(issued.token))
    revoke(pg_url, issued.key.key_id)
    import time

    time.sleep(0.6)
    with pytest.raises(AuthError, match="revoked"):
        run(auth.authenticate(issued.token))


def test_expired_key_and_wrong_env(pool: MetaPool, pg_url: str) -> None:
    issued = issue(pg_url, ENV, "alice")
    expire_now(pg_url, issued.key.key_id)
    with pytest.raises(AuthError, match="expired"):
        run(Authenticator(pool, ENV).authenticate(issued.token))
    other = issue(pg_url, ENV, "bob")
    with pytest.raises(AuthError) as err:
        run(Authenticator(pool, "prod").authenticate(other.token))
    assert err.value.code == "wrong_environment"


def test_scopes_and_entitlement_messages(pool: MetaPool, pg_url: str) -> None:
    p = run(Authenticator(pool, ENV).authenticate(issue(pg_url, ENV, "alice").token))
    require_scope(p, "read")
    with pytest.raises(AuthError) as err:
        require_scope(p, "admin")
    assert err.value.status == 403 and "lacks scope 'admin'" in err.value.message
    t = parse_time("2026-06-01T00:00:00Z")
    authorize(p, "sim", "BTC-USD", "trade", t)
    cases = {
        ("other", "BTC-USD", "trade", t): "no entitlement for feed 'other'",
        ("sim", "ETH-USD", "trade", t): "outside the globs",
        ("sim", "BTC-USD", "book", t): "record type 'book'",
        ("sim", "BTC-USD", "trade", parse_time("2025-06-01")): "before the window start",
        ("sim", "BTC-USD", "trade", parse_time("2027-01-01")): "window end",
    }
    for args, why in cases.items():
        with pytest.raises(AuthError) as err:
            authorize(p, *args)
        assert err.value.status == 403 and why in err.value.message, err.value.message
    bob = run(Authenticator(pool, ENV).authenticate(issue(pg_url, ENV, "bob").token))
    with pytest.raises(AuthError, match="no entitlements"):
        authorize(bob, "sim", "BTC-USD", "trade", t)


def test_rate_limiter_token_bucket(pool: MetaPool, pg_url: str) -> None:
    p = run(Authenticator(pool, ENV).authenticate(issue(pg_url, ENV, "bob").token))
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3.0, clock=clock)
    for _ in range(3):
        limiter.take(p)
    with pytest.raises(AuthError) as err:
        limiter.take(p)
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "1"
    clock.t += 0.5  # one token back
    limiter.take(p)


def test_concurrent_misses_of_one_key_share_one_lookup(pool: MetaPool, pg_url: str) -> None:
    """Every stream session re-validates on the same heartbeat: one lookup, not 100."""
    auth = Authenticator(pool, ENV)
    good = issue(pg_url, ENV, "alice").token
    bad = good[:-4] + "xxxx"

    async def main() -> None:
        got = await asyncio.gather(*(auth.authenticate(good) for _ in range(50)))
        assert {p.client_id for p in got} == {"alice"} and auth.lookups == 1
        errors = await asyncio.gather(
            *(auth.authenticate(bad) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(e, AuthError) and e.status == 401 for e in errors)
        assert auth.lookups == 2 and not auth._inflight

    run(main())
