"""Check a YAML tree against the model's types and build the typed value.

Driven by `msgspec.inspect` on `ssmd.spec.model`, so the model is the one source of truth
for keys, types, constraints and defaults. Every problem is recorded (never only the
first); an invalid optional field falls back to its default and an invalid required one
drops its enclosing struct, so later checks still see as much of the definition as
possible. `bad` collects the paths that had errors so cross-checks can stay quiet there.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
import msgspec.inspect as mi

from ssmd.spec import units
from ssmd.spec.errors import Issue, Path
from ssmd.spec.secrets import check_ref

INVALID: Any = object()


def kind_of(node: Any) -> str:
    """The YAML word for a Python value, for messages."""
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "a boolean"
    if isinstance(node, int):
        return "an integer"
    if isinstance(node, float):
        return "a number"
    if isinstance(node, str):
        return "a string"
    if isinstance(node, dt.datetime):
        return "a timestamp"
    if isinstance(node, dt.date):
        return "a date"
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    return f"a {type(node).__name__}"


def _show(node: Any) -> str:
    text = repr(node) if isinstance(node, str) else str(node)
    return text if len(text) <= 40 else text[:37] + "..."


def suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    """'did you mean X?' or the list of options, for hints."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    shown = ", ".join(options[:12]) + (", …" if len(options) > 12 else "")
    return f"expected one of: {shown}" if options else ""


