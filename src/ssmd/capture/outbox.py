"""Between derivation and JetStream: a bounded queue of messages, and those in flight.

Records wait here as NATS messages (subject, payload, Msg-Id). `run()` publishes them in
order through the acked `Publisher`; what JetStream has not acked yet stays in
`unacked` and, after an outage, is sent again first — its deterministic Msg-Id makes a
second copy harmless inside the stream's duplicate window. The queue has a limit: when
it is reached the connector stops deriving and later catches up from the journal, so
memory stays bounded whatever NATS does (DESIGN.md §1.4), and an overloaded connector
spends its time on cheap journal writes and on acks rather than on derivation whose
output would only wait here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice, repeat
from operator import itemgetter
from typing import NamedTuple

from ssmd.bus.publisher import Publisher, Unavailable
from ssmd.capture.journal import SegmentPos
from ssmd.capture.metrics import AckLatency


class Message(NamedTuple):
    subject: str
    payload: bytes
    msg_id: str
    link: int = 0
    """The connection whose journal line it was derived from…"""
    origin: SegmentPos | None = None
    """…and that line (for the crash checkpoint)."""


_message, _link = itemgetter(1), itemgetter(3)
"""(position, message) → message; message → its link."""


class Outbox:
    """`on_acked(message)`: called per batch of acks (one socket read) once for each link,
    with its newest acked message (whose `origin` is None only for what a crash recovery
    re-sent) — all a crash checkpoint needs, for a Python call per link and batch rather
    than per message."""

    def __init__(
        self,
        publisher: Publisher,
        limit: int = 2 * 8192,
        on_acked: Callable[[Message], None] | None = None,
        probe: AckLatency | None = None,
    ) -> None:
        self.publisher = publisher
        self.limit = limit
        self.on_acked = on_acked
        self.queue: deque[Message] = deque()
        self.unacked: deque[tuple[int, Message]] = deque()
        """(position, message) in flight; positions are consecutive."""
        self.put_total = 0
        """Messages ever put (resends after an outage not counted again)."""
        self.peak = 0
        """The longest the queue has been (the bound a connector keeps it to)."""
        self.acked = 0
        self.duplicates = 0
        self.probe = probe
        self.outages = 0
        self._position = publisher.watermark
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        """Set while nothing is queued or in flight (`drained`)."""
        self._idle.set()
        self._parked = False
        """`run()` waits for work (nothing queued, no outage being handled)."""
        self._handoff_due = False
        """A `_handoff` is scheduled for this event-loop turn."""
        self._roomy = asyncio.Event()
        self._room_waiters = 0
        """Callers in `wait_room` (each re-checks its room when woken)."""
        publisher.on_acks = self._on_acks

    @property
    def room(self) -> int:
        """How many more messages may be queued before the connector must stop deriving."""
        return self.limit - len(self.queue)

    async def wait_room(self, room: int) -> None:
        """Until at least `room` more messages may be queued (woken as the publisher
        takes from the queue, not by polling: catching up runs at the acks' pace)."""
        self._room_waiters += 1
        try:
            while self.room < room:
                self._roomy.clear()
                await self._roomy.wait()
        finally:
            self._room_waiters -= 1

    def _note_room(self) -> None:
        if self._room_waiters:
            self._roomy.set()

    @property
    def pending(self) -> int:
        """Queued plus in flight: what is not yet safe in the stream."""
        return len(self.queue) + len(self.unacked)

    def put(self, messages: Iterable[Message], ts_recv: int = 0) -> None:
        """Queue messages in order; `ts_recv`: the frame they came from (latency probe)."""
        queue = self.queue
        before = len(queue)
        queue.extend(messages)
        after = len(queue)
        self.put_total += after - before
        if after > self.peak:
            self.peak = after
        if self.probe is not None and ts_recv:
            self.probe.frame(self.put_total, ts_recv)
        if queue:
            self._idle.clear()
            if not self._handoff_due:
                self._handoff_due = True
                asyncio.get_running_loop().call_soon(self._handoff)

    def _handoff(self) -> None:
        """Once per event-loop turn with puts: what the turn's frames yielded goes to the
        publisher in one batch (one call, one socket write) without waking `run()` — only
        while it is parked, so order and outage handling stay its own."""
        self._handoff_due = False
        if self._parked and self.publisher.state == "connected":
            self._publish_ready()
        if self.queue:
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
                self._parked = True
                try:
                    await self._ready.wait()
                finally:
                    self._parked = False
                continue
            try:
                self._publish_ready()
                if queue:  # the window is full: wait for room, then go on in bulk
                    message = queue[0]
                    position = self._position + 1
                    await pub.publish(message.subject, message.payload, message.msg_id, position)
                    queue.popleft()
                    self._position = position
                    self.unacked.append((position, message))
                    self._note_room()
            except Unavailable:
                self.outages += 1
                await pub.wait_connected()
                self._resend_unacked()
                continue
            await asyncio.sleep(0)  # let reads and acks in between bulks

    def _publish_ready(self) -> None:
        """Hand queued messages to the publisher while its window has room (no awaits:
        one coroutine step per bulk, one publisher call per bulk)."""
        queue, unacked = self.queue, self.unacked
        publish = self.publisher.try_publish_many
        while queue:
            position = self._position + 1
            done = publish(queue, position)
            if not done:
                return
            self._position = position + done - 1
            if done == len(queue):
                unacked.extend(enumerate(queue, position))
                queue.clear()
            else:
                unacked.extend(enumerate(islice(queue, done), position))
                for _ in repeat(None, done):
                    queue.popleft()
            self._note_room()

    async def drained(self) -> None:
        """Until everything put so far is acked (or the caller times out)."""
        while self.pending:
            self._idle.clear()
            await self._idle.wait()

    def _on_acks(self, position: int, duplicates: int) -> None:
        """The publisher's watermark moved to `position`: what is acked leaves `unacked`."""
        unacked = self.unacked
        done = min(len(unacked), position - unacked[0][0] + 1) if unacked else 0
        if done <= 0:
            return
        hook = self.on_acked
        if hook is not None:  # each link's newest, without Python per message
            acked = list(map(_message, islice(unacked, done)))
            newest = dict(zip(map(_link, acked), acked, strict=True))
        if done == len(unacked):
            unacked.clear()
        else:
            for _ in repeat(None, done):
                unacked.popleft()
        self.acked += done
        self.duplicates += duplicates
        if hook is not None:
            for message in newest.values():
                hook(message)
        if self.probe is not None:
            self.probe.acked(self.acked)
        if not unacked and not self.queue:
            self._idle.set()

    def _resend_unacked(self) -> None:
        """After an outage: what was in flight goes first again, in its order."""
        self.queue.extendleft(message for _, message in reversed(self.unacked))
        self.unacked.clear()
        if self.queue:
            self._ready.set()
