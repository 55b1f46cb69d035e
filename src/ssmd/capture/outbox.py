"""Between derivation and JetStream: a bounded queue of messages, and those in flight.

Records wait here as NATS messages (subject, payload, Msg-Id). `run()` publishes them in
order through the acked `Publisher`; what JetStream has not acked yet stays in
`unacked` and, after an outage, is sent again first — its deterministic Msg-Id makes a
second copy harmless inside the stream's duplicate window. The queue has a limit: when
it is reached the connector stops deriving and later catches up from the journal, so
memory stays bounded whatever NATS does (DESIGN.md §1.4).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ssmd.bus.publisher import Publisher, Unavailable
from ssmd.capture.journal import SegmentPos


class Message(NamedTuple):
    subject: str
    payload: bytes
    msg_id: str
    link: int = 0
    """The connection whose journal line it was derived from…"""
    origin: SegmentPos | None = None
    """…and that line (for the crash checkpoint)."""


class Outbox:
    def __init__(
        self,
        publisher: Publisher,
        limit: int = 50_000,
        on_acked: Callable[[Message], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.limit = limit
        self.on_acked = on_acked
        self.queue: deque[Message] = deque()
        self.unacked: deque[tuple[int, Message]] = deque()
        self.acked = 0
        self.duplicates = 0
        self.outages = 0
        self._position = publisher.watermark
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        publisher.on_ack = self._on_ack

    @property
    def room(self) -> int:
        """How many more messages may be queued before the connector must stop deriving."""
        return self.limit - len(self.queue)

    @property
    def pending(self) -> int:
        """Queued plus in flight: what is not yet safe in the stream."""
        return len(self.queue) + len(self.unacked)

    def put(self, messages: Iterable[Message]) -> None:
        self.queue.extend(messages)
        if self.queue:
            self._idle.clear()
            self._ready.set()

    async def run(self) -> None:
        """Publish until cancelled; rides out outages by waiting and re-sending."""
        pub = self.publisher
        queue = self.queue
        while True:
            if not queue:
                self._ready.clear()
                if not self.unacked:
                    self._idle.set()
                await self._ready.wait()
                continue
            message = queue[0]
            position = self._position + 1
            try:
                await pub.publish(message.subject, message.payload, message.msg_id, position)
            except Unavailable:
                self.outages += 1
                await pub.wait_connected()
                self._resend_unacked()
                continue
            queue.popleft()
            self._position = position
            self.unacked.append((position, message))

    async def drained(self) -> None:
        """Until everything put so far is acked (or the caller times out)."""
        while self.pending:
            self._idle.clear()
            await self._idle.wait()

    def _on_ack(self, position: int, duplicate: bool) -> None:
        unacked = self.unacked
        hook = self.on_acked
        while unacked and unacked[0][0] <= position:
            _, message = unacked.popleft()
            self.acked += 1
            if hook is not None:
                hook(message)
        if duplicate:
            self.duplicates += 1
        if not unacked and not self.queue:
            self._idle.set()

    def _resend_unacked(self) -> None:
        """After an outage: what was in flight goes first again, in its order."""
        self.queue.extendleft(message for _, message in reversed(self.unacked))
        self.unacked.clear()
        if self.queue:
            self._ready.set()
