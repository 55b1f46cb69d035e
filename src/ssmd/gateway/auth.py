"""Authentication, scopes, entitlements and rate limits for every gateway entry point.

REST and WebSocket share this module, so a key, a scope or an entitlement means the same
thing on both. Typical use (Starlette/FastAPI `Request` and `WebSocket` are both an
`HTTPConnection`):

    auth = Authenticator(pool, env="dev")                 # pool: gateway.db.MetaPool
    principal = await auth.from_connection(conn, allow_query=True)   # 401 AuthError
    require_scope(principal, "stream")                    # 403 AuthError
    authorize(principal, feed="sim", symbol="BTC-USD", record_type="trade", data_ns=t)
    auth.limiter.take(principal)                          # 429 AuthError (retry_after)
    principal.entitled(feed=..., symbol=..., record_type=..., data_ns=...)  # bool, per record

Keys come from `Authorization: Bearer ssmd_…`, `X-API-Key: ssmd_…` or, for WebSocket
only (browsers cannot set headers there), `?api_key=ssmd_…`.

Validated keys are cached for `ttl_s` seconds (default 2) keyed by SHA-256 of the token,
so a revoked or expired key, or a deactivated client, stops working within that time
while the database sees at most one lookup per key per TTL. Errors are `AuthError` with
the HTTP status, a machine code and a message that says what is missing — never the
secret.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ssmd.meta import clients as meta_clients
from ssmd.meta import keys as meta_keys
from ssmd.meta.clients import Client, EntitlementSpec
from ssmd.model.time import format_ns, now_ns

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ssmd.gateway.db import MetaPool

SCOPES: tuple[str, ...] = meta_clients.SCOPES
"""admin ⊃ every scope; operator: status and operations; read: REST history and
reference data; stream: WebSocket; feedback: the feedback intake."""


class AuthError(Exception):
    """A refused request: `status` 401 / 403 / 429, a stable `code`, a message for humans."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("Retry-After")
        return float(value) if value is not None else None

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "status": self.status}


def unauthorized(code: str, message: str) -> AuthError:
    return AuthError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="ssmd"'})


def forbidden(code: str, message: str) -> AuthError:
    return AuthError(403, code, message)


@dataclass(frozen=True)
class Principal:
    """Who is calling: one authenticated key of one client, with what it may do."""

    key_id: str
    client_id: str
    env: str
    scopes: tuple[str, ...]
    """The key's scopes (a subset of the client's)."""
    type: str
    """display | non-display | trading: the exchange licensing class of the usage."""
    client: Client = field(repr=False)

    @property
    def display(self) -> bool:
        return self.type == "display"

    @property
    def entitlements(self) -> tuple[EntitlementSpec, ...]:
        return self.client.entitlements

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def entitled(
        self, *, feed: str, symbol: str, record_type: str, data_ns: int, now: int | None = None
    ) -> bool:
        """May this principal see one record? Pure and fast: use it per record."""
        return meta_clients.entitled(
            self.client,
            feed=feed,
            symbol=symbol,
            record_type=record_type,
            data_ns=data_ns,
            now=now_ns() if now is None else now,
        )

    def may_see_feed(self, feed: str, now: int | None = None) -> bool:
        """Some live entitlement names this feed (for listings, not for data)."""
        t = now_ns() if now is None else now
        return self.client.active and any(
            ("*" in e.feeds or feed in e.feeds) and (e.expires_ns is None or t < e.expires_ns)
            for e in self.client.entitlements
        )


def require_scope(principal: Principal, scope: str) -> None:
    """403 naming the missing scope and the ones the key has."""
    if not principal.has_scope(scope):
        raise forbidden(
            "missing_scope",
            f"API key {principal.key_id} (client {principal.client_id!r}) lacks scope "
            f"{scope!r}; it has: {', '.join(principal.scopes) or 'none'}",
        )


