"""Fan-out: shared record sources → per-subscription routes → per-client bounded queues.

Why this shape: a record from NATS is offered to every route of its (feed, type) in one
synchronous pass — filter + entitlement check, a bytes concat, an append. Nothing in that
pass awaits a client, so a client that stops reading can only fill its *own* queue; its
policy (drop-oldest with a `gap` notice, or disconnect) is applied there and the other
clients never notice. Each client's writer task drains its queue into WebSocket frames.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Literal

from ssmd.gateway.protocol import SubId, encode, tag_record
from ssmd.gateway.subscription import Matcher

Policy = Literal["drop_oldest", "disconnect"]
RECORD, HEARTBEAT, CONTROL = 0, 1, 2
MAX_HELD_CONTROLS = 1000


class ClientQueue:
    """One client's bounded outgoing queue and its slow-consumer policy."""

    def __init__(
        self, max_items: int = 10_000, max_bytes: int = 16 << 20, policy: Policy = "drop_oldest"
    ) -> None:
        if policy not in ("drop_oldest", "disconnect"):
            raise ValueError(f"slow-consumer policy is drop_oldest or disconnect, not {policy!r}")
        self.max_items, self.max_bytes, self.policy = max_items, max_bytes, policy
        self.items: deque[tuple[int, SubId | None, bytes]] = deque()
        self.bytes = 0
        self.held: list[bytes] = []
        """Control messages evicted by drop-oldest: sent first, never lost."""
        self.dropped: dict[SubId, int] = {}
        self.dropped_total = 0
        self.overflow: str | None = None
        """Set (with the reason) when the disconnect policy tripped: the writer closes."""
        self.failed = False
        """A route's transform failed: the writer ends that subscription."""
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()
        self.delivered = 0

    def __len__(self) -> int:
        return len(self.items) + len(self.held)

    def push(self, kind: int, sub: SubId | None, data: bytes) -> None:
        if self.overflow is not None:
            return
        self.items.append((kind, sub, data))
        self.bytes += len(data)
        if len(self.items) > self.max_items or self.bytes > self.max_bytes:
            self._full()
        if len(self.items) * 2 >= self.max_items:
            self.room.clear()
        self.ready.set()

    def record(self, sub: SubId, data: bytes) -> None:
        self.push(RECORD, sub, data)

    def control(self, data: bytes) -> None:
        self.push(CONTROL, None, data)

    def _full(self) -> None:
        if self.policy == "disconnect":
            self.overflow = (
                f"slow consumer: {len(self.items)} messages / {self.bytes} bytes queued "
                f"(limit {self.max_items} / {self.max_bytes})"
            )
            self.clear()
            return
        while self.items and (len(self.items) > self.max_items or self.bytes > self.max_bytes):
            kind, sub, data = self.items.popleft()
            self.bytes -= len(data)
            if kind == RECORD and sub is not None:
                self.dropped[sub] = self.dropped.get(sub, 0) + 1
                self.dropped_total += 1
            elif kind == CONTROL:
                self.held.append(data)
                if len(self.held) > MAX_HELD_CONTROLS:
                    self.overflow = "slow consumer: too many unread control messages"

    def take(self, max_items: int = 1000, max_bytes: int = 1 << 20, now_ns: int = 0) -> list[bytes]:
        """The next messages to send, oldest first; a `gap` notice leads after drops."""
        out: list[bytes] = []
        if self.held:
            out.extend(self.held)
            self.held = []
        if self.dropped:
            out.append(
                encode({
                    "op": "gap", "reason": "slow_consumer", "ts": now_ns,
                    "dropped": sum(self.dropped.values()),
                    "ids": [{"id": k, "dropped": v} for k, v in self.dropped.items()],
                })
            )  # fmt: skip
            self.dropped = {}
        size = 0
        items = self.items
        while items and len(out) < max_items and size < max_bytes:
            _, _, data = items.popleft()
            size += len(data)
            out.append(data)
        self.bytes -= size
        self.delivered += len(out)
        if not items:
            self.ready.clear()
        if len(items) * 2 < self.max_items:
            self.room.set()
        return out

    def clear(self) -> None:
        """Drop everything queued (the client is gone, or is being disconnected)."""
        self.items.clear()
        self.bytes = 0

    def forget(self, sub: SubId) -> None:
        """Drop queued records of an unsubscribed id (nothing arrives after `unsubscribed`)."""
        kept = deque(i for i in self.items if not (i[0] == RECORD and i[1] == sub))
        self.bytes = sum(len(i[2]) for i in kept)
        self.items = kept
        self.dropped.pop(sub, None)


