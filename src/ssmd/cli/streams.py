"""`ssmd streams plan|apply|reconcile`: JetStream streams and KV buckets from the definition.

`apply` creates what is missing and refuses streams that disagree with the definition
(naming each field); `reconcile` also edits the fields JetStream can change in place.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from ssmd.bus.connection import BusUnreachable, connect
from ssmd.bus.provision import Diff, StreamMismatch, ensure_streams, plan_streams
from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError, JsonOpt, print_json
from ssmd.spec.model import Environment
from ssmd.stack.state import NotConfigured, resolve_nats_url

app = typer.Typer(
    help="JetStream streams MD_{ENV}_{FEED} and KV buckets, provisioned from the environment "
    "definition; mismatching streams are refused, never silently used.",
    no_args_is_help=True,
)

EnvOpt = typer.Option(..., "--env", "-e", help="Environment name or .yaml path.")
NatsUrlOpt = typer.Option(
    None,
    "--nats-url",
    help="NATS URL (default: $SSMD_NATS_URL, else the running local stack's).",
    show_default=False,
)


def _url(explicit: str | None) -> str:
    try:
        return resolve_nats_url(explicit)
    except NotConfigured as exc:
        raise CliError(str(exc), UNREACHABLE) from None


async def _run(url: str, env: Environment, mode: str) -> list[Diff]:
    nc = await connect(url, name="ssmd-streams")
    try:
        js = nc.jetstream()
        if mode == "plan":
            return await plan_streams(js, env)
        return await ensure_streams(js, env, update=mode == "reconcile")
    finally:
        await nc.close()


def _as_json(diffs: list[Diff]) -> list[dict[str, Any]]:
    return [
        {
            "stream": d.stream,
            "feed": d.feed,
            "action": d.action,
            "fields": [
                {"field": f.field, "found": f.found, "wanted": f.wanted, "safe": f.safe}
                for f in d.fields
            ],
        }
        for d in diffs
    ]


def _command(
    mode: str, name: str, directory: Path | None, nats_url: str | None, as_json: bool
) -> None:
    env = load_env(name, directory)
    url = _url(nats_url)
    try:
        diffs = asyncio.run(_run(url, env, mode))
    except BusUnreachable as exc:
        raise CliError(
            str(exc), UNREACHABLE, "start NATS with `ssmd up` or pass --nats-url"
        ) from None
    except StreamMismatch as exc:
        if as_json:
            print_json({"env": env.metadata.name, "refused": _as_json(exc.diffs), "hint": exc.hint})
        raise CliError(str(exc).split("\nfix: ")[0], INVALID, exc.hint) from None
    if as_json:
        print_json({"env": env.metadata.name, "streams": _as_json(diffs)})
        return
    if not diffs:
        typer.echo(f"{env.metadata.name} has no enabled feeds: no streams")
    for d in diffs:
        typer.echo(f"{d.action:8} {d.stream}  (feed {d.feed})")
        for f in d.fields:
            typer.echo(f"           {f}{'' if f.safe else '  [needs delete + recreate]'}")


@app.command()
def plan(
    env: str = EnvOpt,
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
    nats_url: str | None = NatsUrlOpt,
) -> None:
    """Compare each enabled feed's stream with the definition: create, ok or refuse."""
    _command("plan", env, directory, nats_url, as_json)


@app.command()
def apply(
    env: str = EnvOpt,
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
    nats_url: str | None = NatsUrlOpt,
) -> None:
    """Create missing streams and KV buckets; refuse (exit 1) any that disagree."""
    _command("apply", env, directory, nats_url, as_json)


@app.command()
def reconcile(
    env: str = EnvOpt,
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
    nats_url: str | None = NatsUrlOpt,
) -> None:
    """Like apply, but update mismatching subjects and limits in place (messages kept);
    storage and retention still need a delete."""
    _command("reconcile", env, directory, nats_url, as_json)
