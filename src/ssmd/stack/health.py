"""What the local stack looks like right now: the gathering behind `ssmd status` and the TUI.

One place, so the CLI table and the terminal UI can never disagree: processes from the
state file, the applied definition version from Postgres, component heartbeats from KV
`ssmd_{env}_status`, and the bytes each tier uses under the data dir. Each reader turns
an unreachable dependency into an `error` value instead of raising, because a health
view must show what is down rather than die of it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ssmd.bus.connection import BusUnreachable
from ssmd.bus.connection import connect as connect_bus
from ssmd.meta import MetaUnreachable, connect, envs
from ssmd.ops.status import read_status
from ssmd.stack.process import pid_alive
from ssmd.stack.state import StackState

STORAGE_DIRS = {"journal_bytes": "raw", "objects_bytes": "objects", "postgres_bytes": "postgres"}


def process_states(state: StackState) -> dict[str, dict[str, Any]]:
    """Each process of the state file, with its pid and whether it still runs."""
    return {name: {"pid": pid, "running": pid_alive(pid)} for name, pid in state.pids.items()}


def applied_version(pg_url: str, env: str) -> dict[str, object]:
    """{version, sha256} of the latest applied definition, {} if none, {error} if down."""
    try:
        with connect(pg_url, migrate=False) as conn:
            latest = envs.latest(conn, env)
    except MetaUnreachable as exc:
        return {"error": str(exc)}
    return {} if latest is None else {"version": latest.version, "sha256": latest.sha256}


async def _heartbeats(nats_url: str, env: str) -> list[dict[str, object]]:
    nc = await connect_bus(nats_url, name="ssmd-status")
    try:
        return await read_status(nc, env)
    finally:
        await nc.close()


def heartbeats(nats_url: str, env: str) -> list[dict[str, object]]:
    """Every component's heartbeat; one `{key: nats, error}` row when NATS is down."""
    try:
        return asyncio.run(_heartbeats(nats_url, env))
    except BusUnreachable as exc:
        return [{"key": "nats", "error": str(exc)}]


def bytes_under(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def storage_bytes(root: Path) -> dict[str, int]:
    """Bytes used by the journal, the local object store and Postgres under the data dir."""
    return {name: bytes_under(root / sub) for name, sub in STORAGE_DIRS.items()}


def stack_status(state: StackState, root: Path) -> dict[str, Any]:
    """Everything `ssmd status --json` prints."""
    return {
        "env": state.env,
        "data_dir": state.data_dir,
        "nats_url": state.nats_url,
        "pg_url": state.pg_url,
        "gateway_url": state.gateway_url,
        "processes": process_states(state),
        "components": heartbeats(state.nats_url, state.env),
        "applied": applied_version(state.pg_url, state.env),
        "storage": storage_bytes(root),
    }
