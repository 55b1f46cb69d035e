"""The applied environment definition in NATS KV: the hot-reload channel for components."""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from ssmd.bus.subjects import SPEC_KEY, spec_bucket


async def spec_kv(nc: Client, env: str) -> KeyValue:
    """The spec bucket, created on first use (history 16 so recent versions are inspectable)."""
    js = nc.jetstream()
    try:
        return await js.key_value(spec_bucket(env))
    except BucketNotFoundError:
        return await js.create_key_value(bucket=spec_bucket(env), history=16)


async def publish_spec(nc: Client, env: str, canonical: bytes) -> int:
    """Put the applied spec (canonical JSON); returns the KV revision."""
    kv = await spec_kv(nc, env)
    return await kv.put(SPEC_KEY, canonical)


async def read_spec(nc: Client, env: str) -> bytes | None:
    """The spec components currently see, or None if nothing was applied yet."""
    try:
        kv = await nc.jetstream().key_value(spec_bucket(env))
        entry = await kv.get(SPEC_KEY)
    except (BucketNotFoundError, NotFoundError):
        return None
    return entry.value
