"""`ssmd retention apply`: per-tier retention from the definition; a dry run by default."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import typer

from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import UNREACHABLE, CliError, JsonOpt, console, print_json, print_table
from ssmd.cli.pg import ActorOpt, PgUrlOpt, actor_name, meta_session
from ssmd.cli.shipper import data_root, open_store
from ssmd.cli.stack import DataDirOpt
from ssmd.spec import units
from ssmd.storage import retention as policy
from ssmd.storage.store import StoreError

app = typer.Typer(
    help="Retention of local segments, raw objects and Parquet (storage.retention).",
    no_args_is_help=True,
)


def _age(now: int, end: int) -> str:
    return units.format_duration(max(0, now - end) // units.S * units.S)


@app.command("apply")
def apply_cmd(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    execute: bool = typer.Option(
        False, "--execute", help="Delete for real (default: only print what would go)."
    ),
    as_json: bool = JsonOpt,
    actor: str | None = ActorOpt,
    pg_url: str | None = PgUrlOpt,
    data_dir: Path | None = DataDirOpt,
    directory: Path = DirOpt,
) -> None:
    """Apply storage.retention: journal (verified-shipped local segments), raw (objects of
    verified segments) and normalized (Parquet date partitions). Dry run unless
    --execute; every executed deletion is audited. Exit 3 if Postgres or the object
    store is unreachable (what was deleted before is recorded)."""
    definition = load_env(env, directory)
    root = data_root(definition, data_dir)
    store = open_store(definition, root)
    name = definition.metadata.name
    who = actor_name(actor)
    with meta_session(pg_url) as conn:
        try:
            plan = policy.plan(
                conn, store, name, root, definition.storage.retention, time.time_ns()
            )
            conn.commit()
            if execute:
                policy.apply(plan, conn, store, root, who)
        except StoreError as exc:
            raise CliError(str(exc), UNREACHABLE, exc.hint or "is the object store up?") from None
        except psycopg.OperationalError as exc:
            raise CliError(f"Postgres failed: {exc}", UNREACHABLE) from None
    _show(plan, as_json)


def _show(plan: policy.Plan, as_json: bool) -> None:
    if as_json:
        print_json(plan.as_dict())
        return
    verb = "deleted" if plan.executed else "would delete"
    rows = []
    for tier in policy.TIERS:
        window = plan.retention[tier]
        if window <= 0:
            rows.append([tier, "(kept forever)", "", "", ""])
            continue
        for item in plan.items[tier]:
            rows.append([tier, item.key, item.files, item.size, _age(plan.now_ns, item.end_ns)])
    print_table(
        f"retention {plan.env}: {verb}", ["tier", "key / partition", "files", "bytes", "age"], rows
    )
    for tier in policy.TIERS:
        items = plan.items[tier]
        window = plan.retention[tier]
        shown = "forever" if window <= 0 else units.format_duration(window)
        console.print(
            f"{tier}: {len(items)} item(s), {sum(i.size for i in items)} bytes "
            f"{verb} (keep {shown})",
            highlight=False,
        )
    for held in plan.held:
        console.print(f"[yellow]kept[/] {held.tier} {held.key}: {held.reason}", highlight=False)
    if not plan.executed and any(plan.items.values()):
        console.print("dry run: nothing deleted; pass --execute to delete", highlight=False)
