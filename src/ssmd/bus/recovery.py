"""What a stream already holds: the guard for replays that outlast the duplicate window.

JetStream forgets a Msg-Id once the stream's duplicate window has passed. A replay after
a longer outage (or a connector restart) could then store a second copy of a record whose
ack was lost. Such records are among the last `window` messages each publisher had in
flight when the outage began; nobody publishes during an outage, so they are in the
stream's tail. Reading the Msg-Ids of that tail and skipping them makes the replay exact
whatever the outage length (docs/wire-formats.md, NATS, "Exactly once").
"""

from __future__ import annotations

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError


async def tail_msg_ids(js: JetStreamContext, stream: str, count: int) -> set[str]:
    """Nats-Msg-Id headers of the stream's last `count` messages (deleted ones skipped).

    Use count = publishers on the stream x their window (e.g. shards x 8192).
    """
    info = await js.stream_info(stream)
    last, first = info.state.last_seq, info.state.first_seq
    ids: set[str] = set()
    for seq in range(max(first, last - count + 1), last + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:
            continue
        mid = (msg.headers or {}).get("Nats-Msg-Id")
        if mid:
            ids.add(mid)
    return ids