def authorize(
    principal: Principal,
    feed: str,
    symbol: str,
    record_type: str,
    data_ns: int,
    *,
    now: int | None = None,
) -> None:
    """403 unless one entitlement covers (feed, symbol, type, data time); the message says
    which condition failed closest to a match."""
    t = now_ns() if now is None else now
    if principal.entitled(
        feed=feed, symbol=symbol, record_type=record_type, data_ns=data_ns, now=t
    ):
        return
    raise forbidden(
        "not_entitled",
        f"client {principal.client_id!r} is not entitled to feed {feed!r} symbol {symbol!r} "
        f"type {record_type!r} at {format_ns(data_ns)}: "
        + explain(principal.client, feed, symbol, record_type, data_ns, t),
    )


def explain(
    client: Client, feed: str, symbol: str, record_type: str, data_ns: int, now: int
) -> str:
    """Why no entitlement matches: the condition where the nearest entitlement failed."""

    if not client.active:
        return "the client is inactive"
    best = (-1, "the client has no entitlements")
    for ent in client.entitlements:
        checks: list[tuple[bool, str]] = [
            (ent.expires_ns is None or now < ent.expires_ns,
             f"its entitlement expired at {format_ns(ent.expires_ns or 0)}"),
            ("*" in ent.feeds or feed in ent.feeds, f"no entitlement for feed {feed!r}"),
            (any(fnmatch.fnmatchcase(symbol.upper(), g.upper()) for g in ent.symbols),
             f"symbol {symbol!r} is outside the globs {list(ent.symbols)}"),
            (not ent.record_types or record_type in ent.record_types,
             f"record type {record_type!r} is not in {list(ent.record_types)}"),
            (ent.date_from_ns is None or data_ns >= ent.date_from_ns,
             f"the date is before the window start {format_ns(ent.date_from_ns or 0)}"),
            (ent.date_to_ns is None or data_ns < ent.date_to_ns,
             f"the date is at or after the window end {format_ns(ent.date_to_ns or 0)}"),
            (not ent.lookback_ns or data_ns >= now - ent.lookback_ns,
             f"the date is older than the lookback of {ent.lookback_ns // 10**9}s"),
        ]  # fmt: skip
        for depth, (ok, why) in enumerate(checks):
            if not ok:
                if depth > best[0]:
                    best = (depth, why)
                break
    return best[1]


# -- tokens -------------------------------------------------------------------------------


def token_from(
    headers: Mapping[str, str], query: Mapping[str, str] | None = None, *, allow_query: bool
) -> str | None:
    """The API key of a request: Bearer header, X-API-Key, or (WebSocket) ?api_key=."""
    value = headers.get("authorization")
    if value:
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise unauthorized(
            "invalid_authorization",
            "Authorization header must be 'Bearer ssmd_<id>_<secret>'",
        )
    value = headers.get("x-api-key")
    if value:
        return value.strip()
    if allow_query and query is not None and query.get("api_key"):
        return query["api_key"].strip()
    return None


# -- rate limits -----------------------------------------------------------------------


