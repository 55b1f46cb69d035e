"""Edits of an environment file that keep comments, key order and indentation.

Every edit: parse the file round-trip, change the tree, dump it, validate the new text in
full, and only if it is valid replace the file atomically (temp file + rename). A refused
edit raises `InvalidSpec` (the result would be invalid) or `EditError` (a precondition,
e.g. an unknown feed) and leaves the file byte-for-byte untouched.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ssmd.spec.errors import InvalidSpec, SpecError
from ssmd.spec.load import check_text
from ssmd.spec.model import Environment
from ssmd.spec.yamlsrc import Positions, new_yaml, parse
from ssmd.venues.registry import VENUES

PER_ENVIRONMENT = ("metadata", "storage", "deploy", "integrations", "clients")
"""Top-level sections `promote` never copies: they describe where and for whom B runs."""
PER_ENVIRONMENT_KEYS = (("streams", "replicas"),)
"""Keys inside promoted sections that stay B's (cluster size differs per environment)."""
PROMOTED = ("feeds", "streams", "transforms", "calendars", "schedules", "quality")


class EditError(Exception):
    """The edit makes no sense on this file (unknown feed, existing id…); nothing written."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, sequence dash offset) as the file is written; (2, 2) if unknown."""
    mapping: int | None = None
    offset: int | None = None
    opener: int | None = None  # indent of the last key whose value starts on the next line
    for line in text.splitlines():
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        indent = len(line) - len(body)
        if opener is not None and indent >= opener:
            if body.startswith("- ") or body == "-":
                offset = indent - opener if offset is None else offset
            elif indent > opener and mapping is None:
                mapping = indent - opener
        key_indent = indent + 2 if body.startswith("- ") else indent
        opener = key_indent if body.split("#")[0].rstrip().endswith(":") else None
        if mapping is not None and offset is not None:
            break
    return mapping or 2, 2 if offset is None else offset


def dump(tree: Any, original: str) -> str:
    mapping, offset = guess_indent(original)
    yaml = new_yaml()
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` in one rename, so readers see the old or the new file, never half."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _replace_empty(node: Any) -> None:
    """Swap emptied containers for fresh ones: ruamel emits invalid YAML for an empty
    mapping that still carries its old comments (`feeds:\n  # c\n{}`)."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in list(items):
        if isinstance(child, CommentedMap | CommentedSeq) and not child:
            fresh = CommentedMap() if isinstance(child, CommentedMap) else CommentedSeq()
            fresh.fa.set_flow_style()
            node[key] = fresh
        else:
            _replace_empty(child)


def edit_text(
    text: str, file: str, change: Callable[[CommentedMap], None]
) -> tuple[str, Environment]:
    """Apply `change` to the tree of `text`; the new text and its definition, if valid."""
    tree, errors = parse(text, file)
    if errors:
        raise InvalidSpec(errors)
    if not isinstance(tree, CommentedMap):
        raise EditError(f"{file} is not a mapping", "fix the file by hand first")
    change(tree)
    _replace_empty(tree)
    new_text = dump(tree, text)
    env, errors = check_text(new_text, file)
    if errors or env is None:
        raise InvalidSpec(_in_original(errors, text, file))
    return new_text, env


def _in_original(errors: list[SpecError], text: str, file: str) -> list[SpecError]:
    """Point a refused edit's errors at the file as it is (the new text was never written);
    a path the edit created resolves to its nearest existing parent."""
    tree, _ = parse(text, file)
    positions = Positions(tree)
    out = []
    for e in errors:
        path = _parse_path(e.path)
        if path is None:
            out.append(e)
            continue
        line, col = positions.at(path)
        out.append(msgspec.structs.replace(e, line=line, col=col))
    return out


def _parse_path(rendered: str) -> tuple | None:
    """Inverse of render_path for the names the model allows; None for '<root>' etc."""
    if rendered.startswith("<"):
        return None
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]|\['[^']*'\]", rendered):
        if part.startswith("[") and part[1:-1].isdigit():
            out.append(int(part[1:-1]))
        elif part.startswith("['"):
            out.append(part[2:-2])
        else:
            out.append(part)
    return tuple(out)


