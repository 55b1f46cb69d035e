"""Canonical JSON: one byte string per value, so hashes are reproducible.

Keys sorted, no whitespace, UTF-8, no NaN/Infinity. Used for the sha256 of an
environment version and for the audit chain, which must recompute the same bytes from
what Postgres gives back years later.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec


def to_plain(obj: Any) -> Any:
    """Structs, dataclasses, tuples, sets → plain JSON values (dict/list/str/int/...)."""
    return msgspec.to_builtins(obj, order="sorted")


def canonical_json(obj: Any, *, allow_float: bool = True) -> bytes:
    """The canonical encoding of `obj`; with allow_float=False a float is a TypeError."""
    plain = to_plain(obj)
    if not allow_float:
        _refuse_floats(plain, "$")
    return json.dumps(
        plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _refuse_floats(value: Any, path: str) -> None:
    if isinstance(value, float):
        raise TypeError(
            f"binary float at {path}: use an int (fixed-point) or a decimal string so the "
            "value hashes the same after a round trip through Postgres"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _refuse_floats(item, f"{path}[{i}]")
