"""`ssmd shipper`: closed raw segments → object store, verified, cataloged, then expired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.connection import connect as nats_connect
from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError, JsonOpt, print_json, print_table
from ssmd.cli.pg import PgUrlOpt, pg_url_or_exit
from ssmd.cli.stack import DataDirOpt
from ssmd.meta import connect
from ssmd.ops.logging import setup_logging
from ssmd.ops.metrics import MetricsServer
from ssmd.ops.status import StatusPublisher
from ssmd.spec import Environment
from ssmd.stack.state import NotConfigured, default_data_dir, resolve_nats_url
from ssmd.storage.service import (
    GaveUp,
    ServiceOptions,
    health,
    ready,
    run_service,
    shipper_registry,
    status_document,
)
from ssmd.storage.shipper import PassReport, Shipper, ShipperBusy
from ssmd.storage.store import ObjectStore, StoreConfigError

log = logging.getLogger("ssmd.shipper")


def data_root(definition: Environment, data_dir: Path | None) -> Path:
    """--data-dir / $SSMD_DATA_DIR, else the definition's storage.data_dir, else ./data."""
    return (data_dir or Path(definition.storage.data_dir) or default_data_dir()).resolve()


def open_store(definition: Environment, root: Path) -> ObjectStore:
    """The environment's object store, or exit 1 naming what is wrong with its config."""
    try:
        return ObjectStore.from_spec(definition.storage, root)
    except StoreConfigError as exc:
        raise CliError(str(exc), INVALID, exc.hint) from None


class RichProgress:
    """One bar per pass: segments and bytes, on stdout when it is a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._task = 0

    def begin(self, segments: int, total_bytes: int) -> None:
        if not segments:
            return
        self._bar = Progress(
            TextColumn("[bold]shipping[/] {task.fields[done]}/{task.fields[count]}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"),
            console=self.console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("ship", total=total_bytes, done=0, count=segments, last="")
        self._done = 0

    def advance(self, key: str, size: int, outcome: str) -> None:
        if self._bar is None:
            return
        self._done += 1
        name = key.rsplit("/", 1)[-1]
        self._bar.update(self._task, advance=size, done=self._done, last=f"{outcome} {name}")

    def end(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def shipper(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    once: bool = typer.Option(
        False, "--once", help="One complete pass (retrying through outages), then exit."
    ),
    interval: float = typer.Option(10.0, "--interval", help="Seconds between passes."),
    backoff_cap: float = typer.Option(
        60.0, "--backoff-cap", help="Longest wait between retries while the store is down."
    ),
    give_up: float = typer.Option(
        600.0, "--give-up", help="--once: exit 3 after this many seconds without success."
    ),
    metrics_port: int = typer.Option(
        0, "--metrics-port", help="/metrics + /healthz port (0: any; -1: none)."
    ),
    nats_url: str | None = typer.Option(
        None, "--nats-url", help="NATS for the status heartbeat [default: the stack's]."
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING, ERROR."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
    data_dir: Path | None = DataDirOpt,
    directory: Path = DirOpt,
) -> None:
    """Ship closed raw segments to the object store, verify them, catalog them.

    Each segment is uploaded to its `raw/…` key, read back and checked (size + sha256)
    against its manifest, recorded in the Postgres segment catalog, and its local copy
    deleted only once verified and older than storage.retention.journal. A segment whose
    bytes do not match its manifest is moved to {data}/quarantine/ and reported.
    Outages: capped backoff, nothing deleted. Exit codes: 1 bad definition or another
    shipper running, 3 Postgres/object store unreachable (--once gave up).
    """
    setup_logging(log_level, "shipper")
    definition = load_env(env, directory)
    root = data_root(definition, data_dir)
    store = open_store(definition, root)
    url = pg_url_or_exit(pg_url)
    name = definition.metadata.name
    ship = Shipper(
        lambda: connect(url, application_name="ssmd-shipper"),
        store,
        name,
        root,
        journal_retention_ns=definition.storage.retention.journal,
    )
    options = ServiceOptions(
        once=once, interval_s=interval, backoff_cap_s=backoff_cap, give_up_s=give_up
    )
    tty = Console(file=sys.stdout)
    progress = RichProgress(tty) if tty.is_terminal and not as_json else None
    try:
        summary = asyncio.run(_serve(ship, options, progress, metrics_port, nats_url))
    except ShipperBusy as exc:
        raise CliError(str(exc), INVALID, "stop the other `ssmd shipper` first") from None
    except GaveUp as exc:
        _print_summary(exc.report, as_json)
        raise CliError(
            f"gave up after {give_up:.0f}s: {exc}", UNREACHABLE, "is the object store up?"
        ) from None
    finally:
        ship.close()
    _print_summary(summary, as_json)


async def _serve(
    ship: Shipper,
    options: ServiceOptions,
    progress: RichProgress | None,
    metrics_port: int,
    nats_url: str | None,
) -> PassReport:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stale = 3 * max(options.interval_s, options.backoff_cap_s) + 600
    metrics = None
    if metrics_port >= 0:
        metrics = MetricsServer(
            shipper_registry(ship),
            port=metrics_port,
            health=lambda: health(ship, stale),
            ready=lambda: ready(ship),
        )
        await metrics.start()
        log.info("metrics at %s", metrics.url)
    nc, publisher, beat = None, None, None
    try:
        nc = await nats_connect(resolve_nats_url(nats_url), name="ssmd-shipper")
        publisher = StatusPublisher(nc, ship.env, "shipper", collect=lambda: status_document(ship))
        beat = asyncio.ensure_future(publisher.run())
    except (NotConfigured, BusUnreachable) as exc:
        log.warning("no status heartbeat (NATS): %s", exc)
    try:
        return await run_service(ship, stop, options, progress)
    finally:
        if publisher is not None and beat is not None:
            publisher.stop()
            await beat
            with contextlib.suppress(Exception):  # last word: final counters, best effort
                await publisher.publish_once()
        if nc is not None:
            await nc.close()
        if metrics is not None:
            await metrics.stop()


def _print_summary(report: PassReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    rows = [
        ["shipped", len(report.shipped)],
        ["already in store", len(report.found)],
        ["quarantined", len(report.quarantined)],
        ["failed (retry)", len(report.failed)],
        ["local copies deleted", len(report.deleted_local)],
        ["bytes uploaded", report.bytes_uploaded],
        ["still pending", report.pending],
    ]
    print_table("shipper", ["what", "count"], rows)
    for key, reason in report.quarantined:
        Console(stderr=True).print(f"[red]quarantined[/] {key}: {reason}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("shipper")(shipper)
