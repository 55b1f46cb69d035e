"""`ssmd audit`: read and verify the hash-chained audit log.

Also home of the small Postgres helpers the metadata command groups share
(`meta_session`, `PgUrlOpt`, `ActorOpt`): one place maps connection trouble to exit 3.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import typer

from ssmd.cli.output import INVALID, UNREACHABLE, CliError, JsonOpt, emit, print_json
from ssmd.meta import MetaUnreachable, MigrationError, audit, connect, redact_url
from ssmd.model.time import format_ns
from ssmd.stack.state import NotConfigured, resolve_pg_url

app = typer.Typer(
    help="The audit log: who did what, when, to what (config applies, key lifecycle, "
    "entitlement changes, admin actions). Hash-chained: `verify` detects tampering.",
    no_args_is_help=True,
)

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


@contextmanager
def meta_session(pg_url: str | None) -> Iterator[psycopg.Connection]:
    """A migrated connection whose work commits when the block ends without error.

    No URL configured, or Postgres down → exit 3 naming it and how to start it; a CliError
    inside the block rolls everything back.
    """
    try:
        url = resolve_pg_url(pg_url)
    except NotConfigured as exc:
        raise CliError(str(exc), UNREACHABLE) from None
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


@app.command("log")
def log_cmd(
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many entries, newest first."),
    actor: str | None = typer.Option(None, "--actor", help="Only this actor's entries."),
    action: str | None = typer.Option(
        None, "--action", help="Only actions starting with this, e.g. key. or env.version."
    ),
    target: str | None = typer.Option(None, "--target", help="Only this target, e.g. key/ID."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """List audit entries, newest first."""
    with meta_session(pg_url) as conn:
        entries = audit.log(conn, limit=limit, actor=actor, action=action, target=target)
    emit(
        as_json,
        entries,
        "audit log (newest first)",
        ["id", "time", "actor", "action", "target", "details"],
        [
            [e.id, format_ns(e.ts_ns), e.actor, e.action, e.target, _short(e.details)]
            for e in entries
        ],
    )


def _short(details: dict[str, object], width: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in details.items())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def verify(as_json: bool = JsonOpt, pg_url: str | None = PgUrlOpt) -> None:
    """Recompute the hash chain; exit 1 naming the first row that does not hold."""
    with meta_session(pg_url) as conn:
        result = audit.verify(conn)
    if as_json:
        print_json(result)
    elif result.ok:
        typer.echo(f"ok: {result.rows} entries, chain head {result.head}")
    if not result.ok:
        raise CliError(
            f"audit chain broken at row {result.broken_id}: {result.reason}",
            INVALID,
            f"{result.rows - 1} entries before it verify; the last good hash is {result.head}",
        )
