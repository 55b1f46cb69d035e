"""One capture process: a feed's shard, from venue sockets to the journal and JetStream.

    venue ──frames──► Link (journal first) ──records──► Outbox ──acked──► JetStream
                        ▲  resync decisions: resubscribe / REST snapshot / reconnect

Start-up refuses when the definition and the streams disagree (`bus.provision`). The
shard's instruments come from the definition by rendezvous hashing (`capture.shard`) and
are split into connections within the venue's per-connection limit. The connector
watches the spec KV bucket and adds or drops instruments without a restart (hot reload),
touching no other instrument's connection. On SIGTERM it stops reading, derives and
publishes everything journaled, waits for the acks and seals the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.js.kv import KeyValue

from ssmd import spec
from ssmd.bus.connection import connect as connect_bus
from ssmd.bus.kv import read_iids
from ssmd.bus.message import record_message
from ssmd.bus.msgid import seq_scope
from ssmd.bus.provision import ensure_streams
from ssmd.bus.publisher import Publisher
from ssmd.bus.subjects import SPEC_KEY, spec_bucket
from ssmd.capture import checkpoint
from ssmd.capture import shard as sharding
from ssmd.capture.clock import ClockMonitor
from ssmd.capture.derive import Deriver, iids_event, stale_event
from ssmd.capture.journal import Journal, SegmentPos
from ssmd.capture.journal_read import iter_segment, list_segments, seal_orphans
from ssmd.capture.link import Link
from ssmd.capture.metrics import AckLatency
from ssmd.capture.outbox import Message, Outbox
from ssmd.capture.rest import RestError, RestFetcher
from ssmd.capture.session import Session, SessionConfig, Wire
from ssmd.capture.staleness import StalenessPolicy
from ssmd.capture.stamp import Stamper
from ssmd.model.records import Gap, Record
from ssmd.ops.status import Rates, StatusPublisher, bottleneck
from ssmd.spec import Environment
from ssmd.venues.base import Resync, SymbolInfo
from ssmd.venues.registry import venue_info, venue_module

log = logging.getLogger("ssmd.connector")


@dataclass(frozen=True)
class Options:
    data_dir: Path
    nats_url: str
    ws_url: str | None = None
    """Override the venue's WebSocket URL (the replay server, a proxy)."""
    rest_url: str | None = None
    """Override the venue's REST base URL (same reasons)."""
    status_interval: float = 2.0
    window: int = 8192
    """Records in flight to JetStream (acks awaited) at most."""
    outbox_limit: int = 2 * 8192
    """Records queued behind the window at most. Past it the links stop deriving as
    frames arrive (reads only journal, which is cheap) and derive from the journal as
    the outbox drains: a backlog of a few windows keeps the publisher busy, while a
    larger one only adds latency and, under overload, lets derivation starve the acks."""
    catch_up_lines: int = 1000
    """Journal lines derived per catch-up step (~30 ms of derivation: reads and acks
    run in between)."""
    drain_timeout: float = 30.0
    staleness: StalenessPolicy = field(default_factory=StalenessPolicy)
    """When an instrument counts as stale (capture/staleness.py)."""


