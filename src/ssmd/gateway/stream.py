"""WebSocket `/v1/stream`: live records, replay-then-live, books, heartbeats (docs/api.md).

The I/O edge around the pure core (`protocol`, `subscription`, `fanout`, `books`):

- `StreamService` (one per gateway process) owns two NATS connections — nats-py for
  JetStream management and replays, `bus.subscriber` for live deliveries — and one
  shared JetStream ordered push consumer per (feed, record type) — created on first
  demand, shared by every client — and the per-feed book caches. Each socket read's
  deliveries reach the source as one batch; it decodes each record's head once and calls
  `Hub.dispatch`, which fans it out synchronously.
  JetStream rather than core NATS: the stream has already dropped the copies redundant
  connectors publish, and every message carries its stream sequence, which is what makes
  the replay→live seam exact. A `from` older than the stream reaches is read from the
  Parquet archive first (`archive_replay`).
- `Session` (one per WebSocket) authenticates, parses client frames, authorizes each
  subscription, and runs one writer task that drains the client's bounded queue into
  frames (JSON Lines, many records per frame under load).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from starlette.websockets import WebSocket  # at run time: FastAPI reads the annotation

from ssmd.bus.connection import connect
from ssmd.bus.msgid import msg_id, record_type
from ssmd.bus.subjects import stream_name, token
from ssmd.bus.subscriber import JsMsg, OrderedConsumer, Subscriber
from ssmd.gateway import archive_replay, protocol
from ssmd.gateway.books import BookCache
from ssmd.gateway.fanout import HEARTBEAT, ClientQueue, Hub, Policy, Route, Transform
from ssmd.gateway.protocol import ProtocolError, SubId, Subscribe
from ssmd.gateway.subscription import Matcher, decide
from ssmd.model.codec import decode, encode
from ssmd.model.records import Book
from ssmd.model.time import now_ns

if TYPE_CHECKING:
    from ssmd.gateway.auth import Principal

log = logging.getLogger("ssmd.gateway.stream")

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SLOW_CONSUMER = 4008
REPLAY_SLACK_NS = 5 * 10**9
"""Replay reads the stream from `from` minus this (clock skew between the capture host
and the NATS server) and keeps records with ts_recv >= from."""


@dataclass
class StreamOptions:
    heartbeat_s: float = 5.0
    queue_items: int = 10_000
    queue_bytes: int = 16 << 20
    policy: Policy = "drop_oldest"
    max_batch: int = 1000
    """Messages per WebSocket frame at most (1 = one JSON message per frame)."""
    max_subscriptions: int = protocol.MAX_SUBSCRIPTIONS
    book_warmup_s: float = 3600.0
    """The book cache is rebuilt from this much of the stream when it starts."""
    replay_batch: int = 1000
    drain_s: float = 2.0
    """On shutdown, how long each client's queue may take to flush before the close."""


class _Head(msgspec.Struct):
    type: str
    symbol: str
    ts_event: int = 0
    ts_recv: int = 0


_head = msgspec.json.Decoder(_Head)


def data_ns(head: _Head) -> int:
    """The time an entitlement's date window is judged on: the venue's, else capture's."""
    return head.ts_event or head.ts_recv


