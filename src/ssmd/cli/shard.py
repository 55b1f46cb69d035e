"""`ssmd shard plan`: which connector process and connection captures which instrument."""

from __future__ import annotations

from pathlib import Path

import typer

from ssmd.capture.shard import plan as shard_plan
from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, CliError, JsonOpt, print_json, print_table
from ssmd.venues.registry import VENUES

app = typer.Typer(
    help="Sharding of a feed's instruments (rendezvous hashing; adding a shard moves ~1/N).",
    no_args_is_help=True,
)

EnvOpt = typer.Option(
    "dev", "--env", "-e", envvar="SSMD_ENV", help="Environment name or .yaml path."
)


@app.command()
def plan(
    feed: str = typer.Option(..., "--feed", "-f", help="Feed name in the environment."),
    env: str = EnvOpt,
    shards: int | None = typer.Option(
        None, "--shards", "-n", min=1, help="Shard count to plan for (default: the feed's)."
    ),
    as_json: bool = JsonOpt,
    directory: Path = DirOpt,
) -> None:
    """The assignment shard -> connections -> instruments a connector fleet would use."""
    definition = load_env(env, directory)
    spec = definition.feeds.get(feed)
    if spec is None:
        known = ", ".join(sorted(definition.feeds)) or "none"
        raise CliError(
            f"no feed {feed!r} in environment {definition.metadata.name}",
            INVALID,
            f"feeds: {known}",
        )
    if not spec.instruments:
        raise CliError(
            f"feed {feed!r} selects its instruments from the secmaster",
            INVALID,
            "a selector is resolved at apply time; plan a feed with listed instruments",
        )
    info = VENUES.get(spec.venue)
    limit = info.max_instruments_per_connection if info else None
    caps = [x for x in (spec.max_instruments_per_connection, limit) if x]
    per = min(caps) if caps else max(1, len(spec.instruments))
    count = shards or spec.shards
    assignment = shard_plan(spec.instruments, count, per, feed=feed)
    if as_json:
        print_json(
            {
                "env": definition.metadata.name,
                "feed": feed,
                "venue": spec.venue,
                "shards": count,
                "max_instruments_per_connection": per,
                "assignment": [
                    {"shard": shard, "connections": conns, "instruments": sum(map(len, conns))}
                    for shard, conns in assignment.items()
                ],
            }
        )
        return
    rows = [
        [f"{shard}/{count}", conn, len(symbols), " ".join(symbols)]
        for shard, conns in assignment.items()
        for conn, symbols in (enumerate(conns) if conns else [(None, [])])
    ]
    print_table(
        f"{definition.metadata.name}/{feed}: {len(spec.instruments)} instruments, {count} "
        f"shard(s), ≤{per} per connection",
        ["shard", "conn", "count", "instruments"],
        rows,
    )