def edit_file(path: str | Path, change: Callable[[CommentedMap], None]) -> Environment:
    """Edit, validate, write atomically; the file is untouched unless the result is valid."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise EditError(f"cannot read {p}: {exc.strerror or exc}") from None
    new_text, env = edit_text(text, str(p), change)
    if new_text != text:
        write_atomic(p, new_text)
    return env


# -- tree helpers ---------------------------------------------------------------------


def _section(tree: CommentedMap, key: str, factory: type = CommentedMap) -> Any:
    value = tree.get(key)
    if value is None:
        value = factory()
        tree[key] = value
    elif not isinstance(value, factory):
        raise EditError(f"{key} is not a {'mapping' if factory is CommentedMap else 'list'}")
    return value


def _flow(items: Iterable[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _feed(tree: CommentedMap, name: str) -> CommentedMap:
    feeds = tree.get("feeds") or {}
    if name not in feeds:
        known = ", ".join(feeds) or "none"
        raise EditError(f"no feed named {name!r}", f"feeds in this environment: {known}")
    feed = feeds[name]
    if not isinstance(feed, CommentedMap):
        raise EditError(f"feeds.{name} is not a mapping")
    return feed


def _client(tree: CommentedMap, client_id: str) -> tuple[CommentedSeq, int]:
    clients = tree.get("clients") or []
    for i, c in enumerate(clients):
        if isinstance(c, dict) and c.get("id") == client_id:
            return clients, i
    known = ", ".join(str(c.get("id")) for c in clients if isinstance(c, dict)) or "none"
    raise EditError(f"no client with id {client_id!r}", f"clients in this environment: {known}")


def _date_or_text(value: str) -> dt.date | str:
    """Dates are written as YAML dates (unquoted); anything else is left for validation."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return value


def min_shards(venue: str, count: int, per_connection: int | None = None) -> int:
    """Fewest shards that hold `count` instruments at the venue's per-connection limit."""
    info = VENUES.get(venue)
    limit = info.max_instruments_per_connection if info else 1
    return max(1, math.ceil(count / (per_connection or limit)))


# -- feeds ------------------------------------------------------------------------------


def add_feed(
    path: str | Path,
    name: str,
    *,
    venue: str,
    channels: list[str] | None = None,
    instruments: list[str] | None = None,
    depth: int | None = None,
    shards: int | None = None,
    enabled: bool = True,
) -> Environment:
    """Add a feed; without `shards`, the minimum that holds the instruments is written."""

    def change(tree: CommentedMap) -> None:
        feeds = _section(tree, "feeds")
        if name in feeds:
            raise EditError(f"feed {name!r} already exists", "use `ssmd feed remove` first")
        feed = CommentedMap()
        feed["venue"] = venue
        if not enabled:
            feed["enabled"] = False
        if channels:
            feed["channels"] = _flow(channels)
        if instruments:
            feed["instruments"] = CommentedSeq(instruments)
        if depth is not None:
            feed["depth"] = depth
        n = shards if shards is not None else min_shards(venue, len(instruments or []))
        if n != 1 or shards is not None:
            feed["shards"] = n
        feeds[name] = feed

    return edit_file(path, change)


def remove_feed(path: str | Path, name: str) -> Environment:
    """Refused (with the dangling references listed) while clients or jobs still name it."""

    def change(tree: CommentedMap) -> None:
        _feed(tree, name)
        del tree["feeds"][name]

    return edit_file(path, change)


def set_feed_enabled(path: str | Path, name: str, enabled: bool) -> Environment:
    def change(tree: CommentedMap) -> None:
        feed = _feed(tree, name)
        if enabled and "enabled" in feed:
            del feed["enabled"]  # the default; keeps the file minimal
        elif not enabled:
            if "enabled" in feed:
                feed["enabled"] = False
            else:
                feed.insert(1 if "venue" in feed else 0, "enabled", False)

    return edit_file(path, change)


def add_instruments(
    path: str | Path, feed_name: str, symbols: list[str], *, reshard: bool = False
) -> Environment:
    """Append venue symbols; with `reshard`, raise shards to the minimum that holds them."""

    def change(tree: CommentedMap) -> None:
        feed = _feed(tree, feed_name)
        if feed.get("select") is not None:
            raise EditError(f"feed {feed_name!r} uses a selector", "edit its select: instead")
        current = _section(feed, "instruments", CommentedSeq)
        already = [s for s in symbols if s in current]
        if already:
            raise EditError(f"already in feed {feed_name!r}: {', '.join(already)}")
        current.extend(symbols)
        if reshard:
            per = feed.get("max_instruments_per_connection")
            need = min_shards(str(feed.get("venue")), len(set(current)), per)
            if need > int(feed.get("shards", 1) or 1):
                feed["shards"] = need

    return edit_file(path, change)


