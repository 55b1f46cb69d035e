"""`ssmd gateway --env E`: the REST + WebSocket gateway (docs/api.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError
from ssmd.cli.pg import PgUrlOpt, nats_url_or_none, pg_url_or_exit


def gateway(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", "-p", help="Port to listen on."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate (TLS)."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key (TLS)."),
    pg_url: str | None = PgUrlOpt,
    nats_url: str | None = typer.Option(
        None, "--nats-url", help="NATS (recent history window, heartbeat) [default: stack's]."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Override storage.data_dir."),
    rate: float = typer.Option(20.0, "--rate", help="Requests/s per API key (0 = unlimited)."),
    burst: float = typer.Option(40.0, "--burst", help="Token bucket size per API key."),
    drain: float = typer.Option(10.0, "--drain", help="Seconds to drain clients on SIGTERM."),
    log_level: str = typer.Option("INFO", "--log-level", help="Log level (JSON logs)."),
    directory: Path = DirOpt,
) -> None:
    """Serve REST history (/v1/…), the WebSocket stream, /openapi.json, /docs, /metrics."""
    from ssmd.gateway.server import build_server
    from ssmd.gateway.settings import GatewaySettings
    from ssmd.meta import MetaUnreachable, MigrationError
    from ssmd.ops.logging import setup_logging

    if (tls_cert is None) != (tls_key is None):
        raise CliError("--tls-cert and --tls-key go together", INVALID)
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise CliError(f"no such file: {path}", INVALID)
    definition = load_env(env, directory)
    pg, nats = pg_url_or_exit(pg_url), nats_url_or_none(nats_url)
    setup_logging(log_level, component="gateway")
    settings = GatewaySettings(definition, pg, nats_url=nats, data_dir=data_dir, rate=rate,
                               burst=burst)  # fmt: skip
    try:
        server = build_server(
            settings, host, port,
            tls_cert=str(tls_cert) if tls_cert else None,
            tls_key=str(tls_key) if tls_key else None,
            drain_s=drain,
        )  # fmt: skip
        server.run()
    except MetaUnreachable as exc:
        raise CliError(str(exc), UNREACHABLE) from None
    except MigrationError as exc:
        raise CliError(str(exc), INVALID) from None
    if not server.started:
        raise CliError(f"the gateway did not start on {host}:{port}", UNREACHABLE)


def register(app: typer.Typer) -> None:
    app.command("gateway")(gateway)
