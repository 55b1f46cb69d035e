"""The recent window from JetStream: records not yet in the archive.

Reads one subject (`md.{env}.{feed}.{type}.{symbol}`) with an ephemeral pull consumer
starting at a stream time (the server's store timestamp), to the stream's end. A record's
store time is never before its `ts_recv` on one clock, so starting `SLACK_NS` before the
wanted time (for clock skew between the capture host and the NATS server) misses nothing;
the caller filters by the record's own times.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ssmd.bus.connection import BusUnreachable, connect
from ssmd.bus.subjects import stream_name, subject
from ssmd.model.codec import decode
from ssmd.model.records import Record

SLACK_NS = 300 * 10**9
BATCH = 2000


class StreamUnavailable(RuntimeError):
    """NATS could not be reached (the query cannot be seamless)."""


async def _read(
    url: str, env: str, feed: str, kind: str, symbol: str, since_ns: int
) -> list[tuple[str, Record]]:
    try:
        nc = await connect(url, name="ssmd-history", timeout=2)
    except BusUnreachable as exc:
        raise StreamUnavailable(str(exc)) from None
    out: list[tuple[str, Record]] = []
    try:
        js = nc.jetstream()
        name, subj = stream_name(env, feed), subject(env, feed, kind, symbol)
        try:
            info = await js.stream_info(name, subjects_filter=subj)
        except NotFoundError:
            return out
        if not info.state.subjects:
            return out
        start = datetime.fromtimestamp(max(since_ns - SLACK_NS, 0) / 1e9, tz=UTC)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start,  # type: ignore[arg-type]
            ack_policy=AckPolicy.NONE,
            filter_subject=subj,
            inactive_threshold=30.0,
            mem_storage=True,
        )
        sub = await js.pull_subscribe(subj, stream=name, config=config)
        try:
            while True:
                try:
                    msgs = await sub.fetch(BATCH, timeout=1.0)
                except NatsTimeout:
                    break
                pending = 1
                for msg in msgs:
                    mid = (msg.headers or {}).get("Nats-Msg-Id", "")
                    out.append((mid, decode(msg.data)))
                    pending = msg.metadata.num_pending
                if pending == 0:
                    break
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()
    return out


def read_recent(
    url: str, env: str, feed: str, kind: str, symbol: str, since_ns: int
) -> list[tuple[str, Record]]:
    """(Msg-Id, record) of the subject's messages stored since `since_ns` - slack."""
    return asyncio.run(_read(url, env, feed, kind, symbol, since_ns))
