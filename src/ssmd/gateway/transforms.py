"""Per-customer Lua transforms (the `transforms` section of the environment definition).

A transform is Lua source defining `transform(record) -> record | nil`. It sees the
record's JSON wire form as a Lua table and returns a table (the record to send), or
`nil` / `false` (drop it). Types, both ways:

| JSON (wire form) | Lua | back to Python |
|---|---|---|
| string (decimals too: "5541.3") | string | str (must be UTF-8) |
| integer (ns times, seq, iid) | integer (64-bit) | int |
| true / false | boolean | bool |
| array (`bids`, a level `[px, sz]`) | sequence table 1..n | list |
| object | table with string keys | dict |
| null | `null` (a sentinel; a missing key is `nil`) | None |

Decimals stay strings end to end; arithmetic on them goes through `dec.add/sub/mul/
div(a, b, places=9)/round(a, places)/cmp/norm/neg/abs`, which compute with Python's
`Decimal` and return canonical decimal strings, so a price never passes through a binary
float. A Lua float in the output is an error. An empty table comes back as `[]` when the
input held a list under that key, else as `{}`. Errors are `TransformError`: the gateway
closes only the subscription that uses the transform.

Isolation: every `CompiledTransform` has its own Lua state (`LuaSandbox`), so globals a
transform keeps between records (a throttle, a last price) never cross from one
subscription to another. `Transforms.get(name)` therefore returns a new instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lupa.lua54 import lua_type

from ssmd.gateway.lua_sandbox import Limits, LuaSandbox, SandboxError

__all__ = [
    "CompiledTransform",
    "Limits",
    "TransformChain",
    "TransformError",
    "Transforms",
]

MAX_DEPTH = 16


class TransformError(Exception):
    """A transform failed to load or run. `name` is the transform, `kind` one of
    `syntax`, `runtime`, `budget`, `timeout`, `memory`, `output`, `source`; `lua_message`
    is Lua's own message (`name:line: …` where Lua knows the line)."""

    def __init__(self, name: str, kind: str, lua_message: str) -> None:
        super().__init__(f"transform {name!r}: {kind}: {lua_message}")
        self.name = name
        self.kind = kind
        self.lua_message = lua_message


