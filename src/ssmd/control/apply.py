"""Apply an environment definition (DESIGN.md §4).

validate → store a new immutable version in Postgres (audited, clients and entitlements
mirrored, all in one transaction) → publish the canonical spec to the NATS KV bucket
`ssmd_{env}` that components watch. Applying an identical spec stores nothing; it only
re-publishes to KV if KV lags behind Postgres (e.g. NATS was down during the last apply),
so apply is always safe to rerun.
"""

from __future__ import annotations

import asyncio

import msgspec
import psycopg

from ssmd import spec
from ssmd.bus.connection import connect as connect_bus
from ssmd.bus.kv import publish_spec, read_spec
from ssmd.meta import clients, envs
from ssmd.spec import Environment


class Applied(msgspec.Struct, kw_only=True, frozen=True):
    env: str
    version: int
    sha256: str
    created: bool
    """False when the definition equals the latest stored version."""
    published: bool
    """True when the KV bucket was (re)written."""
    clients: dict[str, list[str]] = {}


def store(conn: psycopg.Connection, env: Environment, author: str, message: str) -> Applied:
    """Store the version and mirror clients in one transaction, committed when it returns."""
    name = env.metadata.name
    with conn.transaction():
        document = msgspec.json.decode(spec.canonical_json(env))
        version, created = envs.add_version(conn, name, document, author, message)
        synced = clients.sync_clients(conn, name, env.clients, author) if created else None
    return Applied(
        env=name,
        version=version.version,
        sha256=version.sha256,
        created=created,
        published=False,
        clients={}
        if synced is None
        else {
            "added": list(synced.added),
            "changed": list(synced.changed),
            "deactivated": list(synced.deactivated),
        },
    )


async def publish(nats_url: str, env_name: str, canonical: bytes) -> bool:
    """Put the spec into KV unless it is already there; True if written."""
    nc = await connect_bus(nats_url, name="ssmd-apply")
    try:
        if await read_spec(nc, env_name) == canonical:
            return False
        await publish_spec(nc, env_name, canonical)
        return True
    finally:
        await nc.close()


def canonical_of(version: envs.EnvVersion) -> bytes:
    """The bytes components see in KV: the stored document's canonical JSON."""
    return spec.canonical_json(spec.from_json(msgspec.json.encode(version.spec)))


def apply(
    conn: psycopg.Connection, nats_url: str, env: Environment, author: str, message: str = ""
) -> Applied:
    stored = store(conn, env, author, message)
    latest = envs.latest(conn, stored.env)
    assert latest is not None
    published = asyncio.run(publish(nats_url, stored.env, canonical_of(latest)))
    return msgspec.structs.replace(stored, published=published)
