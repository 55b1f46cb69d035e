"""One validation error, positioned, printable as `file:line:col: path: message (hint)`."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

PathElem = str | int
Path = tuple[PathElem, ...]


def render_path(path: Sequence[PathElem]) -> str:
    """('feeds', 'kraken', 'instruments', 2) -> 'feeds.kraken.instruments[2]'; () -> '<root>'."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif elem and all(c.isalnum() or c in "-_/" for c in elem):
            out += f".{elem}" if out else elem
        else:
            out += f"[{elem!r}]"
    return out or "<root>"


class SpecError(msgspec.Struct, kw_only=True, frozen=True, order=True):
    """Lines and columns are 1-based; 0 when the error has no place in a file."""

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.path}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class InvalidSpec(Exception):
    """Raised by loaders and edits; carries every error, never just the first."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        self.errors = list(errors)
        lines = "\n".join(str(e) for e in self.errors)
        super().__init__(f"{len(self.errors)} error(s) in the environment definition:\n{lines}")


class Issue(msgspec.Struct, frozen=True):
    """An error before it is placed in a file (the pure validator's output)."""

    path: Path
    message: str
    hint: str = ""
    key: bool = False
    """Place it at the key rather than the value (unknown keys, bad names)."""
    ref: Path = ()
    """For a dangling reference, what it names, e.g. ('feeds', 'kraken')."""
