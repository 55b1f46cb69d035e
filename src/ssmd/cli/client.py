"""`ssmd client`: consumer identities, scopes and entitlements (YAML edits).

API keys for a client are issued with `ssmd key` and stored hashed in Postgres; the
definition holds only who the client is and what it may see.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ssmd.cli.env import DirOpt, edited, existing, load_env
from ssmd.cli.feed import EnvOpt
from ssmd.cli.output import JsonOpt, emit
from ssmd.spec import edit
from ssmd.spec.canonical import to_document

app = typer.Typer(
    help="Clients of an environment: identity, type, scopes, entitlements. "
    "Edits rewrite the YAML (comments kept) and are refused if the result is invalid.",
    no_args_is_help=True,
)


@app.command("list")
def list_(env: str = EnvOpt, as_json: bool = JsonOpt, directory: Path = DirOpt) -> None:
    """Clients with type, scopes, entitled feeds and state."""
    definition = load_env(env, directory)
    rows = [
        [
            c.id,
            c.type,
            ",".join(c.scopes),
            ",".join(sorted({f for e in c.entitlements for f in e.feeds})) or "-",
            "revoked" if c.revoked else "active",
        ]
        for c in definition.clients
    ]
    emit(
        as_json,
        to_document(definition)["clients"],
        f"clients of {definition.metadata.name}",
        ["client", "type", "scopes", "feeds", "state"],
        rows,
    )


@app.command()
def add(
    client_id: str = typer.Argument(..., help="Client id (lowercase, digits, '-')."),
    type_: str = typer.Option(
        ..., "--type", help="Licensing class: display | non-display | trading."
    ),
    scope: list[str] = typer.Option(
        None, "--scope", "-s", help="admin|operator|read|stream|feedback (repeat); default read."
    ),
    description: str = typer.Option("", "--description", "-d", help="Who or what it is."),
    env: str = EnvOpt,
    directory: Path = DirOpt,
) -> None:
    """Add a client (then `ssmd client entitle`, then `ssmd key create`)."""
    path = existing(env, directory)
    edited(
        path,
        f"added client {client_id}",
        edit.add_client,
        client_id,
        type=type_,
        scopes=list(scope or ["read"]),
        description=description,
    )


@app.command()
def entitle(
    client_id: str = typer.Argument(..., help="Client id."),
    feed: list[str] = typer.Option(..., "--feed", "-f", help="Feed name or '*' (repeat)."),
    symbol: list[str] = typer.Option(
        None, "--symbol", help="Glob on the normalized symbol (repeat), e.g. 'BTC-*'."
    ),
    record_type: list[str] = typer.Option(
        None, "--record-type", "-r", help="trade|quote|book|status|gap|instrument (repeat)."
    ),
    start: str = typer.Option(None, "--start", help="History window start, YYYY-MM-DD."),
    end: str = typer.Option(None, "--end", help="History window end, YYYY-MM-DD."),
    lookback: str = typer.Option(None, "--lookback", help="Rolling history window, e.g. 30d."),
    expires: str = typer.Option(None, "--expires", help="Ends at 00:00 UTC on YYYY-MM-DD."),
    env: str = EnvOpt,
    directory: Path = DirOpt,
) -> None:
    """Grant a client one more entitlement (all its conditions hold together)."""
    path = existing(env, directory)
    edited(
        path,
        f"entitled {client_id} to {', '.join(feed)}",
        edit.entitle,
        client_id,
        feeds=list(feed),
        symbols=list(symbol or []),
        types=list(record_type or []),
        start=start,
        end=end,
        lookback=lookback,
        expires=expires,
    )


@app.command()
def revoke(
    client_id: str = typer.Argument(..., help="Client id."),
    purge: bool = typer.Option(
        False, "--purge", help="Delete the client instead of marking it revoked."
    ),
    env: str = EnvOpt,
    directory: Path = DirOpt,
) -> None:
    """Revoke a client: marked `revoked: true` (kept for the record) unless --purge."""
    path = existing(env, directory)
    verb = "purged" if purge else "revoked"
    edited(path, f"{verb} client {client_id}", edit.revoke, client_id, purge=purge)
