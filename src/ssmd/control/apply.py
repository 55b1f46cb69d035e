"""Apply an environment definition (DESIGN.md §4).

validate → store a new immutable version in Postgres (audited, clients and entitlements
mirrored, all in one transaction) → give every instrument the definition names an iid in
the secmaster → publish the iids and then the canonical spec to the NATS KV bucket
`ssmd_{env}` that components watch (a connector reading a new spec finds its iids).
Applying an identical spec stores nothing; it only re-publishes to KV if KV lags behind
Postgres (e.g. NATS was down during the last apply), so apply is always safe to rerun.
Concurrent applies publish one at a time, each the latest version when its turn comes,
so KV never ends on an older version than Postgres holds.
"""

from __future__ import annotations

import asyncio

import msgspec
import psycopg

from ssmd import spec
from ssmd.bus.connection import connect as connect_bus
from ssmd.bus.kv import publish_spec, read_spec
from ssmd.bus.subjects import IIDS_KEY, SPEC_KEY
from ssmd.meta import clients, envs, instruments
from ssmd.spec import Environment
from ssmd.venues.registry import venue_info, wire_symbol

APPLY_LOCK = 0x73736D61
"""First key of the transaction advisory lock (second: hashtext(env)) that orders the
read-latest-and-publish step of concurrent applies."""


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


def iids_of(conn: psycopg.Connection, env: Environment) -> bytes:
    """{feed: {venue symbol: iid}} for the instruments the definition lists, allocating
    the new ones (canonical JSON: the same definition always gives the same bytes)."""
    with conn.transaction():
        iids = {name: instruments.ensure_iids(
                    conn, venue_info(feed.venue).venue,
                    {s: wire_symbol(feed.venue, s) for s in feed.instruments})
                for name, feed in env.feeds.items() if feed.instruments}  # fmt: skip
    return msgspec.json.encode(iids, order="sorted")


async def publish(nats_url: str, env_name: str, canonical: bytes, iids: bytes = b"{}") -> bool:
    """Put the iids, then the spec, into KV unless already there; True if anything was
    written. The order matters: a connector woken by a new spec reads its iids."""
    nc = await connect_bus(nats_url, name="ssmd-apply")
    try:
        written = False
        for key, value in ((IIDS_KEY, iids), (SPEC_KEY, canonical)):
            if await read_spec(nc, env_name, key) != value:
                await publish_spec(nc, env_name, value, key)
                written = True
        return written
    finally:
        await nc.close()


def canonical_of(version: envs.EnvVersion) -> bytes:
    """The bytes components see in KV: the stored document's canonical JSON."""
    return spec.canonical_json(spec.from_json(msgspec.json.encode(version.spec)))


def apply(
    conn: psycopg.Connection, nats_url: str, env: Environment, author: str, message: str = ""
) -> Applied:
    stored = store(conn, env, author, message)
    with conn.transaction():  # the lock is held until the publish is done
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (APPLY_LOCK, stored.env))
        latest = envs.latest(conn, stored.env)
        assert latest is not None
        canonical = canonical_of(latest)
        iids = iids_of(conn, spec.from_json(canonical))
        published = asyncio.run(publish(nats_url, stored.env, canonical, iids))
    return msgspec.structs.replace(stored, published=published)