class RateLimiter:
    """Token bucket per key: `rate` requests per second sustained, bursts up to `burst`.

    In memory, per gateway process (a client spread over N gateways gets N× the rate;
    buckets are cheap and need no coordination). `take` raises 429 with Retry-After.
    """

    def __init__(
        self, rate: float = 20.0, burst: float = 40.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, principal: Principal, cost: float = 1.0) -> None:
        if self.rate <= 0:
            return
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(principal.key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[principal.key_id] = (tokens - cost, now)
                return
            self._buckets[principal.key_id] = (tokens, now)
        wait = (cost - tokens) / self.rate
        seconds = max(1, int(wait + 0.999))
        raise AuthError(
            429,
            "rate_limited",
            f"rate limit for API key {principal.key_id}: {self.rate:g} requests/s, "
            f"burst {self.burst:g}; retry in {seconds}s",
            headers={"Retry-After": str(seconds)},
        )


# -- the authenticator -----------------------------------------------------------------


class Authenticator:
    """Token → Principal, through a TTL cache over `ssmd.meta.keys.authenticate`."""

    def __init__(
        self,
        pool: MetaPool,
        env: str,
        *,
        ttl_s: float = 2.0,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.env = env
        self.ttl_s = ttl_s
        self.limiter = limiter or RateLimiter()
        self.clock = clock
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self._inflight: dict[bytes, asyncio.Future[Principal]] = {}
        self.lookups = 0
        """Database lookups made (cache misses), for tests and metrics."""

    def _cached(self, digest: bytes) -> Principal | None:
        hit = self._cache.get(digest)
        if hit is not None and self.clock() - hit[0] < self.ttl_s:
            return hit[1]
        return None

    def _lookup(self, conn: Any, token: str) -> Principal:
        key = meta_keys.authenticate(conn, token)
        client = meta_clients.get_client(conn, key.env, key.client_id)
        assert client is not None  # authenticate checked it is there and active
        return Principal(
            key_id=key.key_id,
            client_id=key.client_id,
            env=key.env,
            scopes=key.scopes,
            type=client.type,
            client=client,
        )

    def _check(self, principal: Principal) -> Principal:
        if principal.env != self.env:
            raise unauthorized(
                "wrong_environment",
                f"API key {principal.key_id} belongs to environment {principal.env!r}, "
                f"this gateway serves {self.env!r}",
            )
        return principal

    async def authenticate(self, token: str | None) -> Principal:
        """The principal of `token`, or a 401 AuthError saying whether it was missing or
        why it is invalid (unknown, wrong secret, revoked, expired, client inactive)."""
        if not token:
            raise unauthorized(
                "missing_api_key",
                "no API key: send 'Authorization: Bearer ssmd_<id>_<secret>' or 'X-API-Key'",
            )
        digest = hashlib.sha256(token.encode()).digest()
        principal = self._cached(digest)
        if principal is None:
            pending = self._inflight.get(digest)
            if pending is None:
                principal = await self._fetch(digest, token)
            else:  # the same key's lookup is under way: share it
                principal = await asyncio.shield(pending)
        return self._check(principal)

    async def _fetch(self, digest: bytes, token: str) -> Principal:
        """One database lookup per key at a time: every stream session re-validates on
        the same heartbeat, and 100 sessions of one key must not make 100 lookups."""
        fut: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # never "unretrieved"
        self._inflight[digest] = fut
        self.lookups += 1
        try:
            principal = await self.pool.run(lambda conn: self._lookup(conn, token))
        except meta_keys.KeyRejected as exc:
            self._cache.pop(digest, None)
            error = unauthorized("invalid_api_key", f"invalid API key: {exc.reason}")
            fut.set_exception(error)
            raise error from None
        except BaseException as exc:  # the sharers fail (or are cancelled) with it
            if isinstance(exc, Exception):
                fut.set_exception(exc)
            else:
                fut.cancel()
            raise
        finally:
            self._inflight.pop(digest, None)
        self._cache[digest] = (self.clock(), principal)
        if len(self._cache) > 10_000:
            self._evict()
        fut.set_result(principal)
        return principal

    async def from_connection(
        self, conn: HTTPConnection, *, allow_query: bool = False
    ) -> Principal:
        """Authenticate a Starlette Request or WebSocket (query key only if allowed)."""
        token = token_from(conn.headers, conn.query_params, allow_query=allow_query)
        return await self.authenticate(token)

    def invalidate(self, key_id: str | None = None) -> None:
        """Drop cached principals (of one key, or all): e.g. right after an admin revoke."""
        if key_id is None:
            self._cache.clear()
            return
        for digest, (_, p) in list(self._cache.items()):
            if p.key_id == key_id:
                self._cache.pop(digest, None)

    def _evict(self) -> None:
        now = self.clock()
        for digest, (at, _) in list(self._cache.items()):
            if now - at >= self.ttl_s:
                self._cache.pop(digest, None)
