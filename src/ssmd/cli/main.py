"""The `ssmd` command: one app, one sub-app per command group."""

from __future__ import annotations

import importlib
import sys

import typer

from ssmd.cli.output import CliError, err_console

app = typer.Typer(
    name="ssmd",
    help="Stupid simple market data: capture, normalize, stream and serve exchange data, "
    "all driven by one environment definition (environments/NAME.yaml).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines `app` (a command group) or `register(app)` (top-level commands).
GROUPS = {
    "env": "ssmd.cli.env",
    "feed": "ssmd.cli.feed",
    "instrument": "ssmd.cli.instrument",
    "client": "ssmd.cli.client",
    "key": "ssmd.cli.key",
    "audit": "ssmd.cli.audit",
    "venue": "ssmd.cli.venue",
    "streams": "ssmd.cli.streams",
    "shard": "ssmd.cli.shard",
    "data": "ssmd.cli.data",
    "retention": "ssmd.cli.retention",
    "transform": "ssmd.cli.transform",
    "nats-auth": "ssmd.cli.natsauth",
    "usage": "ssmd.cli.usage",
    "skill": "ssmd.cli.skill",
    "feedback": "ssmd.cli.feedback",
}
TOP_LEVEL = (
    "ssmd.cli.stack",
    "ssmd.cli.replay",
    "ssmd.cli.connector",
    "ssmd.cli.shipper",
    "ssmd.cli.reprocess",
    "ssmd.cli.gateway",
    "ssmd.cli.mcp",
    "ssmd.cli.tui",
)
# Modules that add commands to a group defined elsewhere (imported for their side effect).
EXTENSIONS = ("ssmd.cli.env_store",)


def _load() -> None:
    for name, module_name in GROUPS.items():
        app.add_typer(importlib.import_module(module_name).app, name=name)
    for module_name in TOP_LEVEL:
        importlib.import_module(module_name).register(app)
    for module_name in EXTENSIONS:
        importlib.import_module(module_name)


@app.command()
def version() -> None:
    """Print the ssmd version."""
    from ssmd import __version__

    typer.echo(__version__)


_load()


def run() -> None:
    """Console entry point: CliError becomes a message on stderr and its exit code.

    Click's standalone mode already maps usage errors to exit code 2.
    """
    try:
        app()
    except CliError as exc:
        # soft_wrap: one error is one line, whatever the terminal width (scripts grep it)
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
        sys.exit(exc.code)


if __name__ == "__main__":
    run()
