"""Segment manifests: what a closed segment holds, written atomically beside it.

The manifest is the "closed" mark: a segment without one is still open or was left by
a crash. The shipper trusts only segments with a manifest and checks size + sha256.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from ssmd import __version__
from ssmd.capture.journal_format import SCHEMA_VERSION, JournalError

MANIFEST_SUFFIX = ".manifest.json"

__all__ = ["MANIFEST_SUFFIX", "Manifest", "manifest_path", "read_manifest", "write_manifest"]


class Manifest(msgspec.Struct, kw_only=True):
    """Fields of `….jsonl.zst.manifest.json` (docs/wire-formats.md, "Raw journal")."""

    schema_version: int = SCHEMA_VERSION
    ssmd_version: str = __version__
    env: str
    feed: str
    shard: int
    conn: int
    segment: str
    """File name of the segment."""
    key: str
    """Path relative to the journal root (`raw/{env}/{feed}/…`): the object-store key."""
    start_ns: int
    size: int
    """Bytes of the compressed file."""
    sha256: str
    """Hex sha256 of the compressed file, all of it."""
    lines: int
    """Journal lines readable from the file (for a recovered one: the complete lines)."""
    frames: int
    """Complete zstd frames."""
    first_t: int | None
    last_t: int | None
    first_m: int | None
    last_m: int | None
    closed_ns: int
    """Wall clock when the manifest was written."""
    closed_by: str
    """close | size | time | hour | recovered."""
    recovered: bool = False
    """True when sealed by `seal_orphans` after a crash, not by the writer."""
    truncated: bool = False
    """The last zstd frame is incomplete (crash mid-frame); its complete lines count."""
    readable_bytes: int = 0
    """Offset just past the last complete zstd frame."""
    problem: str = ""
    """Why reading stopped early (undecodable bytes), if it did."""


def manifest_path(segment: Path) -> Path:
    """`x.jsonl.zst` -> `x.jsonl.zst.manifest.json`."""
    return segment.with_name(segment.name + MANIFEST_SUFFIX)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_manifest(segment: Path, manifest: Manifest) -> Path:
    """tmp + fsync + rename + fsync(dir): readers see no manifest or a whole one."""
    final = manifest_path(segment)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    data = msgspec.json.format(msgspec.json.encode(manifest), indent=1) + b"\n"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise JournalError(final, e.errno, f"cannot write manifest ({e.strerror})") from e
    return final


def read_manifest(path: Path) -> Manifest | None:
    """The manifest of a segment (pass the segment or the manifest path); None if absent."""
    path = Path(path)
    if not path.name.endswith(MANIFEST_SUFFIX):
        path = manifest_path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise JournalError(path, e.errno, f"cannot read manifest ({e.strerror})") from e
    try:
        return msgspec.json.decode(data, type=Manifest)
    except msgspec.DecodeError as e:
        raise JournalError(path, None, f"bad manifest ({e})") from e
