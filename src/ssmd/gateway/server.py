"""Serving the app with uvicorn: TLS, JSON logs, graceful shutdown that drains clients.

On SIGTERM/SIGINT uvicorn stops accepting connections and waits up to `drain_s` for
in-flight requests; we set `gw.draining` first, so /v1/health answers 503 (load
balancers stop routing) and WebSocket handlers close their clients politely. Then the
lifespan flushes usage, stops the heartbeat and closes the pool.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from ssmd.gateway.app import create_app
from ssmd.gateway.settings import GatewaySettings

log = logging.getLogger("ssmd.gateway")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Like uvicorn's, minus re-raising the signal afterwards: a drained gateway
        exits 0 (uvicorn would die by SIGTERM after the graceful shutdown)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        sigs = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: Any) -> None:
        gateway = getattr(getattr(self.config.app, "state", None), "gw", None)
        if gateway is not None:
            gateway.draining.set()
        log.info("shutdown requested: draining", extra={"signal": sig})
        super().handle_exit(sig, frame)


def build_server(
    settings: GatewaySettings,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    drain_s: float = 10.0,
) -> uvicorn.Server:
    """A uvicorn server for the gateway (call `.run()`, or `await .serve()`)."""
    if not settings.instance:
        settings.instance = f"{host}:{port}"
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        timeout_graceful_shutdown=int(drain_s),
        log_config=None,  # our JSON logging (ssmd.ops.logging) handles uvicorn's loggers
        access_log=False,
        lifespan="on",
        proxy_headers=False,
        # uvicorn's "auto" picks its legacy websockets adapter, which refuses every
        # handshake with websockets >= 14 (HTTP 403); the sans-I/O adapter works.
        ws="websockets-sansio",
        # compressing every frame cost more CPU than anything else per record sent (and
        # as much again in every client): market data goes out uncompressed
        ws_per_message_deflate=False,
    )
    return _Server(config)