class Source:
    """One shared JetStream consumer of `md.{env}.{feed}.{type}.>`."""

    def __init__(self, service: StreamService, feed: str, rtype: str) -> None:
        self.service, self.feed, self.rtype = service, feed, rtype
        self.ready = asyncio.Event()
        self.consumer: OrderedConsumer | None = None
        self.received = 0
        self.book_cache: BookCache | None = None

    @property
    def subject(self) -> str:
        return f"md.{token(self.service.env)}.{token(self.feed)}.{token(self.rtype)}.>"

    async def start(self, warmup_ns: int = 0, attempts: int = 3) -> None:
        """Create the consumer; a NATS request timeout (a loaded server) is retried."""
        for attempt in range(attempts):
            try:
                return await self._start(warmup_ns)
            except NatsTimeout:
                await self.stop()
                if attempt == attempts - 1:
                    raise
                log.warning("consumer for %s timed out; retrying", self.subject)

    async def _start(self, warmup_ns: int) -> None:
        service = self.service
        if warmup_ns:
            start = datetime.fromtimestamp(max(now_ns() - warmup_ns, 0) / 1e9, tz=UTC)
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=start.isoformat(),  # type: ignore[arg-type]
                filter_subject=self.subject,
            )
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW, filter_subject=self.subject)
        self.consumer = OrderedConsumer(
            service.js, service.subscriber, stream_name(service.env, self.feed), config,
            self._on_batch,
        )  # fmt: skip
        await self.consumer.start()
        if not warmup_ns or self.consumer.num_pending == 0:
            self.ready.set()

    def _on_batch(self, msgs: list[JsMsg]) -> None:
        """One read's deliveries: each record's head decoded once, then fanned out."""
        service, feed, ready, cache = self.service, self.feed, self.ready, self.book_cache
        dispatch, now = service.hub.dispatch, service.now
        self.received += len(msgs)
        for seq, pending, _, data in msgs:
            try:
                head = _head.decode(data)
            except msgspec.DecodeError:
                log.warning("undecodable record on %s (seq %d)", self.subject, seq)
                continue
            if cache is not None:
                self._cache(head, data, seq)
            if ready.is_set():
                dispatch(feed, head.type, head.symbol, data_ns(head), seq, data, now)
            elif pending == 0:  # warm-up done: later records go to the clients
                ready.set()

    def _cache(self, head: _Head, data: bytes, seq: int) -> None:
        cache = self.book_cache
        assert cache is not None
        if head.type == "gap":
            cache.gap(head.symbol, head.ts_recv)
        elif head.type == "book":
            record = decode(data)
            if isinstance(record, Book):
                cache.apply(record, seq)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


