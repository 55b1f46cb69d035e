"""Where the running local stack is: a small JSON file in the data directory.

`ssmd up` writes it; every other command reads it to find Postgres and NATS when no
explicit URL (option or SSMD_PG_URL / SSMD_NATS_URL) is given.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

STATE_FILE = "stack.json"


class StackState(msgspec.Struct, kw_only=True):
    env: str
    data_dir: str
    nats_url: str
    pg_url: str
    s3_url: str = ""
    temporal_address: str = ""
    pids: dict[str, int] = {}
    started_ns: int = 0
    # added for `ssmd down`: the process that owns the stack (`ssmd up`), and every
    # loopback port each server listens on, so a stop can wait until they are free
    owner_pid: int = 0
    ports: dict[str, list[int]] = {}
    # added for the homelab: the gateway `ssmd up` runs (its port is also in `ports`)
    gateway_url: str = ""


def default_data_dir() -> Path:
    return Path(os.environ.get("SSMD_DATA_DIR", "data")).resolve()


def state_path(data_dir: Path | None = None) -> Path:
    return (data_dir or default_data_dir()) / STATE_FILE


def read_state(data_dir: Path | None = None) -> StackState | None:
    path = state_path(data_dir)
    try:
        return msgspec.json.decode(path.read_bytes(), type=StackState)
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def write_state(state: StackState) -> Path:
    path = state_path(Path(state.data_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(state))
    tmp.replace(path)
    return path


def clear_state(data_dir: Path | None = None) -> None:
    state_path(data_dir).unlink(missing_ok=True)


class NotConfigured(LookupError):
    """No URL for a dependency: not given, not in the environment, no running stack."""


def resolve_url(explicit: str | None, env_var: str, field: str, what: str) -> str:
    """explicit option → environment variable → the running local stack's state file."""
    if explicit:
        return explicit
    if os.environ.get(env_var):
        return os.environ[env_var]
    state = read_state()
    if state is not None and getattr(state, field):
        return str(getattr(state, field))
    raise NotConfigured(
        f"no {what} URL: pass --{field.split('_')[0]}-url, set {env_var}, "
        f"or start the local stack with `ssmd up` (looked for {state_path()})"
    )


def resolve_pg_url(explicit: str | None = None) -> str:
    return resolve_url(explicit, "SSMD_PG_URL", "pg_url", "Postgres")


def resolve_nats_url(explicit: str | None = None) -> str:
    return resolve_url(explicit, "SSMD_NATS_URL", "nats_url", "NATS")
