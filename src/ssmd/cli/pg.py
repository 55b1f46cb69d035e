"""Postgres for CLI commands: the shared options and one place that maps connection
trouble to exit code 3 with a message naming the server and how to start it."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import typer

from ssmd.cli.output import INVALID, UNREACHABLE, CliError
from ssmd.meta import MetaUnreachable, MigrationError, connect, redact_url
from ssmd.stack.state import NotConfigured, resolve_nats_url, resolve_pg_url

PgUrlOpt = typer.Option(
    None,
    "--pg-url",
    help="Postgres URL (default: $SSMD_PG_URL, else the running local stack's).",
    show_default=False,
)
ActorOpt = typer.Option(
    None,
    "--actor",
    envvar="SSMD_ACTOR",
    help="Who is acting, for the audit log (default: $SSMD_ACTOR, else the OS user).",
    show_default=False,
)


def actor_name(explicit: str | None) -> str:
    """--actor / $SSMD_ACTOR, else the OS user name."""
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


def pg_url_or_exit(pg_url: str | None) -> str:
    """--pg-url, else $SSMD_PG_URL, else the running stack's; none of them → exit 3."""
    try:
        return resolve_pg_url(pg_url)
    except NotConfigured as exc:
        raise CliError(str(exc), UNREACHABLE) from None


def nats_url_or_none(nats_url: str | None) -> str | None:
    """--nats-url, else $SSMD_NATS_URL, else the running stack's; None for services that
    run without NATS (the recent window and heartbeats are then unavailable)."""
    try:
        return resolve_nats_url(nats_url)
    except NotConfigured:
        return None


@contextmanager
def meta_session(pg_url: str | None) -> Iterator[psycopg.Connection]:
    """A migrated connection whose work commits when the block ends without error.

    No URL configured, or Postgres down → exit 3 naming it and how to start it; a CliError
    inside the block rolls everything back.
    """
    url = pg_url_or_exit(pg_url)
    try:
        conn = connect(url)
    except MetaUnreachable as exc:
        raise CliError(
            f"Postgres unreachable at {exc.where}: {exc.reason}",
            UNREACHABLE,
            "start the local stack with `ssmd up` (or `make up`), or point --pg-url / "
            "SSMD_PG_URL at a running server",
        ) from None
    except MigrationError as exc:
        raise CliError(str(exc), INVALID) from None
    try:
        with conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise CliError(
            f"Postgres connection lost at {redact_url(url)}: {exc}",
            UNREACHABLE,
            "is the local stack still running? (`ssmd up`)",
        ) from None