class StreamService:
    """Everything `/v1/stream` shares in one gateway process."""

    def __init__(
        self,
        env: str,
        nats_url: str,
        *,
        options: StreamOptions | None = None,
        meter: Any = None,
        auth: Any = None,
        transforms: Any = None,
        feeds: Iterable[str] | None = None,
        history: Callable[[str], Any] | None = None,
    ) -> None:
        self.env, self.nats_url = env, nats_url
        self.options = options or StreamOptions()
        self.meter, self.auth, self.transforms = meter, auth, transforms
        self.feeds = set(feeds) if feeds is not None else None
        self.history = history
        """feed -> `ssmd.history.query.History`: replay older than the stream's retention."""
        self.hub = Hub()
        self.sources: dict[tuple[str, str], Source] = {}
        self.books: dict[str, BookCache] = {}
        self.sessions: set[Session] = set()
        self.now = now_ns()
        self.nc: Any = None
        """nats-py: JetStream management and replays."""
        self.js: Any = None
        self.subscriber: Subscriber | None = None
        """The live deliveries of every source (batches of raw messages, `bus.subscriber`)."""
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self.drain_watch: asyncio.Task[None] | None = None
        self.closing = False

    async def start(self) -> StreamService:
        """Connect on first use. NATS down: BusUnreachable within seconds (that client is
        told `unavailable`, the next one tries again) — never a handshake that hangs.
        Once connected, an outage is ridden out: reconnect forever."""
        async with self._lock:
            if self.nc is None:
                nc = await connect(self.nats_url, name="ssmd-gateway-stream", timeout=3)
                try:
                    subscriber = await Subscriber(self.nats_url, name="ssmd-gateway-live").start()
                except BaseException:
                    await nc.close()
                    raise
                nc.options.update(
                    allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5
                )
                self.nc, self.js, self.subscriber = nc, nc.jetstream(), subscriber
                self._ticker = asyncio.create_task(self._tick())
        return self

    async def source(self, feed: str, rtype: str) -> Source:
        """The shared consumer of (feed, type), started on first use; waits until ready."""
        async with self._lock:
            src = self.sources.get((feed, rtype))
            if src is None:
                src = await self._new_source(feed, rtype)
        await src.ready.wait()
        return src

    async def _new_source(self, feed: str, rtype: str) -> Source:
        """Start the consumer; registered only once started (a failure leaves nothing)."""
        src = Source(self, feed, rtype)
        warmup = 0
        if rtype == "book":
            # the cache needs the book's gaps over the same warm-up window
            cache = BookCache()
            warmup = int(self.options.book_warmup_s * 1e9)
            gap = self.sources.get((feed, "gap"))
            if gap is None:
                gap = Source(self, feed, "gap")
                gap.book_cache = cache
                await gap.start(warmup)
                self.sources[(feed, "gap")] = gap
            else:
                gap.book_cache = cache
                await self._gap_history(feed, cache, warmup)  # order-free: max ts per symbol
            await gap.ready.wait()
            src.book_cache = cache
            self.books[feed] = cache
        await src.start(warmup)
        self.sources[(feed, rtype)] = src
        return src

    async def _gap_history(self, feed: str, cache: BookCache, warmup_ns: int) -> None:
        subj = f"md.{token(self.env)}.{token(feed)}.gap.>"
        start = datetime.fromtimestamp(max(now_ns() - warmup_ns, 0) / 1e9, tz=UTC)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start.isoformat(),  # type: ignore[arg-type]
            ack_policy=AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True,
        )  # fmt: skip
        psub = await self.js.pull_subscribe(subj, stream=stream_name(self.env, feed), config=config)
        try:
            while True:
                try:
                    msgs = await psub.fetch(1000, timeout=0.3)
                except NatsTimeout:
                    return
                for msg in msgs:
                    head = _head.decode(msg.data)
                    cache.gap(head.symbol, head.ts_recv)
                if msgs[-1].metadata.num_pending == 0:
                    return
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _tick(self) -> None:
        """The clock of entitlement checks, heartbeats and key re-validation."""
        last_beat = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.1)
            self.now = now_ns()
            if loop.time() - last_beat >= self.options.heartbeat_s:
                last_beat = loop.time()
                beat = protocol.heartbeat(self.now)
                for session in list(self.sessions):
                    session.queue.push(HEARTBEAT, None, beat)
                    session.revalidate_soon()

    async def close(self, reason: str = "server shutting down") -> None:
        """Drain every client and close it with 1001 and `reason`; then stop NATS."""
        self.closing = True
        await asyncio.gather(
            *(s.shutdown(CLOSE_GOING_AWAY, reason) for s in list(self.sessions)),
            return_exceptions=True,
        )
        if self._ticker is not None:
            self._ticker.cancel()
        for src in list(self.sources.values()):
            await src.stop()
        if self.subscriber is not None:
            await self.subscriber.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
            self.nc = None

    # -- replay -------------------------------------------------------------------------

    async def replay(self, session: Session, sub: Subscription) -> int:
        """Records from `sub.from_ns`: from the archive where the stream no longer reaches
        (archive_replay), then the stream to its end, then the held live ones above the
        last replayed stream sequence: no gap, no duplicate at either seam."""
        assert sub.from_ns is not None
        held_from = await self._held_from(sub.feed)
        sent, seen = 0, frozenset[str]()
        if sub.from_ns < held_from + archive_replay.SEAM_NS:
            sent, seen = await self._replay_archive(session, sub, held_from)
            if sub.closed:
                return sent
        filters = [
            f"md.{token(self.env)}.{token(sub.feed)}.{token(t)}.>" for t in sub.matcher.types
        ]
        start = datetime.fromtimestamp(max(sub.from_ns - REPLAY_SLACK_NS, 0) / 1e9, tz=UTC)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start.isoformat(),  # type: ignore[arg-type]
            ack_policy=AckPolicy.NONE,
            filter_subjects=filters if len(filters) > 1 else None,
            filter_subject=filters[0] if len(filters) == 1 else None,
            inactive_threshold=30.0,
            mem_storage=True,
        )
        psub = await self.js.pull_subscribe(
            filters[0], stream=stream_name(self.env, sub.feed), config=config
        )
        last = 0
        try:
            while True:
                try:
                    msgs = await psub.fetch(self.options.replay_batch, timeout=0.3)
                except NatsTimeout:
                    msgs = []
                pending = 0
                for msg in msgs:
                    md = msg.metadata
                    last, pending = md.sequence.stream, md.num_pending
                    try:
                        head = _head.decode(msg.data)
                    except msgspec.DecodeError:
                        continue
                    if head.ts_recv < sub.from_ns:
                        continue
                    if seen and (msg.headers or {}).get("Nats-Msg-Id") in seen:
                        continue  # sent from the archive
                    if sub.matcher.accepts(head.type, head.symbol, data_ns(head), self.now):
                        sub.deliver(msg.data)
                        sent += 1
                if sub.closed:
                    return sent
                await session.queue.room.wait()
                if pending:
                    continue
                if not msgs and (await psub.consumer_info()).num_pending:
                    continue
                # caught up; live records held beyond the replay were dropped? read on
                if max((r.buffer_dropped_seq for r in sub.routes), default=0) <= last:
                    break
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()
        # the seam: synchronous from here, so no live record slips between the two
        held = sorted((item for r in sub.routes for item in (r.buffer or ())), key=lambda i: i[0])
        for r in sub.routes:
            r.buffer = None
        for seq, payload in held:
            if seq > last:
                sub.deliver(payload)
                sent += 1
        return sent

    async def _held_from(self, feed: str) -> int:
        """Store time (ns) of the oldest message the feed's stream still holds; now when
        it holds none."""
        name = stream_name(self.env, feed)
        info = await self.js.stream_info(name)
        if not info.state.messages:
            return now_ns()
        first = await self.js.get_msg(name, seq=info.state.first_seq)
        if first.time is None:
            return now_ns()
        return int(first.time.timestamp() * 1e6) * 1000

    async def _replay_archive(
        self, session: Session, sub: Subscription, held_from: int
    ) -> tuple[int, frozenset[str]]:
        """What the stream no longer holds, from the archive, hour by hour (a `gap` notice
        for spans not archived either); the Msg-Ids sent near the seam."""
        assert sub.from_ns is not None
        seam = archive_replay.SEAM_NS
        history, covered = None, set[int]()
        if self.history is not None:  # both list the object store: not on the loop
            history = await asyncio.to_thread(self.history, sub.feed)
            covered = set(await asyncio.to_thread(history.markers))
        sent, seen = 0, set()
        for lo, hi, archived in archive_replay.plan(covered, sub.from_ns, held_from + seam):
            if not archived:
                if lo < held_from:  # beyond it the stream has the records
                    notice = archive_replay.gap_notice(sub.id, lo, min(hi, held_from))
                    session.queue.control(notice)
                continue
            assert history is not None
            for at in range(lo, hi, archive_replay.SLICE_NS):
                records = await asyncio.to_thread(
                    archive_replay.archived_records, history, sub.types, at,
                    min(at + archive_replay.SLICE_NS, hi),
                )  # fmt: skip
                for r in records:
                    kind = record_type(r)
                    if sub.matcher.accepts(kind, r.symbol, r.ts_event or r.ts_recv, self.now):
                        sub.deliver(encode(r))
                        sent += 1
                    if r.ts_recv >= held_from - seam:
                        seen.add(msg_id(r, history.scope))
                if sub.closed:
                    return sent, frozenset(seen)
                await session.queue.room.wait()
        return sent, frozenset(seen)


