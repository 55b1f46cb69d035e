"""The applied environment definition in NATS KV: the hot-reload channel for components."""

from __future__ import annotations

import msgspec
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from ssmd.bus.subjects import IIDS_KEY, SPEC_KEY, spec_bucket


async def spec_kv(nc: Client, env: str) -> KeyValue:
    """The spec bucket, created on first use (history 16 so recent versions are inspectable)."""
    js = nc.jetstream()
    try:
        return await js.key_value(spec_bucket(env))
    except BucketNotFoundError:
        return await js.create_key_value(bucket=spec_bucket(env), history=16)


async def publish_spec(nc: Client, env: str, canonical: bytes, key: str = SPEC_KEY) -> int:
    """Put the applied spec (canonical JSON), or another key of the bucket; the revision."""
    kv = await spec_kv(nc, env)
    return await kv.put(key, canonical)


async def read_spec(nc: Client, env: str, key: str = SPEC_KEY) -> bytes | None:
    """The spec (or `key`) components currently see, or None if nothing was put yet."""
    try:
        kv = await nc.jetstream().key_value(spec_bucket(env))
        entry = await kv.get(key)
    except (BucketNotFoundError, NotFoundError):
        return None
    return entry.value


async def read_iids(nc: Client, env: str) -> dict[str, dict[str, int]]:
    """The secmaster's iids for the applied spec's instruments ({} before any apply)."""
    raw = await read_spec(nc, env, IIDS_KEY)
    return {} if raw is None else msgspec.json.decode(raw, type=dict[str, dict[str, int]])
