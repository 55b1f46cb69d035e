"""`ssmd feed`: list and edit the feeds of an environment definition (YAML edits)."""

from __future__ import annotations

from pathlib import Path

import typer

from ssmd.cli.env import DirOpt, edited, existing, load_env
from ssmd.cli.output import INVALID, CliError, JsonOpt, emit
from ssmd.spec import edit
from ssmd.spec.canonical import to_document
from ssmd.venues.registry import VENUES

app = typer.Typer(
    help="Feeds of an environment: one venue, its channels and instruments each. "
    "Edits rewrite the YAML (comments kept) and are refused if the result is invalid.",
    no_args_is_help=True,
)

EnvOpt = typer.Option(
    "dev", "--env", "-e", envvar="SSMD_ENV", help="Environment name or .yaml path."
)


@app.command("list")
def list_(env: str = EnvOpt, as_json: bool = JsonOpt, directory: Path = DirOpt) -> None:
    """Feeds with venue, state, shards and instrument counts."""
    definition = load_env(env, directory)
    doc = to_document(definition)["feeds"]
    rows = []
    for name, feed in definition.feeds.items():
        count = len(feed.instruments) if feed.instruments else "selector"
        rows.append(
            [
                name,
                feed.venue,
                "yes" if feed.enabled else "no",
                ",".join(feed.channels) or "(all)",
                count,
                feed.shards,
            ]
        )
    objs = [{"name": n, **f} for n, f in doc.items()]
    emit(
        as_json,
        objs,
        f"feeds of {definition.metadata.name}",
        ["feed", "venue", "enabled", "channels", "instruments", "shards"],
        rows,
    )


@app.command()
def add(
    name: str = typer.Argument(..., help="Feed name (lowercase, digits, '-', '_')."),
    venue: str = typer.Option(..., "--venue", help="Venue protocol id, see `ssmd venue list`."),
    channel: list[str] = typer.Option(
        None, "--channel", "-c", help="Channel to subscribe (repeat); default: all."
    ),
    instrument: list[str] = typer.Option(
        None, "--instrument", "-i", help="Venue symbol (repeat), e.g. BTC/USD."
    ),
    depth: int = typer.Option(None, "--depth", help="Book depth; 0 = full."),
    shards: int = typer.Option(
        None, "--shards", help="Connector shards; default: the minimum the instruments need."
    ),
    disabled: bool = typer.Option(False, "--disabled", help="Add it disabled."),
    env: str = EnvOpt,
    directory: Path = DirOpt,
) -> None:
    """Add a feed to an environment."""
    if venue not in VENUES:
        from ssmd.spec.structure import suggest

        raise CliError(f"unknown venue {venue!r}", INVALID, suggest(venue, sorted(VENUES)))
    path = existing(env, directory)
    edited(
        path,
        f"added feed {name} ({venue})",
        edit.add_feed,
        name,
        venue=venue,
        channels=list(channel or []),
        instruments=list(instrument or []),
        depth=depth,
        shards=shards,
        enabled=not disabled,
    )


@app.command()
def remove(
    name: str = typer.Argument(..., help="Feed name."), env: str = EnvOpt, directory: Path = DirOpt
) -> None:
    """Remove a feed (refused while clients, schedules or checks still name it)."""
    path = existing(env, directory)
    edited(path, f"removed feed {name}", edit.remove_feed, name)


@app.command()
def enable(
    name: str = typer.Argument(..., help="Feed name."), env: str = EnvOpt, directory: Path = DirOpt
) -> None:
    """Enable a feed (its connectors start on the next apply)."""
    path = existing(env, directory)
    edited(path, f"enabled feed {name}", edit.set_feed_enabled, name, True)


@app.command()
def disable(
    name: str = typer.Argument(..., help="Feed name."), env: str = EnvOpt, directory: Path = DirOpt
) -> None:
    """Disable a feed: it stays defined, no connector runs."""
    path = existing(env, directory)
    edited(path, f"disabled feed {name}", edit.set_feed_enabled, name, False)


@app.command("add-instrument")
def add_instrument(
    name: str = typer.Argument(..., help="Feed name."),
    symbols: list[str] = typer.Argument(..., help="Venue symbols, e.g. BTC/USD ETH/USD."),
    reshard: bool = typer.Option(
        False, "--reshard", help="Raise shards to the minimum the instruments need."
    ),
    env: str = EnvOpt,
    directory: Path = DirOpt,
) -> None:
    """Add instruments to a feed's explicit list."""
    path = existing(env, directory)
    edited(
        path,
        f"added {len(symbols)} instrument(s) to {name}",
        edit.add_instruments,
        name,
        list(symbols),
        reshard=reshard,
    )


@app.command("remove-instrument")
def remove_instrument(
    name: str = typer.Argument(..., help="Feed name."),
    symbols: list[str] = typer.Argument(..., help="Venue symbols to remove."),
    env: str = EnvOpt,
    directory: Path = DirOpt,
) -> None:
    """Remove instruments from a feed's explicit list."""
    path = existing(env, directory)
    edited(
        path,
        f"removed {len(symbols)} instrument(s) from {name}",
        edit.remove_instruments,
        name,
        list(symbols),
    )
