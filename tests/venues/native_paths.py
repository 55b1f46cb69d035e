"""For the tests that hold a C path to its Python reference: run with it (counting the
frames it took) or without it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any


@contextmanager
def counting(module: ModuleType, attr: str, native: bool) -> Iterator[list[int]]:
    """`module.attr` (the C entry a normalizer takes at construction) replaced by a
    counting wrapper, or by None (the pure-Python path), for the `with` block."""
    real = getattr(module, attr)
    taken = [0]

    def call(*args: Any) -> Any:
        got = real(*args)
        taken[0] += got is not None
        return got

    setattr(module, attr, call if native else None)
    try:
        yield taken
    finally:
        setattr(module, attr, real)
