"""A record as the NATS message the connector publishes: subject, payload, Msg-Id."""

from __future__ import annotations

from ssmd.bus.msgid import SeqScope, msg_id, record_type
from ssmd.bus.subjects import subject
from ssmd.model.codec import encode
from ssmd.model.records import Record


def record_message(env: str, record: Record, scope: SeqScope = "unknown") -> tuple[str, bytes, str]:
    """(subject md.{env}.{feed}.{type}.{symbol}, JSON wire bytes, Nats-Msg-Id).

    `scope` is the feed's venue protocol's sequence scope (`msgid.seq_scope(feed.venue)`).
    """
    kind = record_type(record)
    return subject(env, record.feed, kind, record.symbol), encode(record), msg_id(record, scope)
