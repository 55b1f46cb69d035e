"""The gateway's shared state (`app.state.gw`): what every route and the WebSocket
endpoint use — settings, the Postgres pool, the authenticator, the meter, the object
store, metrics, and the `draining` event set when shutdown begins."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import Counter, Gauge

from ssmd.gateway.auth import Authenticator, RateLimiter
from ssmd.gateway.db import MetaPool
from ssmd.gateway.metering import Meter
from ssmd.gateway.settings import GatewaySettings
from ssmd.ops.metrics import latency_histogram, registry


class Gateway:
    def __init__(self, settings: GatewaySettings, pool: MetaPool | None = None) -> None:
        self.settings = settings
        self.env = settings.env
        self.pool = pool or MetaPool(settings.pg_url)
        self.auth = Authenticator(
            self.pool,
            settings.env,
            ttl_s=settings.auth_ttl_s,
            limiter=RateLimiter(settings.rate, settings.burst),
        )
        self.meter = Meter(self.pool, settings.env, interval_s=settings.usage_interval_s)
        self._store: Any = None
        self.draining = asyncio.Event()
        """Set when shutdown starts: long-lived handlers (WebSocket) should say goodbye."""
        self.started = time.time()
        self.registry = registry()
        self.requests = Counter(
            "ssmd_gateway_requests", "HTTP requests", ("route", "status"), registry=self.registry
        )
        self.latency = latency_histogram(
            self.registry, "ssmd_gateway_request_seconds", "HTTP request latency", ("route",)
        )
        self.rows = Counter(
            "ssmd_gateway_rows", "Records returned", ("route",), registry=self.registry
        )
        self.refused = Counter(
            "ssmd_gateway_refused", "Requests refused (401/403/429)", ("code",),
            registry=self.registry,
        )  # fmt: skip
        self.connections = Gauge(
            "ssmd_gateway_connections", "Open WebSocket connections", registry=self.registry
        )

    def store(self) -> Any:
        """The environment's object store (built once; raises StoreError if unusable)."""
        if self._store is None:
            from ssmd.storage import ObjectStore

            self._store = ObjectStore.from_spec(
                self.settings.definition.storage, self.settings.root
            )
        return self._store

    def history(self, feed: str) -> Any:
        """A fresh `History` of one feed (fresh: coverage markers are re-read)."""
        from ssmd.bus.msgid import seq_scope
        from ssmd.history.query import History

        venue = self.settings.definition.feeds[feed].venue
        return History(
            self.store(),
            self.env,
            feed,
            nats_url=self.settings.nats_url,
            scope=seq_scope(venue),
            cache=self.settings.root / "cache",
        )

    def status(self) -> dict[str, Any]:
        """The KV heartbeat document."""
        return {
            "env": self.env,
            "uptime_s": round(time.time() - self.started, 1),
            "draining": self.draining.is_set(),
            "usage_flushed_rows": self.meter.flushed_rows,
            "usage_error": self.meter.last_error,
            "auth_lookups": self.auth.lookups,
        }

    def close(self) -> None:
        self.pool.close()
