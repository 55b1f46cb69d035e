"""Component heartbeats in KV `ssmd_{env}_status` (DESIGN §6): what `ssmd status` reads.

Every `interval` seconds a component puts one JSON document under
`{component}.{feed}.{shard}`: who (component, feed, shard, pid, host), when (`ts` ns,
`interval_s`), and whatever its `collect()` returns — for a connector: connections and
their states, msgs/s in and out, lag, last gap, clock status. Keys are never deleted:
a reader marks a document `stale` when it is older than 3 intervals, so a dead
connector shows up as dead instead of silently disappearing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import orjson
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from ssmd.bus.subjects import status_bucket

STALE_AFTER_INTERVALS = 3
_KEY_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=")


def status_key(component: str, feed: str = "", shard: str | int = "") -> str:
    """`component.feed.shard` with KV-safe tokens ('-' for an empty part)."""
    parts = (str(p) for p in (component, feed, shard))
    return ".".join("".join(c if c in _KEY_SAFE else "_" for c in p) or "-" for p in parts)


async def status_kv(nc: Client, env: str) -> KeyValue:
    """The status bucket, created on first use (history 1: only the latest matters)."""
    js = nc.jetstream()
    try:
        return await js.key_value(status_bucket(env))
    except BucketNotFoundError:
        return await js.create_key_value(bucket=status_bucket(env), history=1)


class Rates:
    """Per-second rates from cumulative counters, over the time between two updates."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float]] = {}

    def rate(self, name: str, total: float, now: float) -> float:
        prev = self._last.get(name)
        self._last[name] = (now, total)
        if prev is None or now <= prev[0]:
            return 0.0
        return max(0.0, (total - prev[1]) / (now - prev[0]))


CPU_BOUND = 0.9
"""Share of one core at which a (single-threaded) connector is called CPU-bound."""


def bottleneck(cpu: float, lagging: int) -> str:
    """What holds a connector back now, from its CPU share (process CPU seconds per
    second) and how many of its links are catching up: "cpu" — its core is nearly full,
    add a shard (docs/connector.md, Capacity); "nats" — links lag while the CPU has room,
    so acks are what is slow; "" — keeping up."""
    if cpu >= CPU_BOUND:
        return "cpu"
    return "nats" if lagging else ""


class StatusPublisher:
    """Puts `document()` into the status bucket every `interval` seconds until `stop()`."""

    def __init__(
        self,
        nc: Client,
        env: str,
        component: str,
        *,
        feed: str = "",
        shard: str | int = "",
        interval: float = 5.0,
        collect: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.nc = nc
        self.env = env
        self.component = component
        self.feed = feed
        self.shard = shard
        self.interval = interval
        self.collect = collect
        self.key = status_key(component, feed, shard)
        self.published = 0
        self.last_error = ""
        self._stop = asyncio.Event()
        self._kv: KeyValue | None = None

    def document(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "feed": self.feed,
            "shard": str(self.shard),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "ts": time.time_ns(),
            "interval_s": self.interval,
            **self.collect(),
        }

    async def publish_once(self) -> int:
        """One heartbeat now; returns the KV revision."""
        if self._kv is None:
            self._kv = await status_kv(self.nc, self.env)
        revision = await self._kv.put(self.key, orjson.dumps(self.document(), default=str))
        self.published += 1
        return revision

    async def run(self) -> None:
        """Heartbeat until `stop()`. A failed put (NATS down) is remembered and retried on
        the next tick: status must never take the data path down with it."""
        while not self._stop.is_set():
            try:
                await self.publish_once()
                self.last_error = ""
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._kv = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()


async def read_status(nc: Client, env: str, now_ns: int | None = None) -> list[dict[str, Any]]:
    """Every component's latest heartbeat, sorted by key, each with `key`, `age_s` and
    `stale` (older than 3 of its own intervals) added. Empty when nothing ever reported."""
    try:
        kv = await nc.jetstream().key_value(status_bucket(env))
        keys = await kv.keys()
    except (BucketNotFoundError, NotFoundError):
        return []
    except Exception as exc:  # nats-py raises NoKeysError when the bucket is empty
        if type(exc).__name__ == "NoKeysError":
            return []
        raise
    now = time.time_ns() if now_ns is None else now_ns
    out = []
    for key in sorted(keys):
        try:
            entry = await kv.get(key)
        except (NotFoundError, KeyError):
            continue
        if not entry.value:
            continue
        doc = orjson.loads(entry.value)
        age = max(0.0, (now - int(doc.get("ts", 0))) / 1e9)
        interval = float(doc.get("interval_s") or 5.0)
        doc.update(key=key, age_s=round(age, 3), stale=age > STALE_AFTER_INTERVALS * interval)
        out.append(doc)
    return out