class Connector:
    def __init__(
        self,
        env: Environment,
        feed: str,
        shard: int = 0,
        shards: int | None = None,
        options: Options | None = None,
        symbols: Mapping[str, SymbolInfo] | None = None,
    ) -> None:
        if feed not in env.feeds:
            raise ValueError(f"no feed {feed!r} in environment {env.metadata.name}")
        self.env = env
        self.env_name = env.metadata.name
        self.feed_name = feed
        self.feed = env.feeds[feed]
        self.shard = shard
        self.shards = shards or self.feed.shards
        assert options is not None, "Options are required"
        self.options = options
        self.symbols = symbols
        self.info = venue_info(self.feed.venue)
        self.module = venue_module(self.feed.venue)
        self.per_connection = (
            self.feed.max_instruments_per_connection or self.info.max_instruments_per_connection
        )
        self.scope = seq_scope(self.feed.venue)
        self.links: list[Link] = []
        self._stampers: list[Stamper] = []
        """Each link's records → Messages (indexed like `links`)."""
        self.records = Counter[str]()
        self.records_by_symbol = Counter[str]()
        self.last_gap: dict[str, Any] = {}
        self.clock = ClockMonitor(feed)
        self.fetcher = RestFetcher(base_url=options.rest_url or self.info.rest_url)
        self.outbox: Outbox | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sessions: list[asyncio.Task[None]] = []
        self._fatal: asyncio.Future[BaseException] | None = None
        self._acked: dict[int, SegmentPos] = {}
        self._saved: dict[int, checkpoint.Mark] = {}
        self._saving: asyncio.Future[None] | None = None
        """A checkpoint write in its thread (shutdown waits for it before its own)."""
        self._rates = Rates()
        self._seen_counts: dict[str, int] = {}
        self.iids: dict[str, int] = {}
        """The secmaster's iids of this feed's instruments (KV `iids`, from `env apply`)."""
        self.probe: AckLatency | None = None
        """Set before `run()` to measure frame → ack latency (bench/capture.py)."""

    # -- what this shard captures ---------------------------------------------------------

    def my_symbols(self, env: Environment) -> list[str]:
        feed = env.feeds.get(self.feed_name)
        if feed is None or not feed.enabled:
            return []
        return sharding.assign(feed.instruments, self.shards, feed=self.feed_name)[self.shard]

    # -- the run ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Capture until `stop` is set; raise on a fatal error (journal I/O, bad streams)."""
        loop = asyncio.get_running_loop()
        self._fatal = loop.create_future()
        opts = self.options
        nc = await connect_bus(opts.nats_url, name=f"ssmd-connector-{self.feed_name}")
        try:
            await ensure_streams(nc.jetstream(), self.env)
            publisher = await Publisher(opts.nats_url, window=opts.window).start()
            self.outbox = Outbox(publisher, opts.outbox_limit, self._acked_one, self.probe)
            self._spawn(self.outbox.run())
            sealed = seal_orphans(opts.data_dir, self.env_name, self.feed_name, self.shard)
            if sealed:
                log.warning("sealed %d segment(s) left open by a previous run", len(sealed))
            await self._recover()
            self.iids.update((await read_iids(nc, self.env_name)).get(self.feed_name, {}))
            connections = sharding.split(self.my_symbols(self.env), self.per_connection)
            for symbols in connections:
                self._open_link(symbols)
            self._spawn(self._catch_up_loop())
            self._spawn(self._tick_loop())
            self._spawn(self._watch_spec(nc))
            status = StatusPublisher(
                nc,
                self.env_name,
                "connector",
                feed=self.feed_name,
                shard=self.shard,
                interval=opts.status_interval,
                collect=self.status,
            )
            self._spawn(status.run())
            stopped = loop.create_task(stop.wait())
            await asyncio.wait({stopped, self._fatal}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            status.stop()
            await self._shutdown(publisher)
            if self._fatal.done():
                raise self._fatal.result()
        finally:
            for task in self._tasks:
                task.cancel()
            await nc.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if self._fatal is not None and not self._fatal.done():
            self._fatal.set_result(task.exception())

    def _open_link(self, symbols: list[str]) -> Link:
        opts = self.options
        journal_spec = self.env.storage.journal
        index = len(self.links)
        journal = Journal(
            opts.data_dir,
            self.env_name,
            self.feed_name,
            self.shard,
            index,
            rotate_ns=journal_spec.rotate_every,
            rotate_bytes=journal_spec.rotate_size,
            flush_interval_s=journal_spec.flush_every / 1e9,
            level=journal_spec.compression_level,
        )
        deriver = Deriver(self.feed.venue, self.feed_name, self.symbols)
        link = Link(index, journal, deriver, self._sink)
        self._stampers.append(
            Stamper(self.env_name, self.scope, index, self.records, self.records_by_symbol)
        )
        link.iids = self.iids
        link.staleness.policy = opts.staleness
        channels = self.feed.channels or list(self.info.channels)
        is_heartbeat = getattr(self.module, "is_heartbeat", None)
        wire = Wire.from_module(self.module, channels, self.feed.depth or None, is_heartbeat)
        config = SessionConfig(
            url=opts.ws_url or self.info.ws_url,
            name=f"c{index}",
            heartbeat_every=self.info.heartbeat_interval_s or None,
        )
        link.session = Session(
            config,
            wire,
            symbols,
            on_frames=link.on_frames,
            on_out=link.on_out,
            on_event=link.on_event,
        )
        self.links.append(link)
        self._sessions.append(self._spawn(link.session.run()))
        return link

    # -- records out ------------------------------------------------------------------------

    def _sink(
        self, link: Link, lines: Sequence[list[Record]], positions: Sequence[SegmentPos]
    ) -> None:
        """Records of journal lines derived together (a socket read's frames, or one line)
        → outbox messages (`capture.stamp`, one C call per line where built); their
        latencies and gaps noted; the lines' resyncs acted on."""
        outbox = self.outbox
        assert outbox is not None
        gaps = self.records["gap"]
        latencies: list[int] = []
        messages = self._stampers[link.index].lines(lines, positions, latencies)
        if messages:
            if self.records["gap"] != gaps:  # the stamper counted one: rare, looked for
                for records in lines:
                    for record in records:
                        if type(record) is Gap:
                            self._note_gap(record)
            first = lines[0] or next(records for records in lines if records)
            outbox.put(messages, first[0].ts_recv)
            self.clock.observe_latencies(latencies)
            if outbox.room <= 0:
                for each in self.links:
                    each.lag()
        deriver = link.deriver
        if deriver.normalizer.pending_resyncs:
            for resync in deriver.take_resyncs():
                self._resync(link, resync)

    def _note_gap(self, record: Gap) -> None:
        self.last_gap = {
            "symbol": record.symbol,
            "reason": record.reason,
            "ts": record.ts_recv,
            "detail": record.detail,
        }

    def _resync(self, link: Link, resync: Resync) -> None:
        session = link.session
        assert session is not None
        log.info("resync %s %s: %s", resync.action, ",".join(resync.venue_symbols), resync.reason)
        if resync.action == "reconnect":
            session.reconnect(resync.reason)
        elif resync.action == "resubscribe":
            if resync.frames and session.connected:
                for frame in resync.frames:
                    session.send(frame)
            else:
                session.resubscribe(list(resync.venue_symbols))
        else:
            for symbol in resync.venue_symbols:
                self._spawn(self._fetch_snapshot(link, symbol))

    async def _fetch_snapshot(self, link: Link, symbol: str) -> None:
        url = self.module.snapshot_url(symbol, self.feed.depth or None)
        if url is None:
            return
        if self.options.rest_url:
            url = url.replace(self.info.rest_url, self.options.rest_url.rstrip("/"), 1)
        try:
            response = await self.fetcher.get(url)
        except RestError as exc:
            log.warning("snapshot %s failed: %s; resubscribing", symbol, exc)
            assert link.session is not None
            link.session.resubscribe([symbol])
            return
        link.on_rest(response.url, response.body, response.ts_recv_ns, response.mono_ns)

    # -- crash safety ---------------------------------------------------------------------

    @property
    def _checkpoint_path(self) -> Path:
        return checkpoint.checkpoint_path(
            self.options.data_dir, self.env_name, self.feed_name, self.shard
        )

    def _acked_one(self, message: Message) -> None:
        if message.origin is not None:
            self._acked[message.link] = message.origin

    def _checkpoint_marks(self) -> dict[int, checkpoint.Mark] | None:
        """The links' marks if they moved since the last save, else None."""
        root = self.options.data_dir
        marks = {}
        for link in self.links:
            if link.opened is None:
                continue
            acked = self._acked.get(link.index)
            marks[link.index] = checkpoint.Mark(
                open_key=str(link.opened.path.relative_to(root)),
                open_line=link.opened.line,
                acked_key=str(acked.path.relative_to(root)) if acked else "",
                acked_line=acked.line if acked else -1,
            )
        return marks if marks and marks != self._saved else None

    def _save_checkpoint(self) -> None:
        marks = self._checkpoint_marks()
        if marks is not None:
            checkpoint.save(self._checkpoint_path, checkpoint.Checkpoint(links=marks))
            self._saved = marks

    async def _save_checkpoint_async(self) -> None:
        """The same, with the write + fsync in a thread: on a busy disk an fsync can take
        a second, which on the event loop would stall reads and acks (and time acks out)."""
        marks = self._checkpoint_marks()
        if marks is not None:
            cp = checkpoint.Checkpoint(links=marks)
            self._saving = asyncio.ensure_future(
                asyncio.to_thread(checkpoint.save, self._checkpoint_path, cp)
            )
            await asyncio.shield(self._saving)
            self._saved = marks

    async def _recover(self) -> None:
        """After a crash: publish what the previous run journaled but never got acked."""
        found = checkpoint.load(self._checkpoint_path)
        if found is None:
            return
        root, outbox = self.options.data_dir, self.outbox
        assert outbox is not None
        segments = list_segments(root, self.env_name, self.feed_name, shard=self.shard)
        republished = 0
        for index, mark in found.links.items():
            paths = [s.path for s in segments if s.conn == index]
            start = paths.index(root / mark.open_key)
            acked = (
                (paths.index(root / mark.acked_key), mark.acked_line)
                if mark.acked_key
                else (-1, -1)
            )
            deriver = Deriver(self.feed.venue, self.feed_name, self.symbols)
            for i in range(start, len(paths)):
                first = mark.open_line if i == start else 0
                for n, line in enumerate(iter_segment(paths[i], start_line=first), start=first):
                    records = deriver.line(line.d, line.payload, line.t, line.url)
                    if records and (i, n) > acked:
                        outbox.put(
                            Message(*record_message(self.env_name, r, self.scope)) for r in records
                        )
                        republished += len(records)
                        await outbox.wait_room(1)
        await outbox.drained()
        checkpoint.clear(self._checkpoint_path)
        log.warning("recovered %d record(s) journaled but not acked before a crash", republished)

    # -- background loops ----------------------------------------------------------------

    async def _catch_up_loop(self) -> None:
        """Derive from the journal what the outbox had no room for, once it has room."""
        outbox = self.outbox
        assert outbox is not None
        while True:
            lagging = [link for link in self.links if not link.live]
            if not lagging:
                await asyncio.sleep(0.02)
                continue
            await outbox.wait_room(outbox.limit // 2)
            for link in lagging:
                link.catch_up(max(1, min(outbox.room, self.options.catch_up_lines)))
            await asyncio.sleep(0)

    async def _tick_loop(self) -> None:
        """Journal flushes and time-based rotation for quiet connections; clock samples."""
        every = min(0.5, self.env.storage.journal.flush_every / 2e9)
        last_sample = 0.0
        while True:
            await asyncio.sleep(every)
            for link in self.links:
                link.journal.tick()
            await self._save_checkpoint_async()
            now = time.monotonic()
            self._check_staleness(now)
            if now - last_sample >= 5:
                self.clock.sample()
                last_sample = now

    def _check_staleness(self, now: float) -> None:
        """Per-instrument staleness (capture/staleness.py), off the hot path: data is
        noticed from the per-symbol record counters, heartbeats from the sessions. A stale
        instrument is journaled as an event (so the `gap(stale)` it becomes is derived like
        every other record) and resubscribed where the session knows it by that name."""
        counts = self.records_by_symbol
        for symbol, n in counts.items():
            if self._seen_counts.get(symbol) != n:
                self._seen_counts[symbol] = n
                self._link_of(symbol).staleness.data(symbol, now)
        for link in self.links:
            session = link.session
            if session is None or not session.connected:
                continue
            if session.stats.last_heartbeat_mono:
                link.staleness.heartbeat(session.stats.last_heartbeat_mono / 1e9)
            for change in link.staleness.check(now):
                if not change.stale:
                    continue
                silent_ns = int((now - change.since) * 1e9)
                link.on_event_line(stale_event(change.symbol, silent_ns))
                if session.holds(change.symbol):
                    session.resubscribe([change.symbol])

    def _link_of(self, symbol: str) -> Link:
        for link in self.links:
            if link.session is not None and link.session.holds(symbol):
                return link
        return self.links[0]

    async def _watch_spec(self, nc: Any) -> None:
        """Hot reload: apply instrument changes of newly applied definitions."""
        js = nc.jetstream()
        kv: KeyValue | None = None
        while kv is None:
            try:
                kv = await js.key_value(spec_bucket(self.env_name))
            except Exception:
                await asyncio.sleep(1)
        watcher = await kv.watch(SPEC_KEY)
        async for entry in watcher:
            if entry is None or entry.value is None:
                continue
            try:
                env = spec.from_json(entry.value)
            except spec.InvalidSpec as exc:
                log.error("ignoring an invalid applied definition: %s", exc)
                continue
            self.iids.update((await read_iids(nc, self.env_name)).get(self.feed_name, {}))
            self.reload(env)

    def reload(self, env: Environment) -> None:
        """Subscribe added instruments and drop removed ones; others stay untouched."""
        wanted = set(self.my_symbols(env))
        current = [list(link.session.symbols) if link.session else [] for link in self.links]
        held = {s for conn in current for s in conn}
        added = [s for s in self.my_symbols(env) if s not in held]
        removed = sorted(held - wanted)
        if not added and not removed:
            return
        log.info("hot reload: +%d -%d instruments", len(added), len(removed))
        placed = sharding.place(current, added, removed, self.per_connection)
        for index, symbols in enumerate(placed):
            if index >= len(self.links):
                self._open_link(symbols)
                continue
            session = self.links[index].session
            assert session is not None
            before = set(current[index])
            gone = [s for s in current[index] if s not in symbols]
            new = [s for s in symbols if s not in before]
            if gone:
                session.unsubscribe(gone)
            if new:
                iids = {s: self.iids[s] for s in new if s in self.iids}
                if iids:  # journaled before the subscribe: derivation names them from the start
                    self.links[index].on_event_line(iids_event(iids))
                session.subscribe(new)
        self.env = env

    # -- stopping -------------------------------------------------------------------------

    async def _shutdown(self, publisher: Publisher) -> None:
        for link in self.links:
            if link.session is not None:
                link.session.stop()
        for task in self._sessions:
            with contextlib.suppress(BaseException):
                await task
        outbox = self.outbox
        assert outbox is not None
        deadline = time.monotonic() + self.options.drain_timeout
        try:
            while time.monotonic() < deadline:
                lagging = [link for link in self.links if not link.live]
                for link in lagging:
                    if outbox.room > 0:
                        link.catch_up(outbox.room)
                if not lagging and not outbox.pending:
                    break
                await asyncio.sleep(0.02)
        finally:
            for link in self.links:
                link.close()
                link.journal.close()
            await publisher.close(drain=1.0)
            if self._saving is not None:
                with contextlib.suppress(Exception):
                    await self._saving
        if outbox.pending:
            self._save_checkpoint()
            log.error("stopped with %d records not acked (they are in the journal)", outbox.pending)
        else:
            checkpoint.clear(self._checkpoint_path)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        outbox = self.outbox
        now = time.monotonic()
        frames = sum(link.frames_in for link in self.links)
        acked = outbox.acked if outbox else 0
        cpu = self._rates.rate("cpu", time.process_time(), now)
        return {
            "frames_per_s": round(self._rates.rate("frames", frames, now), 1),
            "records_per_s": round(self._rates.rate("acked", acked, now), 1),
            "cpu": round(cpu, 3),
            "bottleneck": bottleneck(cpu, sum(not link.live for link in self.links)),
            "venue": self.feed.venue,
            "connections": [
                {
                    "index": link.index,
                    "state": link.session.state if link.session else "none",
                    "symbols": len(link.session.symbols) if link.session else 0,
                    "frames_in": link.frames_in,
                    "live": link.live,
                    "last_error": link.session.stats.last_error if link.session else "",
                }
                for link in self.links
            ],
            "frames_in": frames,
            "records": dict(self.records),
            "acked": acked,
            "pending": outbox.pending if outbox else 0,
            "duplicates": outbox.duplicates if outbox else 0,
            "last_gap": self.last_gap,
            "clock": self.clock.status(),
        }