class Subscription:
    """One `subscribe` of one session: its routes in the hub, one per record type."""

    def __init__(
        self,
        req: Subscribe,
        matcher: Matcher,
        queue: ClientQueue,
        transform: Transform | None,
    ) -> None:
        self.id: SubId = req.id
        self.req = req
        self.feed = req.feed
        self.from_ns = req.from_ns
        self.matcher = matcher
        self.queue = queue
        self.prefix = protocol.record_prefix(req.id)
        self.routes = [Route(req.id, self.prefix, matcher, queue, transform) for _ in matcher.types]
        self.types = list(matcher.types)
        self.closed = False
        self.replay_task: asyncio.Task[None] | None = None

    def deliver(self, payload: bytes) -> None:
        self.routes[0].deliver(payload)

    @property
    def failed(self) -> str | None:
        return next((r.failed for r in self.routes if r.failed), None)


class Session:
    """One WebSocket client."""

    def __init__(self, service: StreamService, ws: WebSocket, principal: Principal) -> None:
        self.service, self.ws, self.principal = service, ws, principal
        opts = service.options
        self.queue = ClientQueue(opts.queue_items, opts.queue_bytes, opts.policy)
        self.subs: dict[SubId, Subscription] = {}
        self.closed = asyncio.Event()
        self.close_code = 1000
        self.close_reason = ""
        self._revalidate = False
        self._sent = [0, 0]
        """Messages and bytes sent since they were last handed to the meter."""
        self.token: str | None = None
        self.max_batch = opts.max_batch

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        try:
            await self._reader()
        finally:
            self._drop_all()
            self.queue.clear()  # at once: forgetting 100 full queues record by record stalls
            if not self.closed.is_set():
                self.closed.set()
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer
            self._meter()

    async def shutdown(self, code: int, reason: str) -> None:
        """Flush what is queued (bounded by drain_s), then close with code and reason."""
        self._drop_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.service.options.drain_s
        while len(self.queue) and loop.time() < deadline and not self.closed.is_set():
            await asyncio.sleep(0.01)
        await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.close_code, self.close_reason = code, reason
        with contextlib.suppress(Exception):  # a stuck client must not hold the close up
            await asyncio.wait_for(self.ws.close(code, reason[:120]), 2.0)

    def _drop_all(self) -> None:
        """End every subscription; what is already queued stays (shutdown flushes it)."""
        for sid in list(self.subs):
            self._unsubscribe(sid, forget=False)

    # -- reading ------------------------------------------------------------------------

    async def _reader(self) -> None:
        while not self.closed.is_set():
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                self.closed.set()
                return
            frame = msg.get("text")
            if frame is None:
                frame = msg.get("bytes") or b""
            await self.handle(frame)

    async def handle(self, frame: str | bytes) -> None:
        try:
            message = protocol.parse(frame, now_ns=now_ns())
            if isinstance(message, protocol.Ping):
                self.queue.control(protocol.pong(now_ns(), message.echo))
            elif isinstance(message, protocol.Unsubscribe):
                if message.id not in self.subs:
                    raise ProtocolError(
                        "unknown_id", f"no subscription with id {message.id!r}", message.id
                    )
                self._unsubscribe(message.id)
                self.queue.control(protocol.encode({"op": "unsubscribed", "id": message.id}))
            else:
                await self.subscribe(message)
        except ProtocolError as exc:
            self.queue.control(protocol.error(exc.code, exc.message, exc.sub_id))

    async def subscribe(self, req: Subscribe) -> None:
        service = self.service
        if req.id in self.subs:
            raise ProtocolError("duplicate_id", f"subscription id {req.id!r} is in use", req.id)
        if len(self.subs) >= service.options.max_subscriptions:
            raise ProtocolError(
                "too_many_subscriptions",
                f"at most {service.options.max_subscriptions} subscriptions per connection",
                req.id,
            )
        if service.feeds is not None and req.feed not in service.feeds:
            known = ", ".join(sorted(service.feeds)) or "none"
            raise ProtocolError(
                "unknown_feed", f"no feed {req.feed!r} in this environment (feeds: {known})",
                req.id,
            )  # fmt: skip
        now = now_ns()
        decision = decide(req, self.principal.entitlements, now)
        self._authorize_literals(req, decision.types, now)
        transform = self._transform(req)
        matcher = Matcher(req.feed, decision.types, req.symbols, self.principal.entitlements, now)
        sub = Subscription(req, matcher, self.queue, transform)
        self.subs[req.id] = sub
        try:
            for rtype in sub.types:
                await service.source(req.feed, rtype)
        except Exception as exc:
            self.subs.pop(req.id, None)
            log.warning("cannot start the sources of %s", req, exc_info=True)
            name = stream_name(service.env, req.feed)
            why = (
                f"stream {name} does not exist (no connector has provisioned feed {req.feed!r})"
                if isinstance(exc, NotFoundError)
                else f"cannot read stream {name}: {exc!r}"
            )
            raise ProtocolError("unavailable", why, req.id) from None
        if sub.closed:  # unsubscribed while the sources started
            return
        granted = protocol.Granted(
            req.id, req.feed, tuple(sub.types), req.symbols, decision.entitled_symbols,
            decision.narrowed, req.from_ns, req.transform,
        )  # fmt: skip
        self.queue.control(granted.message())
        if req.from_ns is not None:
            for route in sub.routes:
                route.buffer = []
            self._add_routes(sub)
            sub.replay_task = asyncio.create_task(self._replay(sub))
            return
        # live: the current books, then the routes — in one synchronous step (the seam)
        if "book" in sub.types:
            self._send_books(sub, req)
        self._add_routes(sub)

    def _authorize_literals(self, req: Subscribe, types: Iterable[str], now: int) -> None:
        """A literal symbol must be entitled for each type at the start time (the
        gateway's `authorize`, so the refusal names the condition that failed)."""
        from ssmd.gateway.auth import AuthError, authorize

        at = req.from_ns if req.from_ns is not None else now
        for sym in req.symbols:
            if protocol.has_glob(sym):
                continue
            for rtype in types:
                try:
                    authorize(self.principal, req.feed, sym, rtype, at, now=now)
                except AuthError as exc:
                    raise ProtocolError("forbidden", exc.message, req.id) from None

    def _transform(self, req: Subscribe) -> Transform | None:
        if req.transform is None:
            return None
        allowed = self.principal.client.transforms
        if allowed and req.transform not in allowed:
            raise ProtocolError(
                "forbidden",
                f"transform {req.transform!r} is not one of your transforms ({', '.join(allowed)})",
                req.id,
            )
        transforms = self.service.transforms
        if transforms is None:
            raise ProtocolError("unknown_transform", "this gateway has no transforms", req.id)
        try:
            compiled = transforms.get(req.transform)
        except KeyError as exc:
            raise ProtocolError("unknown_transform", str(exc.args[0]), req.id) from None
        enc = msgspec.json.Encoder()
        dec = msgspec.json.Decoder()

        def apply(payload: bytes) -> bytes | None:
            out = compiled.apply(dec.decode(payload))
            return None if out is None else enc.encode(out)

        return apply

    def _send_books(self, sub: Subscription, req: Subscribe) -> None:
        cache = self.service.books.get(req.feed)
        if cache is None:
            return
        symbols = set(cache.symbols()) | {s for s in req.symbols if not protocol.has_glob(s)}
        for symbol in sorted(symbols):
            if not sub.matcher.windows("book", symbol):
                continue
            encoded = cache.encoded(symbol)
            book = cache.current(symbol)
            if encoded is not None and book is not None:
                if sub.matcher.accepts("book", symbol, book.ts_event or book.ts_recv, now_ns()):
                    sub.deliver(encoded)
                continue
            self.queue.control(
                protocol.encode({
                    "op": "book_unknown", "id": sub.id, "symbol": symbol,
                    "reason": cache.unknown_reason(symbol),
                })
            )  # fmt: skip

    def _add_routes(self, sub: Subscription) -> None:
        symbols = sub.req.symbols
        literal = (
            None
            if any(protocol.has_glob(s) for s in symbols)
            else tuple({s.upper() for s in symbols})
        )
        for rtype, route in zip(sub.types, sub.routes, strict=True):
            self.service.hub.add(sub.feed, rtype, route, literal)

    async def _replay(self, sub: Subscription) -> None:
        try:
            count = await self.service.replay(self, sub)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("replay failed")
            self.queue.control(protocol.error("replay_failed", f"replay failed: {exc}", sub.id))
            self._unsubscribe(sub.id)
            return
        if not sub.closed:
            self.queue.control(protocol.encode({"op": "live", "id": sub.id, "replayed": count}))

    def _unsubscribe(self, sid: SubId, *, forget: bool = True) -> None:
        sub = self.subs.pop(sid, None)
        if sub is None:
            return
        sub.closed = True
        for rtype, route in zip(sub.types, sub.routes, strict=True):
            self.service.hub.remove(sub.feed, rtype, route)
        if sub.replay_task is not None and not sub.replay_task.done():
            sub.replay_task.cancel()
        if forget:
            self.queue.forget(sid)

    # -- writing ------------------------------------------------------------------------

    def revalidate_soon(self) -> None:
        self._revalidate = True
        self.queue.ready.set()

    def _meter(self) -> None:
        """Usage to the meter once per heartbeat and at the end, not per frame (its lock
        and date per call were 5% of a record's cost)."""
        meter = self.service.meter
        messages, size = self._sent
        self._sent = [0, 0]
        if meter is not None and messages:
            meter.record(self.principal, "stream", messages=messages, bytes=size)

    async def _writer(self) -> None:
        queue, ws, sent = self.queue, self.ws, self._sent
        while not self.closed.is_set():
            await queue.ready.wait()
            if self._revalidate:
                self._revalidate = False
                self._meter()
                sent = self._sent
                if not await self._still_valid():
                    return
            if queue.overflow is not None:
                self.queue.clear()
                await self._close(CLOSE_SLOW_CONSUMER, queue.overflow)
                return
            self._check_failed()
            batch = queue.take(self.max_batch, 1 << 20, now_ns())
            if not batch:
                continue
            text = b"\n".join(batch)
            try:
                await ws.send_text(text.decode())
            except Exception:
                self.closed.set()
                return
            sent[0] += len(batch)
            sent[1] += len(text)

    def _check_failed(self) -> None:
        if not self.queue.failed:
            return
        self.queue.failed = False
        for sid, sub in list(self.subs.items()):
            reason = sub.failed
            if reason is not None:  # what it transformed before failing is still sent
                self._unsubscribe(sid, forget=False)
                self.queue.control(protocol.error("transform_failed", reason, sid))

    async def _still_valid(self) -> bool:
        """Re-check the key (revocation within the authenticator's TTL) and refresh the
        entitlements of every subscription; a subscription no longer allowed ends."""
        auth = self.service.auth
        if auth is None or self.token is None:
            return True
        from ssmd.gateway.auth import AuthError

        try:
            principal = await auth.authenticate(self.token)
        except AuthError as exc:
            self.queue.clear()
            await self._send_now(protocol.error(exc.code, exc.message))
            await self._close(CLOSE_UNAUTHENTICATED, exc.message)
            return False
        if "stream" not in principal.scopes and "admin" not in principal.scopes:
            await self._send_now(protocol.error("missing_scope", "the key lost scope 'stream'"))
            await self._close(CLOSE_FORBIDDEN, "the key lost scope 'stream'")
            return False
        if principal.client != self.principal.client:
            self.principal = principal
            self._refresh()
        return True

    def _refresh(self) -> None:
        """Entitlements changed: decide every subscription again; refused ones end."""
        now = now_ns()
        ents = self.principal.entitlements
        for sid, sub in list(self.subs.items()):
            try:
                decision = decide(sub.req, ents, now, live=True)
            except ProtocolError as exc:
                self._unsubscribe(sid)
                self.queue.control(
                    protocol.error("forbidden", f"entitlements changed: {exc.message}", sid)
                )
                continue
            types = [t for t in sub.types if t in decision.types]
            matcher = Matcher(sub.feed, types, sub.req.symbols, ents, now)
            sub.matcher = matcher
            for route in sub.routes:
                route.matcher = matcher

    async def _send_now(self, data: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send_text(data.decode())


# -- the endpoint ------------------------------------------------------------------------


def service_for(gw: Any) -> StreamService:
    """The gateway's StreamService (made on first use, closed with the gateway)."""
    svc = getattr(gw, "stream_service", None)
    if svc is None:
        settings = gw.settings
        if not settings.nats_url:
            raise RuntimeError("the gateway has no NATS (settings.nats_url): no streaming")
        svc = StreamService(
            gw.env,
            settings.nats_url,
            options=getattr(gw, "stream_options", None),
            meter=getattr(gw, "meter", None),
            auth=getattr(gw, "auth", None),
            transforms=_transforms(gw),
            feeds=list(settings.definition.feeds),
            history=gw.history,
        )
        gw.stream_service = svc
        # one watcher per service: the gateway's drain closes every client with 1001
        svc.drain_watch = asyncio.get_running_loop().create_task(_watch_drain(gw, svc))
    return svc


def _transforms(gw: Any) -> Any:
    found = getattr(gw, "transforms", None)
    if found is not None:
        return found
    try:
        from ssmd.gateway.transforms import Transforms

        return Transforms.from_spec(gw.settings.definition, ".")
    except Exception:
        log.exception("transforms unavailable")
        return None


async def stream_endpoint(websocket: WebSocket) -> None:
    """Starlette/FastAPI WebSocket endpoint for `/v1/stream` (`app.state.gw`)."""
    ws = websocket
    from ssmd.gateway.auth import AuthError, require_scope, token_from

    gw = ws.app.state.gw
    await ws.accept()
    try:
        token = token_from(ws.headers, ws.query_params, allow_query=True)
        principal = await gw.auth.authenticate(token)
        require_scope(principal, "stream")
    except AuthError as exc:
        await ws.send_text(protocol.error(exc.code, exc.message).decode())
        code = CLOSE_UNAUTHENTICATED if exc.status == 401 else CLOSE_FORBIDDEN
        await ws.close(code, exc.message[:120])
        return
    if gw.draining.is_set():
        await ws.close(CLOSE_GOING_AWAY, "server shutting down")
        return
    try:
        service = await service_for(gw).start()
    except Exception as exc:
        await ws.send_text(protocol.error("unavailable", f"streaming unavailable: {exc}").decode())
        await ws.close(1011, "streaming unavailable")
        return
    session = Session(service, ws, principal)
    session.token = token
    if ws.query_params.get("batch") == "0":
        session.max_batch = 1
    service.sessions.add(session)
    gauge = getattr(gw, "connections", None)
    if gauge is not None:
        gauge.inc()
    try:
        await session.run()
    finally:
        service.sessions.discard(session)
        if gauge is not None:
            gauge.dec()


async def _watch_drain(gw: Any, service: StreamService) -> None:
    await gw.draining.wait()
    if not service.closing:
        await service.close()
