"""One refresh of the terminal UI: everything it shows, gathered away from the UI thread.

`gather(sources)` reads the stack state file, Postgres (applied definition, clients,
keys, open feedback, the segment catalog), NATS (component heartbeats, JetStream usage)
and the data dir (bytes per tier, log tails) into one immutable `Snapshot`. It never
raises for a dependency that is down: the part it could not read is empty and the
reason is in `pg_error` / `nats_error`, so the screens can say "unreachable".
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from ssmd.agents import feedback
from ssmd.bus.connection import BusUnreachable
from ssmd.bus.connection import connect as connect_bus
from ssmd.bus.subjects import spec_bucket, token
from ssmd.meta import MetaUnreachable, clients, connect, envs, keys
from ssmd.meta.clients import Client
from ssmd.meta.keys import ApiKey
from ssmd.ops.status import read_status
from ssmd.stack.health import process_states, storage_bytes
from ssmd.stack.process import read_tail
from ssmd.stack.state import read_state

LOG_LINES = 200
ISSUES = 50


class Sources(msgspec.Struct, kw_only=True, frozen=True):
    """Where to read from; an empty URL means "not configured" (shown, not fatal)."""

    env: str
    pg_url: str = ""
    nats_url: str = ""
    data_dir: str = ""


class FeedInfo(msgspec.Struct, kw_only=True, frozen=True):
    """A feed as the applied definition declares it."""

    name: str
    venue: str
    enabled: bool
    shards: int
    instruments: tuple[str, ...]
    selector: str = ""


class Segments(msgspec.Struct, kw_only=True, frozen=True):
    """The segment catalog in four numbers: what shipped and what waits."""

    verified: int = 0
    verified_bytes: int = 0
    pending: int = 0
    quarantined: int = 0


class StreamUsage(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    messages: int
    bytes: int
    consumers: int


class JetStreamUsage(msgspec.Struct, kw_only=True, frozen=True):
    storage_bytes: int = 0
    memory_bytes: int = 0
    streams: tuple[StreamUsage, ...] = ()


class Snapshot(msgspec.Struct, kw_only=True, frozen=True):
    env: str
    taken_ns: int
    pg_error: str = ""
    nats_error: str = ""
    processes: dict[str, bool] = {}
    """Process name → running (empty without a local stack)."""
    components: tuple[dict[str, Any], ...] = ()
    """Heartbeats from KV, as `ssmd.ops.status.read_status` returns them."""
    jetstream: JetStreamUsage = JetStreamUsage()
    version: int | None = None
    feeds: tuple[FeedInfo, ...] = ()
    clients: tuple[Client, ...] = ()
    keys: tuple[ApiKey, ...] = ()
    issues: tuple[dict[str, Any], ...] = ()
    segments: Segments = Segments()
    storage: dict[str, int] = {}
    """Bytes per tier under the data dir (empty when there is no data dir here)."""
    logs: dict[str, str] = {}
    """Log name → its last lines."""


def feeds_of(spec: dict[str, Any]) -> tuple[FeedInfo, ...]:
    """The feeds of an applied definition (its canonical JSON form)."""
    out = []
    for name, feed in sorted((spec.get("feeds") or {}).items()):
        select = feed.get("select")
        out.append(
            FeedInfo(
                name=name,
                venue=str(feed.get("venue", "")),
                enabled=bool(feed.get("enabled", True)),
                shards=int(feed.get("shards", 1)),
                instruments=tuple(feed.get("instruments") or ()),
                selector="" if not select else msgspec.json.encode(select).decode(),
            )
        )
    return tuple(out)


def _segments(conn: psycopg.Connection, env: str) -> Segments:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE verified),"
        " coalesce(sum(size) FILTER (WHERE verified), 0),"
        " count(*) FILTER (WHERE NOT verified AND quarantine_reason IS NULL),"
        " count(*) FILTER (WHERE quarantine_reason IS NOT NULL)"
        " FROM segment_catalog WHERE env = %s",
        (env,),
    ).fetchone()
    assert row is not None
    return Segments(verified=row[0], verified_bytes=int(row[1]), pending=row[2], quarantined=row[3])


def read_postgres(url: str, env: str) -> dict[str, Any]:
    """The Snapshot fields that live in Postgres (read-only: no migration, no writes)."""
    with connect(url, migrate=False, application_name="ssmd-tui") as conn:
        latest = envs.latest(conn, env)
        return {
            "version": None if latest is None else latest.version,
            "feeds": () if latest is None else feeds_of(latest.spec),
            "clients": tuple(clients.list_clients(conn, env, include_inactive=True)),
            "keys": tuple(keys.list_keys(conn, env=env)),
            "issues": tuple(feedback.open_issues(conn, env, limit=ISSUES)),
            "segments": _segments(conn, env),
        }


def _ours(stream: str, env: str) -> bool:
    """Streams of this environment: its market data and its KV buckets."""
    md = f"MD_{token(env).upper()}_".replace("-", "_")
    return stream.startswith(md) or stream.startswith(f"KV_{spec_bucket(env)}")


async def _read_nats(url: str, env: str) -> dict[str, Any]:
    nc = await connect_bus(url, name="ssmd-tui")
    try:
        components = await read_status(nc, env)
        js = nc.jetstream()
        account = await js.account_info()
        streams = [
            StreamUsage(
                name=s.config.name or "",
                messages=s.state.messages,
                bytes=s.state.bytes,
                consumers=s.state.consumer_count,
            )
            for s in await js.streams_info()
            if _ours(s.config.name or "", env)
        ]
    finally:
        await nc.close()
    usage = JetStreamUsage(
        storage_bytes=account.storage,
        memory_bytes=account.memory,
        streams=tuple(sorted(streams, key=lambda s: s.name)),
    )
    return {"components": tuple(components), "jetstream": usage}


def read_nats(url: str, env: str) -> dict[str, Any]:
    """Heartbeats and JetStream usage over one short-lived connection."""
    return asyncio.run(_read_nats(url, env))


def read_files(data_dir: Path) -> dict[str, Any]:
    """Processes (from the state file), bytes per tier and log tails under the data dir."""
    state = read_state(data_dir)
    logs = sorted((data_dir / "logs").glob("*.log")) if data_dir.is_dir() else []
    return {
        "processes": {}
        if state is None
        else {n: p["running"] for n, p in process_states(state).items()},
        "storage": storage_bytes(data_dir) if data_dir.is_dir() else {},
        "logs": {p.stem: read_tail(p, LOG_LINES, max_bytes=64 * 1024) for p in logs},
    }


def gather(sources: Sources) -> Snapshot:
    """One Snapshot; each unreachable part leaves its fields empty and says why."""
    fields: dict[str, Any] = {"env": sources.env, "taken_ns": time.time_ns()}
    if sources.data_dir:
        fields |= read_files(Path(sources.data_dir))
    if not sources.pg_url:
        fields["pg_error"] = "Postgres not configured"
    else:
        try:
            fields |= read_postgres(sources.pg_url, sources.env)
        except (MetaUnreachable, psycopg.Error) as exc:
            fields["pg_error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not sources.nats_url:
        fields["nats_error"] = "NATS not configured"
    else:
        try:
            fields |= read_nats(sources.nats_url, sources.env)
        except BusUnreachable as exc:
            fields["nats_error"] = str(exc)
        except Exception as exc:  # a timeout or a server error mid-read: still a status
            fields["nats_error"] = f"NATS error: {type(exc).__name__}: {exc}"
    return Snapshot(**fields)
