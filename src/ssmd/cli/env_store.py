"""`ssmd env plan|apply|show|history|rollback`: the definition against what is applied.

These commands attach to the `ssmd env` group (cli/env.py holds the file-only ones) and
talk to Postgres (the versions) and NATS (the KV bucket components watch).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import typer

from ssmd import spec
from ssmd.bus.connection import BusUnreachable
from ssmd.cli.env import DirOpt, app, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError, JsonOpt, emit, print_json
from ssmd.cli.pg import ActorOpt, PgUrlOpt, actor_name, meta_session
from ssmd.control.apply import Applied, apply, canonical_of
from ssmd.meta import envs
from ssmd.model.time import format_ns
from ssmd.stack.state import NotConfigured, resolve_nats_url

NatsUrlOpt = typer.Option(
    None,
    "--nats-url",
    help="NATS URL (default: $SSMD_NATS_URL, else the running local stack's).",
    show_default=False,
)
MessageOpt = typer.Option("", "--message", "-m", help="Why: stored with the version.")


def _nats(explicit: str | None) -> str:
    try:
        return resolve_nats_url(explicit)
    except NotConfigured as exc:
        raise CliError(str(exc), UNREACHABLE) from None


def _report(result: Applied, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    if result.created:
        typer.echo(f"applied {result.env} version {result.version} ({result.sha256[:12]})")
        for change, ids in result.clients.items():
            if ids:
                typer.echo(f"  clients {change}: {', '.join(ids)}")
    else:
        typer.echo(f"{result.env} is already at version {result.version}: nothing to apply")
    if result.published:
        typer.echo(f"  published to NATS KV ssmd_{result.env}")


def _stored(conn: object, name: str, version: int | None) -> envs.EnvVersion:
    found = envs.latest(conn, name) if version is None else envs.get(conn, name, version)  # type: ignore[arg-type]
    if found is None:
        what = f"version {version} of {name!r}" if version else f"{name!r}"
        raise CliError(
            f"no applied {what}", INVALID, f"apply it first with `ssmd env apply {name}`"
        )
    return found


@app.command()
def plan(
    name: str = typer.Argument(..., help="Environment name or .yaml path."),
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """What `apply` would change: the file against the latest applied version."""
    env = load_env(name, directory)
    with meta_session(pg_url) as conn:
        current = envs.latest(conn, env.metadata.name)
    changes = (
        spec.diff(spec.from_json(msgspec.json.encode(current.spec)), env)
        if current is not None
        else []
    )
    result = {
        "env": env.metadata.name,
        "applied_version": current.version if current else None,
        "sha256": spec.spec_sha256(env),
        "new": current is None,
        "changes": changes,
    }
    if as_json:
        print_json(result)
        return
    if current is None:
        typer.echo(f"{env.metadata.name} was never applied: apply stores version 1")
    elif not changes:
        typer.echo(f"no changes: {env.metadata.name} matches applied version {current.version}")
    else:
        typer.echo(f"{len(changes)} change(s) against applied version {current.version}:")
        for change in changes:
            typer.echo(f"  {change}")


@app.command(name="apply")
def apply_cmd(
    name: str = typer.Argument(..., help="Environment name or .yaml path."),
    message: str = MessageOpt,
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
    pg_url: str | None = PgUrlOpt,
    nats_url: str | None = NatsUrlOpt,
    actor: str | None = ActorOpt,
) -> None:
    """Validate, store a new immutable version (audited), publish it to NATS KV.

    Applying an unchanged definition stores nothing (it only repairs KV if KV lags).
    """
    env = load_env(name, directory)
    url = _nats(nats_url)
    with meta_session(pg_url) as conn:
        try:
            result = apply(conn, url, env, actor_name(actor), message)
        except BusUnreachable as exc:
            raise CliError(
                f"{exc} (the version is stored in Postgres; rerun apply to publish it)",
                UNREACHABLE,
                "start the local stack with `ssmd up`, or point --nats-url at a server",
            ) from None
    _report(result, as_json)


@app.command()
def show(
    name: str = typer.Argument(..., help="Environment name."),
    version: int | None = typer.Option(None, "--version", "-v", help="A stored version."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """The applied definition, read back from Postgres (latest unless --version)."""
    with meta_session(pg_url) as conn:
        stored = _stored(conn, name, version)
    if as_json:
        print_json(stored)
        return
    typer.echo(
        f"{stored.env} version {stored.version}  sha256 {stored.sha256}\n"
        f"applied {format_ns(stored.created_ns)} by {stored.author}"
        + (f": {stored.message}" if stored.message else "")
    )
    typer.echo(msgspec.json.format(msgspec.json.encode(stored.spec), indent=2).decode())


@app.command()
def history(
    name: str = typer.Argument(..., help="Environment name."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Every stored version, newest first."""
    with meta_session(pg_url) as conn:
        versions = envs.history(conn, name)
    rows = [
        [v.version, format_ns(v.created_ns), v.author, v.sha256[:12], v.message] for v in versions
    ]
    summary = [
        {k: getattr(v, k) for k in ("version", "sha256", "author", "created_ns", "message")}
        for v in versions
    ]
    emit(
        as_json,
        summary,
        f"{name} versions",
        ["version", "applied", "by", "sha256", "message"],
        rows,
    )


@app.command()
def rollback(
    name: str = typer.Argument(..., help="Environment name."),
    to: int = typer.Option(..., "--to", help="The version to return to."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
    nats_url: str | None = NatsUrlOpt,
    actor: str | None = ActorOpt,
) -> None:
    """Re-apply a stored version as a new version (history is never rewritten).

    The YAML file in Git is not touched: bring it back in line with
    `ssmd env show NAME --version N --json` or by reverting the commit.
    """
    url = _nats(nats_url)
    with meta_session(pg_url) as conn:
        old = _stored(conn, name, to)
        env = spec.from_json(canonical_of(old))
        try:
            result = apply(conn, url, env, actor_name(actor), f"rollback to version {to}")
        except BusUnreachable as exc:
            raise CliError(str(exc), UNREACHABLE, "start the stack with `ssmd up`") from None
    _report(result, as_json)
