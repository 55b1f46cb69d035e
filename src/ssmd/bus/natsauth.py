"""nats-server authorization for direct NATS clients, from the definition's entitlements.

The gateway checks entitlements per record; a client that reads NATS directly is held
by nats-server's subject permissions instead, so they are derived here from the same
`clients[].entitlements` (DESIGN.md §8). Rules (docs/nats-auth.md has the why):

* live data: `subscribe.allow` = `md.{env}.{feed}.{type}.{symbol}` for feeds × types ×
  symbol globs. `*` and exact symbols are NATS tokens; any other glob (`BTC-*`) cannot be
  a NATS wildcard (those match whole tokens only), so it is enumerated from the feed's
  instruments, and a note says so.
* JetStream: consumers only on the env's streams, and only with an entitled filter,
  because the filter is part of the create subject
  (`$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter}`); pull requests only on the
  consumer named after the client; other clients' names are denied.
* replies: a per-client inbox prefix `_INBOX_{id}` (a shared `_INBOX.>` would let any
  client read every other client's JetStream deliveries).
* `publish.deny` `md.>`: nobody but the `ssmd` service user writes market data.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssmd.bus.subjects import stream_name, token
from ssmd.model.records import RECORD_TYPES

GLOB_CHARS = set("*?[")
SERVICE_USER = "ssmd"


@dataclass
class NatsUser:
    """One user of the rendered config (a client, or the service user)."""

    user: str
    client: str
    subscribe_allow: list[str] = field(default_factory=list)
    publish_allow: list[str] = field(default_factory=list)
    publish_deny: list[str] = field(default_factory=list)
    inbox_prefix: str = ""
    notes: list[str] = field(default_factory=list)
    service: bool = False

    def permissions(self) -> dict[str, Any] | None:
        if self.service:
            return None
        return {
            "publish": {"allow": self.publish_allow, "deny": self.publish_deny},
            "subscribe": {"allow": self.subscribe_allow},
        }


@dataclass
class NatsAuth:
    """The users and the nats-server config text that declares them."""

    env: str
    users: list[NatsUser]
    skipped: dict[str, str]
    """Client id -> why it got no user (revoked, no `stream` scope, nothing entitled)."""

    def config(self, passwords: Mapping[str, str]) -> str:
        """An `authorization { users = [...] }` block for nats-server (`include` it)."""
        lines = [
            f"# ssmd nats-auth render --env {self.env}: generated, do not edit.",
            "authorization {",
            "  users = [",
        ]
        for u in self.users:
            lines.append("    {")
            lines.append(f"      # client {u.client}" + (" (service)" if u.service else ""))
            lines.append(f"      user: {_q(u.user)}")
            lines.append(f"      password: {_q(passwords[u.user])}")
            perms = u.permissions()
            if perms is not None:
                lines.append("      permissions: {")
                pub = perms["publish"]
                allow, deny = _list(pub["allow"]), _list(pub["deny"])
                lines.append(f"        publish: {{ allow: {allow}, deny: {deny} }}")
                lines.append(
                    f"        subscribe: {{ allow: {_list(perms['subscribe']['allow'])} }}"
                )
                lines.append("      }")
            lines.append("    }")
        lines += ["  ]", "}", ""]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "users": [
                {
                    "user": u.user,
                    "client": u.client,
                    "service": u.service,
                    "inbox_prefix": u.inbox_prefix,
                    "permissions": u.permissions(),
                    "notes": u.notes,
                }
                for u in self.users
            ],
            "skipped": self.skipped,
        }


def _q(text: str) -> str:
    return json.dumps(text)


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def normalized_symbols(env: Any) -> dict[str, list[str]]:
    """Feed -> normalized symbols, from each feed's explicit `instruments` (venue symbols
    written `BASE/QUOTE` normalize to `BASE-QUOTE`). Selector feeds have none offline."""
    out: dict[str, list[str]] = {}
    for name, feed in env.feeds.items():
        out[name] = [s.strip().replace("/", "-").upper() for s in feed.instruments]
    return out


def symbol_tokens(glob: str, known: Sequence[str]) -> tuple[list[str], str]:
    """Subject tokens for one symbol glob, and a note when it had to be enumerated."""
    if glob == "*":
        return ["*"], ""
    if not GLOB_CHARS & set(glob):
        exact = {token(glob.upper()), token(glob)}
        return sorted(exact), ""
    hits = sorted({token(s) for s in known if fnmatch.fnmatchcase(s.upper(), glob.upper())})
    note = f"glob {glob!r} is not a NATS wildcard: enumerated {len(hits)} instrument(s)"
    if not known:
        note = f"glob {glob!r} is not a NATS wildcard and the feed lists no instruments: none"
    return hits, note


def client_user(
    env: Any,
    client: Any,
    symbols: Mapping[str, Sequence[str]],
    today: dt.date,
) -> NatsUser:
    """The user for one client: permissions from its unexpired entitlements."""
    name = env.metadata.name
    user = NatsUser(user=client.id, client=client.id, inbox_prefix=f"_INBOX_{token(client.id)}")
    live: list[str] = []
    js_filters: dict[str, list[str]] = {}
    for i, ent in enumerate(client.entitlements):
        if ent.expires is not None and ent.expires <= today:
            user.notes.append(f"entitlements[{i}] expired on {ent.expires}: skipped")
            continue
        if ent.end is not None and ent.end < today:
            user.notes.append(f"entitlements[{i}] window ended on {ent.end}: skipped")
            continue
        windowed = ent.start is not None or ent.end is not None or ent.lookback
        if windowed:
            user.notes.append(
                f"entitlements[{i}] has a history window: live subjects only, no JetStream "
                "(a consumer could replay outside it)"
            )
        feeds = sorted(env.feeds) if "*" in ent.feeds else [f for f in ent.feeds if f in env.feeds]
        types = list(ent.types) or list(RECORD_TYPES)
        for feed in feeds:
            prefix = f"md.{token(name)}.{token(feed)}"
            toks: list[str] = []
            for glob in ent.symbols:
                got, note = symbol_tokens(glob, symbols.get(feed, ()))
                toks += got
                if note:
                    user.notes.append(f"entitlements[{i}] feed {feed}: {note}")
            toks = sorted(set(toks))
            if not toks:
                continue
            if "*" in toks:
                toks = ["*"]
            if "*" in toks and set(types) >= set(RECORD_TYPES):
                subjects = [f"{prefix}.>"]
            else:
                tys = ["*"] if set(types) >= set(RECORD_TYPES) else sorted(set(types))
                subjects = [f"{prefix}.{ty}.{sym}" for ty in tys for sym in toks]
            live += subjects
            if not windowed:
                js_filters.setdefault(feed, []).extend(subjects)
    user.subscribe_allow = [*_dedupe(live), f"{user.inbox_prefix}.>"]
    user.publish_allow, user.publish_deny = _jetstream(env, client, js_filters)
    return user


def _jetstream(
    env: Any, client: Any, filters: Mapping[str, list[str]]
) -> tuple[list[str], list[str]]:
    """Publish allow/deny for the JetStream API a consumer needs, scoped to its streams."""
    name = env.metadata.name
    allow: list[str] = []
    deny = ["md.>"]
    if filters:
        allow.append("$JS.API.INFO")
    others = sorted(c.id for c in env.clients if c.id != client.id)
    for feed in sorted(filters):
        stream = stream_name(name, feed)
        api = "$JS.API"
        allow.append(f"{api}.STREAM.INFO.{stream}")
        for subject in _dedupe(filters[feed]):
            allow.append(f"{api}.CONSUMER.CREATE.{stream}.*.{subject}")
        allow += [
            f"{api}.CONSUMER.INFO.{stream}.*",
            f"{api}.CONSUMER.DELETE.{stream}.{token(client.id)}",
            f"{api}.CONSUMER.MSG.NEXT.{stream}.{token(client.id)}",
            f"$JS.ACK.{stream}.>",
            f"$JS.FC.{stream}.>",
        ]
        deny += [f"{api}.CONSUMER.CREATE.{stream}.{token(o)}.>" for o in others]
    return allow, deny


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def build(
    env: Any,
    *,
    symbols: Mapping[str, Sequence[str]] | None = None,
    today: dt.date | None = None,
    service_user: str = SERVICE_USER,
) -> NatsAuth:
    """Users for every client with the `stream` scope (not revoked), plus the service user
    the ssmd components connect as (no restrictions)."""
    symbols = normalized_symbols(env) if symbols is None else symbols
    today = today or dt.datetime.now(dt.UTC).date()
    users = [NatsUser(user=service_user, client=service_user, service=True)]
    skipped: dict[str, str] = {}
    for client in env.clients:
        if client.revoked:
            skipped[client.id] = "revoked"
            continue
        if "stream" not in client.scopes:
            skipped[client.id] = "no `stream` scope"
            continue
        if client.id == service_user:
            skipped[client.id] = f"the id {service_user!r} is the service user's"
            continue
        user = client_user(env, client, symbols, today)
        if len(user.subscribe_allow) <= 1:
            skipped[client.id] = "nothing entitled"
            continue
        users.append(user)
    return NatsAuth(env=env.metadata.name, users=users, skipped=skipped)