def remove_instruments(path: str | Path, feed_name: str, symbols: list[str]) -> Environment:
    def change(tree: CommentedMap) -> None:
        feed = _feed(tree, feed_name)
        current = feed.get("instruments") or []
        missing = [s for s in symbols if s not in current]
        if missing:
            raise EditError(f"not in feed {feed_name!r}: {', '.join(missing)}")
        for s in symbols:
            while s in current:
                current.remove(s)

    return edit_file(path, change)


# -- clients ----------------------------------------------------------------------------


def add_client(
    path: str | Path,
    client_id: str,
    *,
    type: str,
    scopes: list[str] | None = None,
    description: str = "",
) -> Environment:
    def change(tree: CommentedMap) -> None:
        clients = _section(tree, "clients", CommentedSeq)
        if any(isinstance(c, dict) and c.get("id") == client_id for c in clients):
            raise EditError(f"client {client_id!r} already exists", "ids are unique")
        client = CommentedMap()
        client["id"] = client_id
        client["type"] = type
        if description:
            client["description"] = description
        client["scopes"] = _flow(scopes or ["read"])
        clients.append(client)

    return edit_file(path, change)


def entitle(
    path: str | Path,
    client_id: str,
    *,
    feeds: list[str],
    symbols: list[str] | None = None,
    types: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    lookback: str | None = None,
    expires: str | None = None,
) -> Environment:
    """Append one entitlement (all its conditions hold together) to a client."""

    def change(tree: CommentedMap) -> None:
        clients, i = _client(tree, client_id)
        ent = CommentedMap()
        ent["feeds"] = _flow(feeds)
        if symbols:
            ent["symbols"] = _flow(symbols)
        if types:
            ent["types"] = _flow(types)
        for key, value in (
            ("start", start),
            ("end", end),
            ("lookback", lookback),
            ("expires", expires),
        ):
            if value:
                ent[key] = _date_or_text(value) if key != "lookback" else value
        _section(clients[i], "entitlements", CommentedSeq).append(ent)

    return edit_file(path, change)


def revoke(path: str | Path, client_id: str, *, purge: bool = False) -> Environment:
    """Mark the client revoked (kept for the record), or with `purge` delete it."""

    def change(tree: CommentedMap) -> None:
        clients, i = _client(tree, client_id)
        if purge:
            del clients[i]
        else:
            clients[i]["revoked"] = True

    return edit_file(path, change)


# -- promotion --------------------------------------------------------------------------


def promote_tree(src: CommentedMap, dst: CommentedMap) -> None:
    """Make `dst` carry `src`'s promoted sections, keeping dst's per-environment values."""
    for key in PROMOTED:
        kept = {
            inner: dst[key][inner]
            for section, inner in PER_ENVIRONMENT_KEYS
            if section == key and isinstance(dst.get(key), dict) and inner in dst[key]
        }
        if key not in src:
            if key in dst and not kept:
                del dst[key]
            elif kept:
                dst[key] = CommentedMap(kept)
            continue
        value = copy.deepcopy(src[key])
        if isinstance(value, CommentedMap):
            for section, inner in PER_ENVIRONMENT_KEYS:
                if section == key and inner not in kept and inner in value:
                    del value[inner]
            for inner, v in kept.items():
                value[inner] = v
        dst[key] = value


def promote(src: str | Path, dst: str | Path) -> Environment:
    """Copy `src`'s feeds, streams (not replicas), transforms, calendars, schedules and
    quality into `dst`, which keeps its metadata, storage, deploy, integrations, clients
    and streams.replicas. Refused, `dst` untouched, if the result is invalid (e.g. one of
    dst's clients is entitled to a feed src does not have)."""
    text = Path(src).read_text(encoding="utf-8")
    src_tree, errors = parse(text, str(src))
    if errors:
        raise InvalidSpec(errors)
    _, errors = check_text(text, str(src))
    if errors:
        raise InvalidSpec(errors)
    return edit_file(dst, lambda tree: promote_tree(src_tree, tree))
