"""Streams and KV buckets from the environment definition (DESIGN.md §6), idempotently.

A stream that exists with other subjects or limits is *refused*, field by field, never
silently used: a stream whose subjects no longer match the publishers' is how a filter
matched nothing for a month. `ensure_streams(update=True)` (`ssmd streams reconcile`)
edits the fields JetStream can change in place; storage and retention cannot change
without deleting the stream (and its messages), which stays a human decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError

from ssmd.bus.subjects import spec_bucket, status_bucket, stream_name, token
from ssmd.spec.model import Environment
from ssmd.spec.units import S, format_duration, format_size

Action = Literal["create", "ok", "update", "refuse"]

UNSAFE_FIELDS = frozenset({"storage", "retention"})
"""Fields JetStream cannot change on an existing stream: delete and recreate."""

DEFAULT_DEDUP_NS = 120 * S  # what the server applies for duplicate_window 0
SPEC_HISTORY = 16  # as ssmd.bus.kv.spec_kv creates it
STATUS_HISTORY = 1  # heartbeats: only the latest matters


@dataclass(frozen=True)
class FieldDiff:
    """One field of an existing stream that is not what the definition wants."""

    field: str
    found: Any
    wanted: Any

    @property
    def safe(self) -> bool:
        return self.field not in UNSAFE_FIELDS

    def __str__(self) -> str:
        found, wanted = _show(self.field, self.found), _show(self.field, self.wanted)
        return f"{self.field}: found {found}, wanted {wanted}"


@dataclass(frozen=True)
class Diff:
    """What provisioning would do with one stream."""

    stream: str
    feed: str
    action: Action
    fields: list[FieldDiff] = field(default_factory=list)


class StreamMismatch(Exception):
    """Existing streams disagree with the definition; the message says how to fix it."""

    def __init__(self, env: str, diffs: list[Diff], *, update: bool) -> None:
        self.diffs = diffs
        lines = []
        for diff in diffs:
            lines.append(
                f"stream {diff.stream} (feed {diff.feed}) disagrees with environment {env}:"
            )
            lines += [f"  {f}" for f in diff.fields]
        safe = sorted({f.field for d in diffs for f in d.fields if f.safe})
        unsafe = sorted({f.field for d in diffs for f in d.fields if not f.safe})
        hints = []
        if safe and not update:
            hints.append(
                f"`ssmd streams reconcile --env {env}` updates {', '.join(safe)} in place "
                "(messages are kept)"
            )
        if unsafe:
            names = " ".join(d.stream for d in diffs if any(not f.safe for f in d.fields))
            hints.append(
                f"{', '.join(unsafe)} cannot change in place: delete the stream "
                f"(`nats stream rm {names}`; its messages are lost) and run "
                f"`ssmd streams apply --env {env}`"
            )
        self.hint = "; ".join(hints) or "fix the environment definition to match"
        super().__init__("\n".join(lines) + f"\nfix: {self.hint}")


def _show(name: str, value: Any) -> str:
    if name in ("max_age", "duplicate_window") and isinstance(value, int):
        return format_duration(value) if value else "0 (unlimited)"
    if name == "max_bytes" and isinstance(value, int):
        return format_size(value) if value >= 0 else "-1 (unlimited)"
    return repr(value)


def wanted_config(env: Environment, feed: str) -> StreamConfig:
    """The stream config of one feed: names, subjects and limits from the definition."""
    s = env.streams
    name = env.metadata.name
    return StreamConfig(
        name=stream_name(name, feed),
        subjects=[f"md.{token(name)}.{token(feed)}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType(s.storage),
        discard=DiscardPolicy(s.discard),
        max_age=s.max_age / S,
        max_bytes=s.max_bytes or -1,
        max_msgs=-1,
        max_msgs_per_subject=-1,
        num_replicas=s.replicas,
        duplicate_window=(s.dedup_window or DEFAULT_DEDUP_NS) / S,
    )


def _comparable(config: StreamConfig) -> dict[str, Any]:
    """The compared fields in exact units (ns, bytes, strings), unlimited = 0 / -1."""

    def ns(seconds: float | None) -> int:
        return round((seconds or 0) * S)

    def enum(value: Any) -> str:
        return str(getattr(value, "value", value))

    return {
        "subjects": sorted(config.subjects or []),
        "storage": enum(config.storage or StorageType.FILE),
        "retention": enum(config.retention or RetentionPolicy.LIMITS),
        "discard": enum(config.discard or DiscardPolicy.OLD),
        "max_age": ns(config.max_age),
        "max_bytes": config.max_bytes if config.max_bytes not in (None, 0) else -1,
        "max_msgs": config.max_msgs if config.max_msgs not in (None, 0) else -1,
        "max_msgs_per_subject": config.max_msgs_per_subject
        if config.max_msgs_per_subject not in (None, 0)
        else -1,
        "num_replicas": config.num_replicas or 1,
        "duplicate_window": ns(config.duplicate_window) or DEFAULT_DEDUP_NS,
    }


def compare(found: StreamConfig, wanted: StreamConfig) -> list[FieldDiff]:
    """Every compared field that differs, in a stable order."""
    a, b = _comparable(found), _comparable(wanted)
    return [FieldDiff(k, a[k], b[k]) for k in b if a[k] != b[k]]


def enabled_feeds(env: Environment) -> list[str]:
    return sorted(name for name, feed in env.feeds.items() if feed.enabled)


async def plan_streams(js: JetStreamContext, env: Environment) -> list[Diff]:
    """One Diff per enabled feed: create, ok, or the differing fields (action refuse)."""
    out = []
    for feed in enabled_feeds(env):
        wanted = wanted_config(env, feed)
        try:
            info = await js.stream_info(wanted.name)  # type: ignore[arg-type]
        except NotFoundError:
            out.append(Diff(wanted.name, feed, "create"))  # type: ignore[arg-type]
            continue
        fields = compare(info.config, wanted)
        out.append(Diff(wanted.name, feed, "refuse" if fields else "ok", fields))  # type: ignore[arg-type]
    return out


async def ensure_streams(
    js: JetStreamContext, env: Environment, *, update: bool = False
) -> list[Diff]:
    """Create missing streams and the KV buckets; refuse (StreamMismatch) on any
    difference, or with update=True edit the safe fields (still refusing unsafe ones).
    Nothing is created or changed when something is refused. Returns what was done."""
    diffs = await plan_streams(js, env)
    name = env.metadata.name
    refused = [d for d in diffs if d.action == "refuse" and (not update or not _all_safe(d))]
    if refused:
        raise StreamMismatch(name, refused, update=update)
    done = []
    for diff in diffs:
        config = wanted_config(env, diff.feed)
        if diff.action == "create":
            await js.add_stream(config)
        elif diff.action == "refuse":
            await js.update_stream(config)
            diff = Diff(diff.stream, diff.feed, "update", diff.fields)
        done.append(diff)
    await ensure_buckets(js, name)
    return done


def _all_safe(diff: Diff) -> bool:
    return all(f.safe for f in diff.fields)


async def ensure_buckets(js: JetStreamContext, env: str) -> list[str]:
    """The spec and status KV buckets; returns the names it had to create."""
    created = []
    for bucket, history in ((spec_bucket(env), SPEC_HISTORY), (status_bucket(env), STATUS_HISTORY)):
        try:
            await js.key_value(bucket)
        except BucketNotFoundError:
            await js.create_key_value(bucket=bucket, history=history)
            created.append(bucket)
    return created
