"""`ssmd tui`: the terminal admin UI (docs/tui.md).

It finds Postgres, NATS and the data dir the way every command does (option → environment
variable → the running local stack's state file), then hands them to `ssmd.tui`; a
dependency that cannot be found or reached is shown as such on screen, never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import typer

from ssmd.cli.output import UNREACHABLE, CliError
from ssmd.cli.pg import ActorOpt, PgUrlOpt, actor_name
from ssmd.cli.stack import DataDirOpt
from ssmd.cli.streams import NatsUrlOpt
from ssmd.stack.state import (
    NotConfigured,
    StackState,
    default_data_dir,
    read_state,
    resolve_nats_url,
    resolve_pg_url,
)


def _resolved(resolve: Callable[[str | None], str], explicit: str | None, fallback: str) -> str:
    """The URL by the usual rules, else the one from --data-dir's state file, else ''."""
    try:
        return resolve(explicit)
    except NotConfigured:
        return fallback


def sources_for(
    env: str | None, pg_url: str | None, nats_url: str | None, data_dir: Path | None
) -> tuple[str, str, str, Path]:
    """(env, pg_url, nats_url, data dir) from the options, the environment and the stack."""
    root = (data_dir or default_data_dir()).resolve()
    state: StackState | None = read_state(root)
    name = env or (state.env if state else "") or os.environ.get("SSMD_ENV") or "dev"
    pg = _resolved(resolve_pg_url, pg_url, state.pg_url if state else "")
    nats = _resolved(resolve_nats_url, nats_url, state.nats_url if state else "")
    return name, pg, nats, root


def tui(
    env: str | None = typer.Option(
        None, "--env", "-e",
        help="Environment to show (default: the running local stack's, else $SSMD_ENV, "
        "else dev).", show_default=False,
    ),
    pg_url: str | None = PgUrlOpt,
    nats_url: str | None = NatsUrlOpt,
    data_dir: Path | None = DataDirOpt,
    interval: float = typer.Option(
        2.0, "--interval", min=0.2, help="Seconds between refreshes."
    ),
    actor: str | None = ActorOpt,
) -> None:  # fmt: skip
    """Terminal admin UI: health at a glance, feeds, clients and keys (revoke, create),
    storage, data quality and feedback, logs. Fits 80×24 and works over SSH.

    Keys: o home, f feeds, c keys (r revoke, n new), s storage, q quality, l logs, ? help, x quit.
    """
    from ssmd.tui.app import SsmdTui
    from ssmd.tui.snapshot import Sources

    name, pg, nats, root = sources_for(env, pg_url, nats_url, data_dir)
    if not pg and not nats:
        raise CliError(
            "nothing to show: no Postgres or NATS URL and no local stack in " + str(root),
            UNREACHABLE,
            "start the stack with `ssmd up`, or pass --pg-url / --nats-url",
        )
    sources = Sources(env=name, pg_url=pg, nats_url=nats, data_dir=str(root))
    SsmdTui(sources, actor=actor_name(actor), interval=interval).run()


def register(app: typer.Typer) -> None:
    app.command()(tui)


__all__ = ["register", "sources_for", "tui"]
