"""`ssmd connector`: run one capture process (a feed, or one shard of it)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import typer

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.provision import StreamMismatch
from ssmd.capture.connector import Connector, Options
from ssmd.capture.journal_format import JournalError
from ssmd.capture.metrics import connector_registry
from ssmd.capture.shard import parse_shard
from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import INVALID, UNREACHABLE, CliError
from ssmd.cli.stack import DataDirOpt
from ssmd.ops.logging import setup_logging
from ssmd.ops.metrics import MetricsServer
from ssmd.stack.state import NotConfigured, default_data_dir, resolve_nats_url

IO_FAILURE = 4
"""Exit code: the journal could not be written (disk full, permissions): nothing was dropped."""

log = logging.getLogger("ssmd.connector")


def connector(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    feed: str = typer.Option(..., "--feed", "-f", help="Feed name from the definition."),
    shard: str = typer.Option("0/1", "--shard", help="This process's shard I/N (0-based)."),
    url: str | None = typer.Option(None, "--url", help="Override the venue WebSocket URL."),
    rest_url: str | None = typer.Option(None, "--rest-url", help="Override the venue REST base."),
    nats_url: str | None = typer.Option(
        None, "--nats-url", help="NATS URL [default: the stack's]."
    ),
    metrics_port: int = typer.Option(
        0, "--metrics-port", help="/metrics + /healthz port (0: any)."
    ),
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING, ERROR."),
    data_dir: Path | None = DataDirOpt,
    directory: Path = DirOpt,
) -> None:
    """Capture one feed (or one shard of it): venue → raw journal → JetStream.

    Every frame is journaled before it is parsed; records are published with acks and
    deterministic Msg-Ids. Exit codes: 1 bad definition or streams that disagree with it,
    3 NATS unreachable, 4 the journal cannot be written (disk full, permissions).
    """
    setup_logging(log_level, "connector")
    definition = load_env(env, directory)
    try:
        index, count = parse_shard(shard)
        server = resolve_nats_url(nats_url)
    except (ValueError, NotConfigured) as exc:
        raise CliError(str(exc), INVALID if isinstance(exc, ValueError) else UNREACHABLE) from None
    if feed not in definition.feeds:
        known = ", ".join(sorted(definition.feeds)) or "none"
        raise CliError(
            f"no feed {feed!r} in {definition.metadata.name}", INVALID, f"feeds: {known}"
        )
    root = (data_dir or Path(definition.storage.data_dir) or default_data_dir()).resolve()
    options = Options(data_dir=root, nats_url=server, ws_url=url, rest_url=rest_url)
    capture = Connector(definition, feed, index, count, options)
    try:
        run(_serve(capture, metrics_port))
    except StreamMismatch as exc:
        raise CliError(str(exc), INVALID) from None
    except BusUnreachable as exc:
        raise CliError(str(exc), UNREACHABLE, "start NATS (`ssmd up`) or pass --nats-url") from None
    except JournalError as exc:
        log.critical("journal failure, stopping: %s", exc)
        raise CliError(
            f"journal failure: {exc}", IO_FAILURE, "free space / fix permissions"
        ) from None


GC_YOUNG = 10_000
"""Net new container objects between young collections while a connector runs."""


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run a connector's event loop on uvloop (`ssmd connector` and bench/capture.py).

    The connector is one event loop doing several small socket reads and writes per
    frame (venue, NATS publishes, acks): uvloop's loop costs less per wake-up than
    asyncio's — ~20 % less connector CPU at 10k frames/s, and a lower frame → ack p99
    (bench/RESULTS.md `## capture`, both measured in the same session).

    `gc.freeze()` first: the modules and objects of start-up (typer, the CLI, the venue
    modules) live for ever, so collections need not walk them. Then a young collection
    every `GC_YOUNG` net new containers, not CPython's 700: at 700, the messages in
    flight to JetStream (alive for the ~100 ms their acks take) survive every young pass
    and are walked again by the older generations' — at 71k frames/s 3,750–6,600 passes
    and 0.65–1.1 s of CPU per 10 s (7–11 %), gen-2 pauses up to 17 ms. At 10,000 most of
    them are gone by the next pass: 10–49 passes, 17–165 ms per 10 s, the longest 2.6–7
    ms (bench/capture.py's `gc` figures, bench/RESULTS.md `## capture`). The threshold is
    restored when the loop ends.
    """
    import uvloop

    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, *before[1:])
    try:
        return uvloop.run(main)
    finally:
        gc.set_threshold(*before)


async def _serve(capture: Connector, metrics_port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = await MetricsServer(connector_registry(capture), port=metrics_port).start()
    log.info("metrics at %s", metrics.url)
    try:
        await capture.run(stop)
    finally:
        await metrics.stop()


def register(app: typer.Typer) -> None:
    app.command("connector")(connector)