class CompiledTransform:
    """One loaded instance of a transform in its own Lua state."""

    def __init__(self, name: str, source: str, limits: Limits | None = None) -> None:
        self.name = name
        self.source = source
        self._box = LuaSandbox(limits)
        try:
            self._env = self._box.load(source, name)
        except SandboxError as exc:
            raise TransformError(name, exc.kind, exc.message) from None
        if lua_type(self._env["transform"]) != "function":
            raise TransformError(name, "source", f"{name}: no function 'transform' defined")
        self._table_type = type(self._env)

    def apply(self, record_wire: dict[str, Any]) -> dict[str, Any] | None:
        """The transformed record, or None when the transform drops it."""
        try:
            arg = self._box.table(record_wire)
            out = self._box.call(self._env, "transform", arg)
        except SandboxError as exc:
            raise TransformError(self.name, exc.kind, exc.message) from None
        if out is None or out is False:
            return None
        if lua_type(out) != "table":
            raise TransformError(
                self.name, "output", f"transform must return a table or nil, not {_kind(out)}"
            )
        try:
            value = self._from_lua(out, record_wire, "record", 0)
        except (_OutputError, UnicodeDecodeError) as exc:
            raise TransformError(self.name, "output", str(exc)) from None
        if not isinstance(value, dict):
            raise TransformError(self.name, "output", "transform must return an object table")
        return value

    def apply_many(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The kept records, in order; the first failure raises TransformError."""
        return kept(self.apply, records)

    def _from_lua(self, obj: Any, shape: Any, path: str, depth: int) -> Any:
        if obj is None or isinstance(obj, bool | int | str):
            return obj
        if isinstance(obj, float):
            raise _OutputError(
                f"{path}: a float ({obj!r}) is not exact; return a decimal string (dec.*)"
            )
        if type(obj) is not self._table_type:
            raise _OutputError(
                f"{path}: a Lua {lua_type(obj) or type(obj).__name__} cannot be sent"
            )
        if depth >= MAX_DEPTH:
            raise _OutputError(f"{path}: nested deeper than {MAX_DEPTH}")
        items = list(obj.items())
        if not items:
            if self._box.is_null(obj):
                return None
            return [] if isinstance(shape, list) else {}
        first = items[0][0]
        if isinstance(first, int) and not isinstance(first, bool):
            n = len(items)
            items.sort(key=_key_or_raise)
            if items[0][0] != 1 or items[-1][0] != n:
                raise _OutputError(f"{path}: array table with holes or keys not 1..{n}")
            sub = shape[0] if isinstance(shape, list) and shape else None
            return [self._from_lua(v, sub, path, depth + 1) for _, v in items]
        out: dict[str, Any] = {}
        for k, v in items:
            if not isinstance(k, str):
                raise _OutputError(f"{path}: object key {k!r} is not a string")
            if v is None or isinstance(v, bool | int | str):
                out[k] = v
            else:
                sub = shape.get(k) if isinstance(shape, dict) else None
                out[k] = self._from_lua(v, sub, f"{path}.{k}", depth + 1)
        return _ordered(out, shape)


def _ordered(out: dict[str, Any], shape: Any) -> dict[str, Any]:
    """Input keys keep their input order, new keys follow sorted: stable, diffable output."""
    known = [k for k in shape if k in out] if isinstance(shape, dict) else []
    extra = sorted(k for k in out if not isinstance(shape, dict) or k not in shape)
    return {k: out[k] for k in (*known, *extra)}


def _key_or_raise(kv: tuple[Any, Any]) -> int:
    key = kv[0]
    if not isinstance(key, int) or isinstance(key, bool):
        raise _OutputError(f"mixed array and object keys ({key!r})")
    return key


class _OutputError(Exception):
    pass


def _kind(value: Any) -> str:
    return type(value).__name__ if not hasattr(value, "items") else "a table"


@dataclass
class TransformChain:
    """A client's transforms, applied in order; a drop anywhere drops the record."""

    steps: list[CompiledTransform] = field(default_factory=list)

    def apply(self, record_wire: dict[str, Any]) -> dict[str, Any] | None:
        value: dict[str, Any] | None = record_wire
        for step in self.steps:
            value = step.apply(value)
            if value is None:
                return None
        return value

    def apply_many(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The kept records, in order; the first failure raises TransformError."""
        return kept(self.apply, records)

    def __bool__(self) -> bool:
        return bool(self.steps)


class Transforms:
    """The transforms of one environment definition, validated at load."""

    def __init__(self, sources: Mapping[str, str], limits: Limits | None = None) -> None:
        self.sources = dict(sources)
        self.limits = limits or Limits()
        self.client_transforms: dict[str, list[str]] = {}

    @classmethod
    def from_spec(cls, env: Any, base_dir: Path | str, limits: Limits | None = None) -> Transforms:
        """Read every transform (inline `source` or `file` relative to `base_dir`) and
        compile each once; raises TransformError for the first that does not load."""
        sources: dict[str, str] = {}
        base = Path(base_dir)
        for name, spec in sorted(env.transforms.items()):
            if spec.language != "lua":
                raise TransformError(name, "source", f"language {spec.language!r} unsupported")
            if spec.source:
                sources[name] = spec.source
                continue
            path = base / spec.file
            try:
                sources[name] = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise TransformError(name, "source", f"cannot read {path}: {exc}") from None
        out = cls(sources, limits)
        out.client_transforms = {c.id: list(c.transforms) for c in env.clients}
        out.validate()
        return out

    def validate(self) -> list[str]:
        """Compile every transform (syntax and top-level errors); the names loaded."""
        for name in sorted(self.sources):
            CompiledTransform(name, self.sources[name], self.limits)
        return sorted(self.sources)

    def names(self) -> list[str]:
        return sorted(self.sources)

    def get(self, name: str) -> CompiledTransform:
        """A new instance (own Lua state) of transform `name`; KeyError if undefined."""
        if name not in self.sources:
            raise KeyError(f"no transform {name!r} (defined: {', '.join(self.names()) or '-'})")
        return CompiledTransform(name, self.sources[name], self.limits)

    def chain(self, names: Iterable[str]) -> TransformChain:
        """New instances of `names`, applied in that order."""
        return TransformChain([self.get(n) for n in names])

    def for_client(self, client_id: str) -> TransformChain:
        """The client's `transforms` list as a chain (empty chain: no transform)."""
        return self.chain(self.client_transforms.get(client_id, []))


def kept(
    apply: Callable[[dict[str, Any]], dict[str, Any] | None], records: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What `apply` keeps of `records` (None drops a record), in order."""
    return [v for v in map(apply, records) if v is not None]
