"""`ssmd audit`: read and verify the hash-chained audit log."""

from __future__ import annotations

import typer

from ssmd.cli.output import INVALID, CliError, JsonOpt, emit, print_json
from ssmd.cli.pg import PgUrlOpt, meta_session
from ssmd.meta import audit
from ssmd.model.time import format_ns

app = typer.Typer(
    help="The audit log: who did what, when, to what (config applies, key lifecycle, "
    "entitlement changes, admin actions). Hash-chained: `verify` detects tampering.",
    no_args_is_help=True,
)


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
