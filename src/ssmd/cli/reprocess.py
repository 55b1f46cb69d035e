"""`ssmd reprocess`: raw segments → the Parquet archive (normalized/v{N}/…)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError, JsonOpt, console, print_json
from ssmd.cli.stack import DataDirOpt
from ssmd.model.time import format_ns, parse_time


def data_root(definition: object, data_dir: Path | None) -> Path:
    """--data-dir, else the definition's storage.data_dir."""
    storage = definition.storage  # type: ignore[attr-defined]
    return (data_dir or Path(storage.data_dir)).resolve()


def parse_when(text: str, option: str) -> int:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}", INVALID) from None


def reprocess_cmd(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    feed: str = typer.Option(..., "--feed", "-f", help="Feed name from the definition."),
    start: str = typer.Option(..., "--from", help="Start (ns or ISO-8601), floored to the hour."),
    end: str = typer.Option(
        ..., "--to", help="End, exclusive (ns or ISO), rounded up to the hour."
    ),
    version: int = typer.Option(1, "--version", "-V", help="Archive version N (normalized/vN)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be read and written."),
    parallel: int = typer.Option(1, "--parallel", "-j", help="Worker processes (connections)."),
    as_json: bool = JsonOpt,
    data_dir: Path | None = DataDirOpt,
    directory: Path = DirOpt,
) -> None:
    """Derive a feed's raw segments into Parquet: deterministic, idempotent, versioned.

    Whole UTC hours; a rerun replaces the same files byte for byte; a new --version is
    written beside the old ones. Corrupted segments are quarantined (reported, and a
    gap record in the archive); the rest proceeds. Exit 1 on bad arguments, 3 when the
    object store is unreachable.
    """
    from ssmd.history.reprocess import ReprocessError, reprocess
    from ssmd.storage import ObjectStore, StoreError

    definition = load_env(env, directory)
    t0, t1 = parse_when(start, "--from"), parse_when(end, "--to")
    root = data_root(definition, data_dir)
    try:
        store = ObjectStore.from_spec(definition.storage, root)
        show = not as_json and sys.stderr.isatty()
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True, disable=not show,
        ) as bars:  # fmt: skip
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    label = "segments" if stage == "derive" else "hours written"
                    tasks[stage] = bars.add_task(label, total=total)
                bars.update(tasks[stage], completed=done, total=total)

            report = reprocess(
                definition, feed, t0, t1, version=version, data_dir=root, store=store,
                dry_run=dry_run, parallel=parallel, progress=progress,
            )  # fmt: skip
    except ReprocessError as exc:
        raise CliError(str(exc), INVALID) from None
    except StoreError as exc:
        raise CliError(str(exc), UNREACHABLE, exc.hint) from None
    out = report.to_dict()
    if as_json:
        print_json(out)
        return
    verb = "would read" if dry_run else "read"
    console.print(
        f"{report.env}/{report.feed} v{report.version} "
        f"[{format_ns(report.from_ns)}, {format_ns(report.to_ns)}): {verb} "
        f"{len(report.segments)} segment(s) over {report.connections} connection(s)"
    )
    if not dry_run:
        console.print(
            f"{report.frames} frames -> {sum(report.records.values())} records "
            f"{report.records}; {len(report.files)} file(s), {out['bytes']} bytes "
            f"in {report.seconds:.2f}s"
        )
        if report.incomplete_hours:
            console.print(
                f"{len(report.incomplete_hours)} hour(s) not complete yet (still open or "
                "not ended): queries also read the stream for them"
            )
    for q in report.quarantined:
        console.print(f"[yellow]quarantined[/] {q['key']}: {q['problem']}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("reprocess")(reprocess_cmd)
