"""`ssmd replay-server`: serve recordings or a synthetic market in a venue's protocol."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import orjson
import typer

from ssmd.cli.output import INVALID, CliError


def replay_server(
    recording: list[Path] = typer.Option(
        None, "--recording", "-r", help="Recording or raw journal (.jsonl.zst); repeatable."
    ),
    synthetic: str | None = typer.Option(
        None, "--synthetic", help="Generate data instead: sim | kraken-v2 | binance."
    ),
    symbols: str = typer.Option(
        "BTC-USD,ETH-USD,SOL-USD", "--symbols", help="Synthetic symbols, comma-separated."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic tape and the faults."),
    rate: float = typer.Option(0.0, "--rate", help="Synthetic frames/s (0 = as fast as possible)."),
    speed: float = typer.Option(1.0, "--speed", help="Recorded pace multiplier (0 = no pacing)."),
    faults: str = typer.Option("", "--faults", help="e.g. disconnect@1000,drop@0.01,stall@2000:5s"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(0, "--port", "-p", help="Port (0 = pick a free one)."),
    venue: str | None = typer.Option(None, "--venue", help="Protocol of the recording."),
    depth: int | None = typer.Option(None, "--depth", help="Synthetic book depth."),
    start_ns: int | None = typer.Option(None, "--start-ns", help="Synthetic clock start."),
    prebuild: int = typer.Option(0, "--prebuild", help="Pre-encode this many synthetic frames."),
) -> None:
    """Serve recordings or a synthetic market over WebSocket (+ REST) for connectors."""
    from ssmd.replay import FaultSpecError, ReplayServer

    try:
        server = ReplayServer(
            recording or (),
            synthetic=synthetic,
            symbols=[s.strip() for s in symbols.split(",") if s.strip()] if synthetic else (),
            seed=seed, rate=rate, speed=speed, faults=faults, host=host, port=port,
            venue=venue, depth=depth, start_ns=start_ns, prebuild=prebuild,
        )  # fmt: skip
    except FaultSpecError as exc:
        raise CliError(f"--faults: {exc}", INVALID) from None
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc), INVALID) from None
    _run(server)


def _run(server: object) -> None:
    from ssmd.replay import ReplayServer

    assert isinstance(server, ReplayServer)

    async def main() -> None:
        await server.start()
        line = {"event": "listening", "url": server.url, "rest_url": server.rest_url,
                "venue": server.venue, "port": server.port}  # fmt: skip
        sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(main())


def register(app: typer.Typer) -> None:
    app.command("replay-server")(replay_server)