Transform = Callable[[bytes], bytes | None]
"""A record's wire JSON → transformed JSON object bytes, or None to skip it."""


class Route:
    """One subscription's interest in one (feed, type): matcher + client queue."""

    __slots__ = (
        "buffer",
        "buffer_dropped_seq",
        "buffer_limit",
        "failed",
        "matcher",
        "prefix",
        "queue",
        "sub_id",
        "transform",
    )

    def __init__(
        self,
        sub_id: SubId,
        prefix: bytes,
        matcher: Matcher,
        queue: ClientQueue,
        transform: Transform | None = None,
    ) -> None:
        self.sub_id, self.prefix, self.matcher, self.queue = sub_id, prefix, matcher, queue
        self.transform = transform
        self.buffer: list[tuple[int, bytes]] | None = None
        """While replaying: live records (stream seq, payload) held for the seam."""
        self.buffer_limit = 200_000
        self.buffer_dropped_seq = 0
        self.failed: str | None = None

    def offer(
        self, rtype: str, symbol: str, data_ns: int, seq: int, payload: bytes, now: int
    ) -> None:
        if not self.matcher.accepts(rtype, symbol, data_ns, now):
            return
        if self.buffer is not None:
            self.buffer.append((seq, payload))
            if len(self.buffer) > self.buffer_limit:
                dropped_seq, _ = self.buffer.pop(0)
                self.buffer_dropped_seq = max(self.buffer_dropped_seq, dropped_seq)
            return
        self.deliver(payload)

    def deliver(self, payload: bytes) -> None:
        if self.failed is not None:
            return
        if self.transform is not None:
            try:
                out = self.transform(payload)
            except Exception as exc:  # a failing transform errors only this subscription
                self.failed = f"transform failed: {exc}"
                self.queue.failed = True
                self.queue.ready.set()  # the writer ends the subscription and says why now
                return
            if out is None:
                return
            payload = out
        data = tag_record(self.prefix, payload)
        if data is not None:
            self.queue.record(self.sub_id, data)


class Hub:
    """Routes by (feed, type); `dispatch` is the one synchronous fan-out pass.

    Routes of subscriptions that name literal symbols are also indexed by symbol, so a
    record is offered only to the routes that can want it (100 single-symbol clients
    cost one check per record, not 100); glob routes see every record of their type.
    """

    def __init__(self) -> None:
        self.globs: dict[tuple[str, str], list[Route]] = {}
        self.literal: dict[tuple[str, str], dict[str, list[Route]]] = {}
        self.dispatched = 0

    def add(
        self, feed: str, rtype: str, route: Route, symbols: tuple[str, ...] | None = None
    ) -> None:
        """`symbols`: the route's literal symbols (upper case), None for a glob route."""
        key = (feed, rtype)
        if symbols is None:
            self.globs[key] = [*self.globs.get(key, ()), route]
            return
        index = self.literal.setdefault(key, {})
        for sym in symbols:
            index[sym] = [*index.get(sym, ()), route]

    def remove(self, feed: str, rtype: str, route: Route) -> None:
        # copy-on-write: a dispatch in progress keeps iterating the old lists
        key = (feed, rtype)
        if key in self.globs:
            self.globs[key] = [r for r in self.globs[key] if r is not route]
        index = self.literal.get(key)
        if index:
            for sym, routes in list(index.items()):
                kept = [r for r in routes if r is not route]
                if kept:
                    index[sym] = kept
                else:
                    del index[sym]

    def count(self, feed: str, rtype: str) -> int:
        key = (feed, rtype)
        ids = {id(r) for r in self.globs.get(key, ())}
        ids |= {id(r) for rs in self.literal.get(key, {}).values() for r in rs}
        return len(ids)

    def dispatch(
        self,
        feed: str,
        rtype: str,
        symbol: str,
        data_ns: int,
        seq: int,
        payload: bytes,
        now: int,
    ) -> None:
        self.dispatched += 1
        key = (feed, rtype)
        for route in self.globs.get(key, ()):
            route.offer(rtype, symbol, data_ns, seq, payload, now)
        index = self.literal.get(key)
        if index:
            for route in index.get(symbol.upper(), ()):
                route.offer(rtype, symbol, data_ns, seq, payload, now)
