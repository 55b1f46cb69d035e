"""Cross-field and cross-reference rules over a typed definition. Pure: no I/O.

Each rule yields `Issue`s (a path, a message, a hint); `ssmd.spec.load` places them in
the file. Where a rule needs the venue registry it reads the static `VENUES` table.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import zoneinfo
from collections.abc import Iterator

from ssmd.spec import units
from ssmd.spec.cron import check_cron
from ssmd.spec.errors import Issue
from ssmd.spec.model import Client, Environment, Feed
from ssmd.spec.structure import suggest
from ssmd.venues.registry import VENUES

ALL = "*"


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_zone(zone: str, path: tuple) -> Iterator[Issue]:
    zones = _zones()
    if zones and zone not in zones and zone != "UTC":
        close = suggest(zone, sorted(zones))
        yield Issue(
            path, f"unknown time zone {zone!r}", close or "an IANA name, e.g. Europe/London"
        )


def ref_hint(name: str, known: set[str] | dict, what: str) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known {what}s: {', '.join(sorted(known))}" if known else f"no {what}s are defined"


def _refs(names: list[str], known: set[str], path: tuple, what: str, star: bool) -> Iterator[Issue]:
    for i, name in enumerate(names):
        if name == ALL and star:
            continue
        if name not in known:
            yield Issue(
                (*path, i),
                f"unknown {what} {name!r}",
                ref_hint(name, known, what),
                ref=(f"{what}s", name),
            )


def check_feed(name: str, feed: Feed) -> Iterator[Issue]:
    base = ("feeds", name)
    info = VENUES.get(feed.venue)
    if info is None:
        yield Issue(
            (*base, "venue"), f"unknown venue {feed.venue!r}", suggest(feed.venue, sorted(VENUES))
        )
    else:
        seen_ch: set[str] = set()
        for i, ch in enumerate(feed.channels):
            if ch not in info.channels:
                yield Issue(
                    (*base, "channels", i),
                    f"venue {feed.venue} has no channel {ch!r}",
                    suggest(ch, info.channels),
                )
            elif ch in seen_ch:
                yield Issue((*base, "channels", i), f"duplicate channel {ch!r}")
            seen_ch.add(ch)
    first: dict[str, int] = {}
    for i, symbol in enumerate(feed.instruments):
        if symbol in first:
            yield Issue(
                (*base, "instruments", i),
                f"duplicate instrument {symbol!r}",
                f"already listed as instruments[{first[symbol]}]",
            )
        else:
            first[symbol] = i
    if feed.instruments and feed.select is not None:
        yield Issue((*base, "select"), "a feed takes instruments or select, not both", "remove one")
    if feed.enabled and not feed.instruments and feed.select is None:
        yield Issue(
            base,
            "enabled feed has no instruments",
            "list venue symbols under instruments:, add a select: selector, or set enabled: false",
        )
    if info is None:
        return
    limit = info.max_instruments_per_connection
    per = feed.max_instruments_per_connection or limit
    if per > limit:
        yield Issue(
            (*base, "max_instruments_per_connection"),
            f"{per} exceeds {feed.venue}'s limit of {limit} instruments per connection",
            f"set it to {limit} or less",
        )
        per = limit
    count = len(first) if feed.instruments else (feed.select.limit if feed.select else None) or 0
    needed = max(1, math.ceil(count / per))
    if feed.shards < needed:
        yield Issue(
            (*base, "shards"),
            f"{feed.shards} shard(s) cannot hold {count} instruments at {per} per connection",
            f"set shards: {needed} or more",
        )


def check_storage(env: Environment) -> Iterator[Issue]:
    store = env.storage.object_store
    base = ("storage", "object_store")
    url = store.url
    s3 = url.startswith("s3://")
    if url and not s3 and not url.startswith("file:///"):
        yield Issue(
            (*base, "url"),
            f"unsupported object store URL {url!r}",
            "use s3://bucket/prefix, file:///absolute/path, or leave empty for local files",
        )
    if s3 and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", url):
        yield Issue((*base, "url"), f"invalid S3 bucket in {url!r}", "s3://bucket-name/prefix")
    if not s3:
        for key in ("endpoint", "region", "credentials"):
            if getattr(store, key):
                yield Issue((*base, key), f"{key} only applies to an s3:// object store")
    if store.endpoint and not re.match(r"^https?://", store.endpoint):
        yield Issue((*base, "endpoint"), "endpoint must be an http(s):// URL")
    ret = env.storage.retention

    def longer(a: int, b: int) -> bool:  # 0 = forever
        return b != 0 and (a == 0 or a > b)

    order = "tiers must be ordered journal ≤ raw and normalized ≤ raw: raw is the truth"
    for tier in ("journal", "normalized"):
        value = getattr(ret, tier)
        if longer(value, ret.raw):
            shown = "forever" if value == 0 else units.format_duration(value)
            yield Issue(
                ("storage", "retention", tier),
                f"{tier} retention {shown} outlives raw retention {units.format_duration(ret.raw)}",
                order,
            )


def check_streams(env: Environment) -> Iterator[Issue]:
    s = env.streams
    if s.max_age and s.dedup_window > s.max_age:
        yield Issue(
            ("streams", "dedup_window"),
            f"dedup_window {units.format_duration(s.dedup_window)} exceeds max_age "
            f"{units.format_duration(s.max_age)}",
            "JetStream requires the duplicate window to fit in the stream's max age",
        )


def check_clients(env: Environment) -> Iterator[Issue]:
    feeds, transforms = set(env.feeds), set(env.transforms)
    first: dict[str, int] = {}
    for i, client in enumerate(env.clients):
        base = ("clients", i)
        if client.id in first:
            yield Issue(
                (*base, "id"),
                f"duplicate client id {client.id!r}",
                f"already used by clients[{first[client.id]}]; ids must be unique",
            )
        else:
            first[client.id] = i
        yield from _check_client(client, base, feeds, transforms)


def _check_client(client: Client, base: tuple, feeds: set, transforms: set) -> Iterator[Issue]:
    if not client.scopes:
        yield Issue((*base, "scopes"), "client has no scopes", "e.g. scopes: [read]")
    seen: set[str] = set()
    for j, scope in enumerate(client.scopes):
        if scope in seen:
            yield Issue((*base, "scopes", j), f"duplicate scope {scope!r}")
        seen.add(scope)
    for j, ent in enumerate(client.entitlements):
        path = (*base, "entitlements", j)
        yield from _refs(ent.feeds, feeds, (*path, "feeds"), "feed", star=True)
        if ent.start and ent.end and ent.start > ent.end:
            yield Issue((*path, "end"), f"end {ent.end} is before start {ent.start}")
        for k, glob in enumerate(ent.symbols):
            if not glob.strip():
                yield Issue((*path, "symbols", k), "empty symbol glob", "use '*' for every symbol")
    yield from _refs(client.transforms, transforms, (*base, "transforms"), "transform", star=False)


def check_transforms(env: Environment) -> Iterator[Issue]:
    for name, t in env.transforms.items():
        base = ("transforms", name)
        if bool(t.source.strip()) == bool(t.file):
            yield Issue(
                base, "a transform takes exactly one of source or file", "inline Lua or a .lua file"
            )
        if t.file and (t.file.startswith("/") or ".." in t.file.split("/")):
            yield Issue((*base, "file"), f"{t.file!r} must be a path inside the environments dir")


def check_schedules(env: Environment) -> Iterator[Issue]:
    feeds, calendars = set(env.feeds), set(env.calendars)
    for name, cal in env.calendars.items():
        yield from _check_zone(cal.timezone, ("calendars", name, "timezone"))
        if cal.open >= cal.close:
            yield Issue(
                ("calendars", name, "close"), f"close {cal.close} is not after open {cal.open}"
            )
        if not cal.weekdays:
            yield Issue(
                ("calendars", name, "weekdays"), "a calendar needs at least one trading day"
            )
    for name, sched in env.schedules.items():
        base = ("schedules", name)
        problem = check_cron(sched.cron)
        if problem:
            yield Issue((*base, "cron"), problem, "minute hour day-of-month month day-of-week")
        yield from _check_zone(sched.timezone, (*base, "timezone"))
        if sched.calendar and sched.calendar not in calendars:
            yield Issue(
                (*base, "calendar"),
                f"unknown calendar {sched.calendar!r}",
                ref_hint(sched.calendar, calendars, "calendar"),
                ref=("calendars", sched.calendar),
            )
        yield from _refs(sched.feeds, feeds, (*base, "feeds"), "feed", star=True)


_CHECK_PARAM = {
    "staleness": "max_silence",
    "gap_rate": "max_per_hour",
    "sequence_gaps": "max_per_hour",
    "crossed_book": "max_per_hour",
    "spread": "max_spread_bps",
}


def check_quality(env: Environment) -> Iterator[Issue]:
    feeds = set(env.feeds)
    for name, check in env.quality.checks.items():
        base = ("quality", "checks", name)
        yield from _refs(check.feeds, feeds, (*base, "feeds"), "feed", star=True)
        param = _CHECK_PARAM[check.kind]
        if getattr(check, param) in (None, 0):
            yield Issue(base, f"a {check.kind} check needs {param}", f"add {param}: …")
    if env.quality.open_issues and env.integrations.issue_tracker is None:
        yield Issue(
            ("quality", "open_issues"),
            "open_issues needs an issue tracker",
            "configure integrations.issue_tracker or set open_issues: false",
            ref=("integrations", "issue_tracker"),
        )


def check_integrations(env: Environment) -> Iterator[Issue]:
    feeds = set(env.feeds)
    for name, bridge in env.integrations.bridges.items():
        base = ("integrations", "bridges", name)
        yield from _refs(bridge.feeds, feeds, (*base, "feeds"), "feed", star=True)
        if bridge.kind == "aeron" and not bridge.channel.startswith("aeron:"):
            yield Issue(
                (*base, "channel"),
                "an aeron bridge needs an aeron: channel URI",
                "e.g. aeron:udp?endpoint=239.1.1.1:40123",
            )
        if bridge.kind == "chronicle" and not bridge.path:
            yield Issue(base, "a chronicle bridge needs a queue path", "add path: /data/queues/md")


def check(env: Environment) -> list[Issue]:
    """Every cross-field problem in `env`, in document order of sections."""
    out: list[Issue] = []
    for name, feed in env.feeds.items():
        out.extend(check_feed(name, feed))
    for rule in (
        check_storage,
        check_streams,
        check_clients,
        check_transforms,
        check_schedules,
        check_quality,
        check_integrations,
    ):
        out.extend(rule(env))
    return out
