"""A record as the NATS message the connector publishes: subject, payload, Msg-Id."""

from __future__ import annotations

from ssmd.bus.msgid import SeqScope, msg_id, record_type
from ssmd.bus.subjects import subject
from ssmd.model.codec import encode
from ssmd.model.records import Record

_subjects: dict[tuple[str, str, str, str], str] = {}
"""(env, feed, type, symbol) -> subject: building one costs four regex passes, and a
connector publishes to the same few thousand subjects all day."""
_SUBJECTS_MAX = 100_000


def cached_subject(env: str, feed: str, kind: str, symbol: str) -> str:
    """`subjects.subject`, memoized (bounded: cleared when it would grow past 100k)."""
    key = (env, feed, kind, symbol)
    found = _subjects.get(key)
    if found is None:
        if len(_subjects) >= _SUBJECTS_MAX:
            _subjects.clear()
        found = _subjects[key] = subject(env, feed, kind, symbol)
    return found


def record_message(env: str, record: Record, scope: SeqScope = "unknown") -> tuple[str, bytes, str]:
    """(subject md.{env}.{feed}.{type}.{symbol}, JSON wire bytes, Nats-Msg-Id).

    `scope` is the feed's venue protocol's sequence scope (`msgid.seq_scope(feed.venue)`).
    """
    kind = record_type(record)
    return (
        cached_subject(env, record.feed, kind, record.symbol),
        encode(record),
        msg_id(record, scope),
    )
