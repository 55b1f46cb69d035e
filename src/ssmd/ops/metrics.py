"""Prometheus metrics and the health endpoints every ssmd service exposes.

`MetricsServer` is a deliberately tiny asyncio HTTP/1.1 server (GET/HEAD, one request
per connection) on its own port, so a busy event loop serving market data never shares
a framework with the scrape path:

- `/metrics`  the registry in Prometheus text format 0.0.4;
- `/healthz`  liveness: 200 while the process works (503 + reasons when `health` says not);
- `/readyz`   readiness: 200 once the service does its job (e.g. connected and subscribed).

Each service builds its metrics in its own `CollectorRegistry` (tests run many services
in one process; the global default registry would collide).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import orjson
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Check = Callable[[], tuple[bool, dict[str, object]]]

LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds: 100 µs (same rack) to 10 s (a venue's slow path); beyond goes to +Inf."""


def registry() -> CollectorRegistry:
    """A fresh registry (no process/platform collectors: they are process-global)."""
    return CollectorRegistry(auto_describe=True)


def latency_histogram(
    reg: CollectorRegistry, name: str, doc: str, labels: tuple[str, ...] = ()
) -> Histogram:
    """A seconds histogram with the ssmd latency buckets."""
    return Histogram(name, doc, labels, registry=reg, buckets=LATENCY_BUCKETS)


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)


def _always_ok() -> tuple[bool, dict[str, object]]:
    return True, {}


class MetricsServer:
    """`/metrics`, `/healthz`, `/readyz` on host:port (port 0 = pick one; see `.port`)."""

    def __init__(
        self,
        reg: CollectorRegistry,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        health: Check = _always_ok,
        ready: Check = _always_ok,
    ) -> None:
        self.registry = reg
        self.host = host
        self.port = port
        self.health = health
        self.ready = ready
        self._server: asyncio.Server | None = None

    async def start(self) -> MetricsServer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MetricsServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, target = _request_line(head)
            status, ctype, body = self._respond(method, target)
            lines = [
                f"HTTP/1.1 {status}",
                f"Content-Type: {ctype}",
                f"Content-Length: {len(body)}",
                "Connection: close",
                "",
                "",
            ]
            writer.write("\r\n".join(lines).encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _respond(self, method: str, target: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET or HEAD\n"
        path = target.split("?", 1)[0]
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, render(self.registry)
        if path in ("/healthz", "/readyz"):
            check = self.health if path == "/healthz" else self.ready
            try:
                ok, detail = check()
            except Exception as exc:  # a failing check is an unhealthy answer, not a 500
                ok, detail = False, {"error": f"{type(exc).__name__}: {exc}"}
            body = orjson.dumps({"status": "ok" if ok else "fail", **detail}, default=str)
            status = "200 OK" if ok else "503 Service Unavailable"
            return status, "application/json", body + b"\n"
        return "404 Not Found", "text/plain", b"try /metrics, /healthz or /readyz\n"


def _request_line(head: bytes) -> tuple[str, str]:
    first = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(first) < 2:
        return "", ""
    return first[0].upper(), first[1]