@dataclass
class Walker:
    issues: list[Issue] = field(default_factory=list)
    bad: set[Path] = field(default_factory=set)

    def err(self, path: Path, message: str, hint: str = "", *, key: bool = False) -> Any:
        self.issues.append(Issue(path, message, hint, key=key))
        self.bad.add(path)
        return INVALID

    def convert(self, node: Any, t: mi.Type, path: Path, extra: dict | None = None) -> Any:
        """The typed value for `node`, or INVALID after recording why."""
        extra = dict(extra or {})
        while isinstance(t, mi.Metadata):
            extra.update(t.extra or {})
            t = t.type
        if extra.get("unit"):
            return self._unit(node, t, path, extra)
        if isinstance(t, mi.UnionType):
            return self._union(node, t, path, extra)
        if isinstance(t, mi.StructType):
            return self._struct(node, t, path)
        if isinstance(t, mi.DictType):
            return self._dict(node, t, path)
        if isinstance(t, mi.ListType):
            return self._list(node, t, path)
        if isinstance(t, mi.LiteralType):
            if isinstance(node, str) and node in t.values:
                return str(node)
            options = [str(v) for v in t.values]
            if isinstance(node, str):
                return self.err(path, f"{_show(node)} is not allowed", suggest(node, options))
            return self.err(path, f"expected one of {', '.join(options)}, got {kind_of(node)}")
        if isinstance(t, mi.StrType):
            if not isinstance(node, str):
                return self.err(path, f"expected a string, got {kind_of(node)} ({_show(node)})")
            return self._str(str(node), t, path, extra)
        if isinstance(t, mi.BoolType):
            if not isinstance(node, bool):
                return self.err(
                    path, f"expected true or false, got {kind_of(node)} ({_show(node)})"
                )
            return bool(node)
        if isinstance(t, mi.IntType):
            if isinstance(node, bool) or not isinstance(node, int):
                return self.err(path, f"expected an integer, got {kind_of(node)} ({_show(node)})")
            return self._bounds(int(node), t, path, extra)
        if isinstance(t, mi.DateType):
            return self._date(node, path)
        if isinstance(t, mi.NoneType):
            return None if node is None else self.err(path, f"expected null, got {kind_of(node)}")
        if isinstance(t, mi.AnyType):
            return node
        raise TypeError(f"model type not handled by the loader: {t!r}")  # pragma: no cover

    def _str(self, value: str, t: mi.StrType, path: Path, extra: dict) -> Any:
        if t.min_length is not None and len(value) < t.min_length:
            return self.err(path, "must not be empty")
        if t.pattern is not None and not re.search(t.pattern, value):
            return self.err(path, f"{value!r} is not a valid value", extra.get("hint", ""))
        if extra.get("secret") and value:
            problem = check_ref(value)
            if problem:
                return self.err(path, *problem)
        return value

    def _bounds(self, value: int, t: mi.IntType, path: Path, extra: dict) -> Any:
        hint = extra.get("hint", "")
        if t.ge is not None and value < t.ge:
            return self.err(path, f"{value} is less than the minimum {t.ge}", hint)
        if t.le is not None and value > t.le:
            return self.err(path, f"{value} is greater than the maximum {t.le}", hint)
        return value

    def _unit(self, node: Any, t: mi.Type, path: Path, extra: dict) -> Any:
        is_duration = extra["unit"] == "duration"
        example = '"30s", "1h30m", "7d"' if is_duration else '"512MiB", "10GB"'
        if isinstance(node, bool) or not isinstance(node, int | str):
            return self.err(path, f"expected a {extra['unit']} like {example}, got {kind_of(node)}")
        if isinstance(node, int):
            if node == 0 or not is_duration:
                value = int(node)
            else:
                return self.err(
                    path, f"duration {node} has no unit", f'write e.g. "{node}s" or "{node}ms"'
                )
        elif is_duration and str(node).strip() in ("forever", "unlimited"):
            if not extra.get("forever"):
                return self.err(path, f"{str(node)!r} is not allowed here", 'write e.g. "30d"')
            value = 0
        else:
            try:
                value = (units.parse_duration if is_duration else units.parse_size)(str(node))
            except units.UnitError as exc:
                return self.err(path, str(exc), exc.hint)
        assert isinstance(t, mi.IntType)
        if t.le is not None and value > t.le:
            limit = units.format_duration(t.le) if is_duration else units.format_size(t.le)
            return self.err(path, f"{node} is longer than the maximum {limit}")
        return value

    def _date(self, node: Any, path: Path) -> Any:
        if isinstance(node, dt.datetime):
            return self.err(path, "expected a date, got a timestamp", "write YYYY-MM-DD")
        if isinstance(node, dt.date):
            return dt.date(node.year, node.month, node.day)
        if isinstance(node, str):
            try:
                return dt.date.fromisoformat(node)
            except ValueError:
                pass
        return self.err(path, f"expected a date, got {kind_of(node)} ({_show(node)})", "YYYY-MM-DD")

    def _union(self, node: Any, t: mi.UnionType, path: Path, extra: dict) -> Any:
        types = [u for u in t.types if not isinstance(u, mi.NoneType)]
        if node is None and len(types) < len(t.types):
            return None
        if len(types) == 1:
            return self.convert(node, types[0], path, extra)
        literals = [u for u in types if isinstance(u, mi.LiteralType)]
        if len(literals) == len(types):
            return self.convert(
                node, mi.LiteralType(tuple(v for u in literals for v in u.values)), path
            )
        raise TypeError(f"union not handled by the loader: {t!r}")  # pragma: no cover

    def _struct(self, node: Any, t: mi.StructType, path: Path) -> Any:
        if not isinstance(node, dict):
            return self.err(path, f"expected a mapping, got {kind_of(node)}")
        by_name = {f.encode_name: f for f in t.fields}
        kwargs: dict[str, Any] = {}
        ok = True
        for key, value in node.items():
            if not isinstance(key, str):
                self.err((*path, str(key)), f"keys must be strings, got {kind_of(key)}", key=True)
                continue
            f = by_name.get(key)
            if f is None:
                self.err(
                    (*path, key), f"unknown key {key!r}", suggest(key, list(by_name)), key=True
                )
                continue
            if value is None and f.required is False and _container(f.type):
                continue
            result = self.convert(value, f.type, (*path, key))
            if result is INVALID:
                ok = ok and not f.required
            else:
                kwargs[f.name] = result
        for f in t.fields:
            if f.required and f.encode_name not in node:
                self.err((*path,), f"missing required key {f.encode_name!r}")
                ok = False
        if not ok:
            self.bad.add(path)  # dropped: references to it must not cascade
            return INVALID
        return t.cls(**kwargs)

    def _dict(self, node: Any, t: mi.DictType, path: Path) -> Any:
        if not isinstance(node, dict):
            return self.err(path, f"expected a mapping, got {kind_of(node)}")
        out = {}
        for key, value in node.items():
            if not isinstance(key, str):
                self.err((*path, str(key)), f"keys must be strings, got {kind_of(key)}", key=True)
                continue
            before = len(self.issues)
            k = self.convert(key, t.key_type, (*path, key))
            for i in range(before, len(self.issues)):
                self.issues[i] = msgspec.structs.replace(self.issues[i], key=True)
            v = self.convert(value, t.value_type, (*path, key))
            if k is not INVALID and v is not INVALID:
                out[k] = v
        return out

    def _list(self, node: Any, t: mi.ListType, path: Path) -> Any:
        if not isinstance(node, list):
            return self.err(path, f"expected a list, got {kind_of(node)} ({_show(node)})")
        if t.min_length and len(node) < t.min_length:
            return self.err(path, "must not be empty")
        out = [self.convert(item, t.item_type, (*path, i)) for i, item in enumerate(node)]
        return [v for v in out if v is not INVALID]


def _container(t: mi.Type) -> bool:
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        return any(_container(u) for u in t.types if not isinstance(u, mi.NoneType))
    return isinstance(t, mi.StructType | mi.DictType | mi.ListType)


_INFO: dict[type, mi.Type] = {}


def build(tree: Any, cls: type[msgspec.Struct]) -> tuple[Any, list[Issue], set[Path]]:
    """(typed value or None, issues, paths with errors) for a whole document."""
    info = _INFO.get(cls) or _INFO.setdefault(cls, mi.type_info(cls))
    walker = Walker()
    value = walker.convert(tree, info, ())
    return (None if value is INVALID else value), walker.issues, walker.bad
