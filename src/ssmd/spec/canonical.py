"""Stable forms of a definition: canonical JSON + sha256 (versions), documents, diffs.

Canonical JSON is the model as builtins (durations ns, sizes bytes) with defaults omitted
and keys sorted: spelling out a
default, reordering keys or writing "60m" for "1h" does not change the hash. Documents
(`to_document`) are the human form: every field present, durations and sizes spelled
with units; diffs and YAML output use them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi

from ssmd.spec import units
from ssmd.spec.errors import render_path
from ssmd.spec.model import Environment


def canonical_json(env: Environment) -> bytes:
    """Sorted keys, no defaults, no whitespace: the bytes whose sha256 names a version.

    Decodes back with `msgspec.json.decode(data, type=Environment)` (`load.from_json`).
    """
    doc = _plain(env, mi.type_info(Environment), defaults=False, spell=False)
    return msgspec.json.encode(doc, order="sorted")


def spec_sha256(env: Environment) -> str:
    return hashlib.sha256(canonical_json(env)).hexdigest()


def _plain(value: Any, t: mi.Type, defaults: bool, spell: bool = True) -> Any:
    """Builtins for `value`; `spell` writes durations/sizes with units, else as ints."""
    extra: dict = {}
    while isinstance(t, mi.Metadata):
        extra.update(t.extra or {})
        t = t.type
    if not spell:
        extra = {}
    if extra.get("unit") == "duration" and isinstance(value, int):
        return (
            ("forever" if extra.get("forever") else "0s")
            if value == 0
            else units.format_duration(value)
        )
    if extra.get("unit") == "size" and isinstance(value, int):
        return units.format_size(value)
    if isinstance(t, mi.UnionType):
        if value is None:
            return None
        (t,) = [u for u in t.types if not isinstance(u, mi.NoneType)][:1]
        return _plain(value, t, defaults, spell)
    if isinstance(t, mi.StructType):
        out = {}
        for f in t.fields:
            v = getattr(value, f.name)
            if not defaults and not f.required and _is_default(v, f):
                continue
            out[f.encode_name] = _plain(v, f.type, defaults, spell)
        return out
    if isinstance(t, mi.DictType):
        return {k: _plain(v, t.value_type, defaults, spell) for k, v in value.items()}
    if isinstance(t, mi.ListType):
        return [_plain(v, t.item_type, defaults, spell) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _is_default(v: Any, f: mi.Field) -> bool:
    if f.default is not msgspec.NODEFAULT:
        return v == f.default
    if f.default_factory is not msgspec.NODEFAULT:
        return v == f.default_factory()
    return False


def to_document(env: Environment, *, defaults: bool = True) -> dict[str, Any]:
    """Plain dict/list/str/int form, units spelled out ("7d", "10GiB")."""
    return _plain(env, mi.type_info(Environment), defaults)


class Change(msgspec.Struct, frozen=True):
    """One difference: `old` is absent for added, `new` for removed."""

    op: Literal["added", "removed", "changed"]
    path: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.op == "added":
            return f"+ {self.path}: {_short(self.new)}"
        if self.op == "removed":
            return f"- {self.path}: {_short(self.old)}"
        return f"~ {self.path}: {_short(self.old)} -> {_short(self.new)}"


def _short(v: Any) -> str:
    text = msgspec.json.encode(v).decode() if not isinstance(v, str) else v
    return text if len(text) <= 120 else text[:117] + "..."


def _diff(a: Any, b: Any, path: tuple, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                out.append(Change("removed", render_path((*path, k)), old=a[k]))
            else:
                _diff(a[k], b[k], (*path, k), out)
        out.extend(Change("added", render_path((*path, k)), new=b[k]) for k in b if k not in a)
        return
    if isinstance(a, list) and isinstance(b, list) and a != b:
        keyed = all(isinstance(x, dict) and "id" in x for x in a + b)
        if keyed:
            _diff({x["id"]: x for x in a}, {x["id"]: x for x in b}, path, out)
            return
        scalars = all(not isinstance(x, dict | list) for x in a + b)
        if scalars and sorted(map(str, a)) != sorted(map(str, b)):
            p = render_path(path)
            out.extend(Change("removed", p, old=x) for x in a if x not in b)
            out.extend(Change("added", p, new=x) for x in b if x not in a)
            if [x for x in a if x in b] == [x for x in b if x in a]:
                return
    if a != b:
        out.append(Change("changed", render_path(path), old=a, new=b))


def diff(a: Environment, b: Environment) -> list[Change]:
    """What changes going from `a` to `b`, by path; clients are matched by id.

    List items: clients by id (path clients.<id>); scalar lists (instruments, channels…)
    report each added/removed item, plus `changed` when only the order differs.
    """
    out: list[Change] = []
    _diff(to_document(a), to_document(b), (), out)
    return out
