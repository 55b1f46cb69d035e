"""`ssmd mcp`: the MCP server for AI agents (docs/agents.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import typer

from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError
from ssmd.cli.pg import PgUrlOpt, nats_url_or_none, pg_url_or_exit


def mcp(
    transport: str = typer.Option(
        "stdio", "--transport", "-t", help="stdio (Claude Desktop/Code) or http."
    ),
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address for --transport http."),
    port: int = typer.Option(8765, "--port", "-p", help="Port for --transport http."),
    pg_url: str | None = PgUrlOpt,
    nats_url: str | None = typer.Option(
        None, "--nats-url", help="NATS (recent window, heartbeats) [default: stack's]."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Override storage.data_dir."),
    directory: Path = DirOpt,
) -> None:
    """Serve read-only market-data tools over MCP. stdio authenticates every call with
    $SSMD_API_KEY; http with each request's 'Authorization: Bearer ssmd_…'."""
    from ssmd.agents.mcp import build_server
    from ssmd.agents.service import Service, Settings
    from ssmd.meta import MetaUnreachable, MigrationError

    if transport not in ("stdio", "http"):
        raise CliError(f"--transport is stdio or http, not {transport!r}", INVALID)
    key = os.environ.get("SSMD_API_KEY") or None
    if transport == "stdio" and not key:
        raise CliError("stdio needs an API key in $SSMD_API_KEY", INVALID,
                       hint="ssmd key create --client ID --env dev")  # fmt: skip
    definition = load_env(env, directory)
    pg, nats = pg_url_or_exit(pg_url), nats_url_or_none(nats_url)
    try:
        service = Service(Settings(definition, pg, nats_url=nats, data_dir=data_dir))
    except MetaUnreachable as exc:
        raise CliError(str(exc), UNREACHABLE) from None
    except MigrationError as exc:
        raise CliError(str(exc), INVALID) from None
    server = build_server(service, api_key=key if transport == "stdio" else None)
    kind: Literal["stdio", "http"] = "stdio" if transport == "stdio" else "http"
    try:
        if kind == "stdio":
            server.run("stdio", show_banner=False)
        else:
            server.run("http", host=host, port=port, show_banner=False)
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
